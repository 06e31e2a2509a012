"""Hub-catalog mode on a single-user server, against the hub catalog service in-process
(tokens from a table; the real hub is in tests/hub/): the durable copy, staleness,
restarts while the service is down, and forwarded admin requests.

Runtime-level tests are asyncio tests; REST tests run on pytest-jupyter's loop (not
marked), with the service started on that loop before the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dodo_jupyter.catalog import mirror as mirror_module
from dodo_jupyter.catalog.hub_client import Fetched, HubCatalogClient, check_service_url
from dodo_jupyter.catalog.mirror import HubCatalogMirror
from dodo_jupyter.exceptions import HubCatalogUnavailable
from dodo_jupyter.identity import HubIdentityResolver
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.runtime_settings import RuntimeSettings
from dodo_jupyter.store.models import ApprovedMCP, AuditLog

from .conftest import Api
from .hub_identity import hub_server_config, hub_user
from .hub_service import ACCESS, ServiceRunner, model

ADMIN = "dodo/api/admin/approved-mcps"
CATALOG = "dodo/api/mcp-catalog"
SERVER_TOKEN = "alice-server-token"


def entry(entry_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": entry_id, "url": f"https://{entry_id}.example.com/mcp", **fields}


def hub_runtime(db_url: str, tmp_path: Path, url: str, **overrides: Any) -> DodoRuntime:
    settings = RuntimeSettings(
        db_url=db_url,
        key_file=tmp_path / "crypt.key",
        default_catalog=False,
        allow_insecure_loopback=True,
        catalog_cache_ttl=0.0,
        environ={},
        hub_catalog_url=url,
        hub_api_token=SERVER_TOKEN,
        hub_catalog_timeout=2.0,
        **overrides,
    )
    runtime = DodoRuntime(settings, HubIdentityResolver("alice", "http://127.0.0.1:9/hub/api"))
    runtime.open_sync(mcp=False)
    return runtime


def live_rows(runtime: DodoRuntime) -> dict[str, str]:
    """id → managed_by of the live catalog rows."""

    def read(session: Any) -> dict[str, str]:
        stmt = select(ApprovedMCP).where(ApprovedMCP.deleted_at.is_(None))
        return {row.id: row.managed_by for row in session.scalars(stmt)}

    return runtime.store.db.read_sync(read)


def audits(runtime: DodoRuntime, action: str) -> list[dict[str, Any]]:
    def read(session: Any) -> list[dict[str, Any]]:
        stmt = select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
        return [row.detail for row in session.scalars(stmt)]

    return runtime.store.db.read_sync(read)


# -- the copy (runtime level) -----------------------------------------------------------


@pytest.mark.asyncio
async def test_copy_follows_the_service_and_outlives_it(db_url: str, tmp_path: Path) -> None:
    service = ServiceRunner(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    service.authority.models[SERVER_TOKEN] = model("alice")
    await service.start()
    await service.hub.catalog.create("admin", entry("one", display_name="One"))
    first = hub_runtime(db_url, tmp_path, service.url)
    try:
        assert [e["id"] for e in (await first.catalog.enabled()).entries] == ["one"]
        status = first.catalog_status()
        assert (status.source, status.stale, status.reason) == ("hub", False, None)
        assert status.synced_at is not None
        await service.hub.catalog.create("admin", entry("two", display_name="Two"))
        assert [e["id"] for e in (await first.catalog.enabled()).entries] == ["one", "two"]
        assert live_rows(first) == {"one": "hub", "two": "hub"}
        await service.stop()

        # The service is gone: the copy is served, marked stale with the reason.
        assert [e["id"] for e in (await first.catalog.enabled()).entries] == ["one", "two"]
        status = first.catalog_status()
        assert status.stale is True and status.reason is not None
        assert (
            f"The hub catalog service at {service.url} is unreachable: the connection was "
            "refused" in status.reason
        )
        assert "Showing the last good copy, from" in status.reason
        assert SERVER_TOKEN not in status.reason
    finally:
        first.store.close()

    # A restart while the service is still down: the copy is in the store.
    second = hub_runtime(db_url, tmp_path, service.url)
    try:
        assert [e["id"] for e in (await second.catalog.enabled()).entries] == ["one", "two"]
        status = second.catalog_status()
        assert status.stale is True and "Showing the last good copy" in (status.reason or "")
        assert status.synced_at is not None
        # Connections look entries up the same way.
        assert (await second.catalog.get_enabled("two"))["display_name"] == "Two"
    finally:
        second.store.close()


@pytest.mark.asyncio
async def test_no_copy_yet_is_an_empty_stale_catalog(sqlite_url: str, tmp_path: Path) -> None:
    dead = ServiceRunner(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    url = dead.url
    for sock in dead.sockets:  # nobody listens there any more
        sock.close()
    runtime = hub_runtime(sqlite_url, tmp_path, url)
    try:
        assert (await runtime.catalog.enabled()).entries == []
        status = runtime.catalog_status()
        assert status.stale and "No copy of the hub catalog yet" in (status.reason or "")
        assert status.synced_at is None
    finally:
        runtime.store.close()


class FakeClient:
    """A client whose answers the test sets; records the ETags it was sent."""

    url = "http://hub.test/services/dodo/"

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.etags: list[str] = []
        self.down = False

    async def fetch(self, etag: str = "") -> Fetched:
        self.etags.append(etag)
        if self.down:
            raise HubCatalogUnavailable("The hub catalog service is down for the test.")
        current = f'"v{len(repr(self.entries))}-{hash(repr(self.entries)) & 0xFFFF}"'
        if etag == current:
            return Fetched(None, etag)
        return Fetched([dict(e) for e in self.entries], current)


def fake_mirror(runtime: DodoRuntime) -> tuple[HubCatalogMirror, FakeClient]:
    client = FakeClient()
    mirror = HubCatalogMirror(
        runtime.store,
        client,  # type: ignore[arg-type]
        max_age=0.0,
        allow_insecure_loopback=True,
    )
    runtime.catalog.upstream = mirror
    return mirror, client


@pytest.mark.asyncio
async def test_unchanged_catalog_is_a_304_with_the_stored_etag(
    make_runtime: Callable[..., DodoRuntime],
) -> None:
    runtime = make_runtime()
    mirror, client = fake_mirror(runtime)
    client.entries = [entry("one")]
    assert await mirror.refresh() is True
    assert await mirror.refresh() is False
    assert client.etags[0] == "" and client.etags[1] != ""
    assert len(audits(runtime, "catalog.hub_sync")) == 1
    # A new mirror (a restarted server) sends the stored ETag at once.
    again, client2 = fake_mirror(runtime)
    client2.entries = client.entries
    assert await again.refresh() is False
    assert client2.etags == [client.etags[1]]


@pytest.mark.asyncio
async def test_tool_policies_come_with_the_copy_and_an_equal_copy_changes_nothing(
    make_runtime: Callable[..., DodoRuntime],
) -> None:
    runtime = make_runtime()
    mirror, client = fake_mirror(runtime)
    client.entries = [entry("one", tool_policy={"deny": ["delete_*"]}), entry("two")]
    assert await mirror.refresh() is True
    policies = {e["id"]: e["tool_policy"] for e in (await runtime.catalog.enabled()).entries}
    assert policies["one"]["deny"] == ["delete_*"] and policies["two"]["deny"] == []
    # The same entries under another ETag (the service restarted): nothing is rewritten.
    client.entries = [dict(e) for e in reversed(client.entries)]
    assert await mirror.refresh() is False
    assert len(audits(runtime, "catalog.hub_sync")) == 1


@pytest.mark.asyncio
async def test_the_hub_replaces_local_entries_and_urls_may_swap(
    make_runtime: Callable[..., DodoRuntime],
) -> None:
    runtime = make_runtime(catalog=[entry("from-config")])
    await runtime.catalog.create("owner", entry("by-local-admin"))
    mirror, client = fake_mirror(runtime)
    client.entries = [
        entry("a", url="https://one.example.com/mcp"),
        entry("b", url="https://two.example.com/mcp"),
        entry("by-local-admin", description="now the hub's"),
    ]
    assert await mirror.refresh() is True
    assert live_rows(runtime) == {"a": "hub", "b": "hub", "by-local-admin": "hub"}
    # Two entries swap their urls (live urls are unique): one transaction, no conflict.
    client.entries = [
        entry("a", url="https://two.example.com/mcp"),
        entry("b", url="https://one.example.com/mcp"),
    ]
    assert await mirror.refresh() is True
    enabled = {e["id"]: e["url"] for e in (await runtime.catalog.enabled()).entries}
    assert enabled == {"a": "https://two.example.com/mcp", "b": "https://one.example.com/mcp"}
    syncs = audits(runtime, "catalog.hub_sync")
    assert syncs[0]["added"] == ["a", "b"] and syncs[0]["updated"] == ["by-local-admin"]
    assert syncs[0]["removed"] == ["from-config"]
    assert syncs[1]["updated"] == ["a", "b"] and syncs[1]["removed"] == ["by-local-admin"]


@pytest.mark.asyncio
async def test_entries_this_server_refuses_are_left_out(
    make_runtime: Callable[..., DodoRuntime],
) -> None:
    runtime = make_runtime()
    mirror, client = fake_mirror(runtime)
    client.entries = [entry("ok"), entry("bad", url="ftp://bad.example.com/")]
    await mirror.refresh()
    assert [e["id"] for e in (await runtime.catalog.enabled()).entries] == ["ok"]


@pytest.mark.asyncio
async def test_failures_are_retried_after_a_pause(
    make_runtime: Callable[..., DodoRuntime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = make_runtime()
    mirror, client = fake_mirror(runtime)
    client.entries = [entry("one")]
    await mirror.refresh()
    client.down = True
    await mirror.refresh()
    assert mirror.status.stale and len(client.etags) == 2
    await mirror.refresh()  # within MIN_RETRY_S: not asked again
    assert len(client.etags) == 2
    monkeypatch.setattr(mirror_module, "MIN_RETRY_S", 0.0)
    client.down = False
    await mirror.refresh()
    assert len(client.etags) == 3 and not mirror.status.stale


@pytest.mark.asyncio
async def test_configured_catalog_is_not_seeded_in_hub_catalog_mode(
    sqlite_url: str, tmp_path: Path
) -> None:
    runtime = hub_runtime(sqlite_url, tmp_path, "http://127.0.0.1:9/services/dodo/")
    runtime.settings.catalog = [entry("configured")]
    try:
        runtime.open_sync(mcp=False)  # again, now with a configured catalog
        assert live_rows(runtime) == {}
    finally:
        runtime.store.close()


def test_service_url_rules() -> None:
    assert check_service_url("http://proxy/services/dodo") == "http://proxy/services/dodo/"
    for bad in ("ftp://x/", "proxy/services/dodo/", "http://u:p@x/", "http://x/?a=1"):
        with pytest.raises(ValueError, match="hub_catalog_url"):
            check_service_url(bad)
    assert "tok" not in repr(HubCatalogClient("http://x/", "tok"))


# -- REST on a real Jupyter server -----------------------------------------------------


@pytest.fixture
def service(tmp_path: Path, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[ServiceRunner]:
    runner = ServiceRunner(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    jp_asyncio_loop.run_until_complete(runner.start())
    yield runner
    jp_asyncio_loop.run_until_complete(runner.stop())


@pytest.fixture
def jp_server_config(
    dodo_config: dict[str, Any],
    service: ServiceRunner,
    hub: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVER_TOKEN)
    hub(
        alice=hub_user("alice", scopes=["access:servers!server=alice/", "custom:dodo:admin"]),
        carl=hub_user("carl", admin=True),
        bob=hub_user("bob"),
    )
    return hub_server_config(
        dodo_config,
        hub_catalog_url=service.url,
        hub_catalog_timeout=2.0,
        hygiene_interval=0.0,
        catalog=[entry("configured-locally")],
    )


def as_user(name: str) -> dict[str, str]:
    return {"Authorization": f"token {name}"}


def server_token_is(service: ServiceRunner, *, admin: bool) -> None:
    """What the service makes of the server's token: alice, with or without the scope."""
    scopes = [ACCESS, "custom:dodo:admin"] if admin else [ACCESS]
    service.authority.models[SERVER_TOKEN] = model("alice", scopes=scopes)


async def test_catalog_comes_from_the_service(api: Api, service: ServiceRunner) -> None:
    server_token_is(service, admin=False)
    await service.hub.catalog.create("admin", entry("shared"))
    status, body = await api("GET", CATALOG, headers=as_user("bob"))  # visitors read it too
    assert status == 200, body
    assert [e["id"] for e in body["entries"]] == ["shared"]
    assert body["catalog_source"] == "hub" and body["catalog_stale"] is False
    assert body["catalog_synced_at"]


async def test_service_down_keeps_the_last_good_copy(
    api: Api, service: ServiceRunner, jp_fetch: Any
) -> None:
    server_token_is(service, admin=False)
    await service.hub.catalog.create("admin", entry("shared"))
    fresh = await jp_fetch(CATALOG, headers=as_user("alice"))
    await service.stop()
    status, body = await api("GET", CATALOG, headers=as_user("alice"))
    assert status == 200
    assert [e["id"] for e in body["entries"]] == ["shared"]
    assert body["catalog_stale"] is True
    assert "unreachable" in body["catalog_stale_reason"]
    stale = await jp_fetch(CATALOG, headers=as_user("alice"))
    assert stale.headers["ETag"] != fresh.headers["ETag"]


async def test_an_unchanged_catalog_is_a_304_at_the_service_and_at_the_server(
    service: ServiceRunner, jp_fetch: Any, runtime_: DodoRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    server_token_is(service, admin=False)
    await service.hub.catalog.create("admin", entry("shared"))

    async def get(etag: str | None = None) -> Any:
        headers = {**as_user("alice"), **({"If-None-Match": etag} if etag else {})}
        return await jp_fetch(CATALOG, headers=headers, raise_error=False)

    with caplog.at_level(logging.INFO, logger="dodo_jupyter.hub.access"):
        first = await get()
        assert first.code == 200
        synced = json.loads(first.body)["catalog_synced_at"]
        # catalog_cache_ttl is 0: each read asks the service again, with the stored ETag.
        again = await get(first.headers["ETag"])
        assert again.code == 304, again.body
        assert again.headers["ETag"] == first.headers["ETag"]
        # The copy was confirmed again (a new catalog_synced_at): the ETag did not move.
        confirmed = runtime_.catalog_status().synced_at
        assert confirmed is not None and confirmed.isoformat() != synced
        assert (await get(f'"other", {first.headers["ETag"]}')).code == 304
    answers = [r.getMessage().split()[0] for r in caplog.records if "api/catalog" in r.getMessage()]
    assert answers == ["200", "304", "304"], answers  # the service said 304 to the server too

    await service.hub.catalog.update("admin", "shared", {"description": "changed"})
    changed = await get(first.headers["ETag"])
    assert changed.code == 200 and changed.headers["ETag"] != first.headers["ETag"]
    assert json.loads(changed.body)["entries"][0]["description"] == "changed"


async def test_admin_edits_are_forwarded(api: Api, service: ServiceRunner) -> None:
    server_token_is(service, admin=True)
    status, created = await api("POST", ADMIN, entry("wx"), headers=as_user("alice"))
    assert status == 201, created
    assert created["managed_by"] == "admin" and created["created_by"] == "alice"
    # The owner's server shows it at once (its copy is refreshed after the change).
    status, body = await api("GET", CATALOG, headers=as_user("alice"))
    assert [e["id"] for e in body["entries"]] == ["wx"]
    status, changed = await api("PUT", f"{ADMIN}/wx", {"enabled": False}, headers=as_user("alice"))
    assert status == 200 and changed["enabled"] is False
    status, listing = await api("GET", ADMIN, headers=as_user("alice"))
    assert [e["id"] for e in listing["entries"]] == ["wx"]
    assert (await api("GET", f"{ADMIN}/wx", headers=as_user("alice")))[0] == 200
    status, imported = await api(
        "POST", f"{ADMIN}/import", {"entries": [entry("imp")]}, headers=as_user("alice")
    )
    assert status == 201 and [e["id"] for e in imported["entries"]] == ["imp"]
    assert (await api("DELETE", f"{ADMIN}/wx", headers=as_user("alice"))) == (204, None)
    status, body = await api("GET", CATALOG, headers=as_user("alice"))
    assert [e["id"] for e in body["entries"]] == ["imp"]  # no locally configured entry
    rows = await service.hub.audit.recent()
    assert [(r["actor"], r["action"]) for r in rows][:2] == [
        ("alice", "catalog.delete"),
        ("alice", "catalog.import"),
    ]


async def test_service_errors_are_passed_on(api: Api, service: ServiceRunner) -> None:
    server_token_is(service, admin=True)
    status, body = await api("POST", ADMIN, {"id": "Bad", "url": 5}, headers=as_user("alice"))
    assert status == 400 and body["error"] == "invalid"
    assert set(body["fields"]) == {"id", "url"}
    assert (await api("POST", ADMIN, entry("one"), headers=as_user("alice")))[0] == 201
    status, body = await api("POST", ADMIN, entry("one"), headers=as_user("alice"))
    assert status == 409 and body["error"] == "conflict"
    status, body = await api("GET", f"{ADMIN}/nope", headers=as_user("alice"))
    assert status == 404 and body["message"] == "No catalog entry 'nope'."


async def test_if_match_is_forwarded_and_a_412_comes_back(
    api: Api, service: ServiceRunner, jp_fetch: Any
) -> None:
    server_token_is(service, admin=True)
    assert (await api("POST", ADMIN, entry("wx"), headers=as_user("alice")))[0] == 201
    loaded = await jp_fetch(*ADMIN.split("/"), "wx", headers=as_user("alice"))
    etag = loaded.headers["ETag"]
    assert etag == json.loads(loaded.body)["etag"] == '"1"'
    # Another admin changes the entry at the hub in the meantime.
    await service.hub.catalog.update("carl", "wx", {"description": "Carl's"})
    stale = {**as_user("alice"), "If-Match": etag}
    for method, body in (("PUT", {"enabled": False}), ("DELETE", None)):
        status, reply = await api(method, f"{ADMIN}/wx", body, headers=stale)
        assert status == 412 and reply["error"] == "precondition_failed"
        assert reply["message"].startswith("Catalog entry 'wx' was changed by carl at ")
    status, listing = await api("GET", ADMIN, headers=as_user("alice"))
    fresh = {**as_user("alice"), "If-Match": listing["entries"][0]["etag"]}
    status, changed = await api("PUT", f"{ADMIN}/wx", {"enabled": False}, headers=fresh)
    assert status == 200 and changed["description"] == "Carl's" and changed["etag"] == '"3"'
    assert [(r["actor"], r["action"]) for r in await service.hub.audit.recent()] == [
        ("alice", "catalog.update"),
        ("carl", "catalog.update"),
        ("alice", "catalog.create"),
    ]


async def test_the_service_decides_too(api: Api, service: ServiceRunner) -> None:
    # alice is a dodo administrator for her server, but her token carries no admin right
    # at the hub: the service refuses, and says so.
    server_token_is(service, admin=False)
    status, body = await api("POST", ADMIN, entry("x"), headers=as_user("alice"))
    assert status == 403
    assert body["message"].startswith("'alice' is not a dodo administrator at the hub")


async def test_visitors_cannot_forward(api: Api, service: ServiceRunner) -> None:
    server_token_is(service, admin=True)
    for visitor in ("carl", "bob"):  # carl is a hub admin, visiting
        status, body = await api("POST", ADMIN, entry("x"), headers=as_user(visitor))
        assert status == 403
        assert body["message"].startswith(
            f"{visitor!r} is not the owner of this server ('alice' is): this server "
            "administers the hub's catalog with its owner's hub token"
        )
    assert await service.hub.audit.recent() == []  # nothing reached the service


async def test_admin_request_while_the_service_is_down_is_503(
    api: Api, service: ServiceRunner
) -> None:
    server_token_is(service, admin=True)
    await service.stop()
    status, body = await api("POST", ADMIN, entry("x"), headers=as_user("alice"))
    assert status == 503 and body["error"] == "hub_catalog_unavailable"
    assert body["message"].startswith(
        f"The hub catalog service at {service.url} is unreachable: the connection was refused"
    )
    assert SERVER_TOKEN not in body["message"] and "Error" not in body["message"]
