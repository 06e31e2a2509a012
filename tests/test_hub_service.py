"""The hub catalog service over HTTP (in-process, tokens from a table), on SQLite and
PostgreSQL: who may read and change the catalog, ETags, errors, configuration seeding."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from dodo_jupyter.catalog.service import CatalogCache

from .hub_service import ServiceRunner

pytestmark = pytest.mark.asyncio

ADMIN = "api/admin/approved-mcps"


def entry(entry_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": entry_id, "url": f"https://{entry_id}.example.com/mcp", **fields}


class Client:
    """Calls the service as a token holder; returns (status, JSON or None)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(
        self,
        method: str,
        path: str,
        token: str | None = "admin-token",  # noqa: S107 - a test token name
        body: Any = None,
        headers: dict[str, str] | None = None,
        **params: str,
    ) -> tuple[int, Any]:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"token {token}"
        response = await self.http.request(
            method,
            path,
            headers=all_headers,
            params=params or None,
            content=json.dumps(body).encode() if body is not None else None,
        )
        return response.status_code, response.json() if response.content else None


@pytest_asyncio.fixture
async def service(db_url: str) -> AsyncIterator[ServiceRunner]:
    runner = ServiceRunner(db_url)
    await runner.start()
    yield runner
    await runner.stop()


@pytest_asyncio.fixture
async def call(service: ServiceRunner) -> AsyncIterator[Client]:
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        yield Client(http)


async def test_catalog_needs_a_token_with_the_access_scope(call: Client) -> None:
    status, body = await call("GET", "api/catalog", token=None)
    assert status == 401 and "Authorization: token" in body["message"]
    status, body = await call("GET", "api/catalog", token="unknown")
    assert status == 401 and body["error"] == "unauthorized"
    status, body = await call("GET", "api/catalog", token="no-access-token")
    assert status == 403 and "access:services!service=" in body["message"]
    status, body = await call("GET", "api/catalog", token="alice-token")
    assert (status, body) == (200, {"entries": []})
    # Tokens in URLs are not read (they would end up in logs).
    status, _ = await call("GET", "api/catalog", token=None, token_param="alice-token")
    assert status == 401


async def test_me(call: Client) -> None:
    assert await call("GET", "api/me", token="alice-token") == (
        200,
        {"name": "alice", "kind": "user", "is_admin": False},
    )
    assert (await call("GET", "api/me", token="scoped-token"))[1]["is_admin"] is True


@pytest.mark.parametrize("token", ["admin-token", "scoped-token", "grouped-token"])
async def test_admins_change_the_catalog(call: Client, token: str) -> None:
    status, created = await call("POST", ADMIN, token, entry("wx", description="Weather"))
    assert status == 201, created
    assert created["managed_by"] == "admin"
    status, changed = await call("PUT", f"{ADMIN}/wx", token, {"display_name": "Weather"})
    assert status == 200 and changed["display_name"] == "Weather"
    status, listing = await call("GET", "api/catalog", token="alice-token")
    assert [e["display_name"] for e in listing["entries"]] == ["Weather"]
    assert await call("DELETE", f"{ADMIN}/wx", token) == (204, None)
    assert (await call("GET", "api/catalog", token="alice-token"))[1] == {"entries": []}

    status, audit = await call("GET", "api/admin/audit", token)
    actor = model_name(token)
    assert [(a["actor"], a["action"]) for a in audit["entries"]][:3] == [
        (actor, "catalog.delete"),
        (actor, "catalog.update"),
        (actor, "catalog.create"),
    ]


def model_name(token: str) -> str:
    return token.removesuffix("-token")


async def test_edits_with_a_stale_if_match_are_412(call: Client) -> None:
    await call("POST", ADMIN, body=entry("wx"))
    loaded = await call.http.get(f"{ADMIN}/wx", headers={"Authorization": "token admin-token"})
    etag = loaded.headers["ETag"]
    assert etag == '"1"' == loaded.json()["etag"]
    stale = {"If-Match": etag}
    status, changed = await call("PUT", f"{ADMIN}/wx", "scoped-token", {"enabled": False}, stale)
    assert status == 200 and changed["etag"] == '"2"'
    for method, body in (("PUT", {"description": "Mine"}), ("DELETE", None)):
        status, reply = await call(method, f"{ADMIN}/wx", "admin-token", body, stale)
        assert status == 412 and reply["error"] == "precondition_failed"
        assert "'wx' was changed by scoped at " in reply["message"]
        assert reply["message"].endswith("reload it and apply your change again.")
    status, audit = await call("GET", "api/admin/audit")
    assert [(a["actor"], a["action"]) for a in audit["entries"]] == [
        ("scoped", "catalog.update"),
        ("admin", "catalog.create"),
    ]
    status, now = await call("PUT", f"{ADMIN}/wx", body={"enabled": True}, headers=stale)
    assert status == 412
    status, now = await call("PUT", f"{ADMIN}/wx", body={"enabled": True})  # last writer wins
    assert status == 200 and now["enabled"] is True and now["etag"] == '"3"'


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", ADMIN, None),
        ("POST", ADMIN, entry("x")),
        ("POST", f"{ADMIN}/import", {"entries": [entry("x")]}),
        ("GET", f"{ADMIN}/x", None),
        ("PUT", f"{ADMIN}/x", {"enabled": False}),
        ("DELETE", f"{ADMIN}/x", None),
        ("GET", "api/admin/audit", None),
    ],
)
async def test_normal_users_get_403_on_admin_endpoints(
    call: Client, method: str, path: str, body: Any
) -> None:
    status, reply = await call(method, path, "alice-token", body)
    assert status == 403, reply
    assert reply["error"] == "forbidden"
    assert reply["message"].startswith("'alice' is not a dodo administrator at the hub")
    # Said of every admin endpoint, reads included: not "change the approved catalog".
    administer = "administer the catalog (read and change its entries, read its audit log"
    assert administer in reply["message"]


async def test_etag_and_304(call: Client, service: ServiceRunner) -> None:
    await call("POST", ADMIN, body=entry("one"))
    response = await call.http.get("api/catalog", headers={"Authorization": "token alice-token"})
    etag = response.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    # The same ETag the catalog's own cache computes for these entries, on any database.
    assert etag == CatalogCache(0).put(response.json()["entries"]).etag
    again = await call.http.get(
        "api/catalog", headers={"Authorization": "token alice-token", "If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""
    # A list of ETags, or the weak form, matches too (If-None-Match compares weakly).
    for header in (f'"other", {etag}', f"W/{etag}"):
        listed = await call.http.get(
            "api/catalog", headers={"Authorization": "token alice-token", "If-None-Match": header}
        )
        assert listed.status_code == 304, header
    # An edit that changes nothing leaves the content, and so the ETag, as it was.
    assert (await call("PUT", f"{ADMIN}/one", body={"description": ""}))[0] == 200
    same = await call.http.get("api/catalog", headers={"Authorization": "token alice-token"})
    assert same.headers["ETag"] == etag
    await call("POST", ADMIN, body=entry("two"))
    changed = await call.http.get(
        "api/catalog", headers={"Authorization": "token alice-token", "If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


async def test_errors_name_the_fields(call: Client) -> None:
    status, body = await call("POST", ADMIN, body={"id": "Bad Id", "url": 5, "extra": 1})
    assert status == 400 and body["error"] == "invalid"
    assert set(body["fields"]) == {"id", "url", "extra"}
    await call("POST", ADMIN, body=entry("one"))
    status, body = await call("POST", ADMIN, body=entry("one", url="https://x.example.com/"))
    assert status == 409 and body["error"] == "conflict"
    status, body = await call("POST", ADMIN, body=None)
    assert status == 400 and "needs a JSON body" in body["message"]
    status, body = await call("GET", f"{ADMIN}/nope")
    assert status == 404 and body["error"] == "not_found"
    status, body = await call("GET", "api/nothing-here")
    assert (status, body["error"]) == (404, "not_found")
    assert body["message"] == "No such dodo catalog service endpoint."
    status, body = await call("PATCH", ADMIN, body={})
    assert (status, body["error"]) == (405, "method_not_allowed")


async def test_import_server_json(call: Client) -> None:
    doc = {
        "name": "io.example/weather",
        "remotes": [{"type": "streamable-http", "url": "https://weather.example.com/mcp"}],
    }
    status, body = await call("POST", f"{ADMIN}/import", body=doc)
    assert status == 201 and [e["id"] for e in body["entries"]] == ["weather"]


async def test_configuration_is_seeded_and_reconciled(db_url: str, tmp_path: Path) -> None:
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps({"entries": [entry("from-file")]}))
    first = ServiceRunner(db_url, catalog=[entry("listed")], catalog_file=str(catalog_file))
    await first.start()
    try:
        ids = [e["id"] for e in (await first.hub.catalog.enabled()).entries]
        assert sorted(ids) == ["from-file", "listed"]
        await first.hub.catalog.create("admin", entry("by-admin"))
    finally:
        await first.stop()
    second = ServiceRunner(db_url, catalog=[entry("listed")])
    await second.start()
    try:
        ids = [e["id"] for e in (await second.hub.catalog.enabled()).entries]
        assert sorted(ids) == ["by-admin", "listed"]  # the file's entry went, the admin's stayed
    finally:
        await second.stop()


async def test_jupyterhubs_health_check_is_answered_quietly(
    service: ServiceRunner, caplog: pytest.LogCaptureFixture
) -> None:
    # What the hub runs when it starts the service and every service_check_interval:
    # GET <url><prefix>, without a token (jupyterhub.app.check_services_health).
    from jupyterhub.httpclient import JupyterHubHTTPClient
    from jupyterhub.utils import wait_for_http_server

    try:
        with caplog.at_level(logging.DEBUG, logger="dodo_jupyter.hub.access"):
            response = await wait_for_http_server(service.url, timeout=5)
        assert response.status == 200
    finally:
        await JupyterHubHTTPClient.loop_instance().close()
    logged = [r for r in caplog.records if r.name == "dodo_jupyter.hub.access"]
    assert [(r.levelno, r.getMessage().split(" (")[0]) for r in logged] == [
        (logging.DEBUG, "200 GET /services/dodo/")
    ]
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        answer = await http.get("")
        assert answer.json() == {"status": "ok"}  # and nothing else, to anyone
        assert (await http.head("")).status_code == 200
        assert (await http.get("nothing-here")).status_code == 404


async def test_an_unopenable_database_is_503_json() -> None:
    runner = ServiceRunner("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    from tornado.httpserver import HTTPServer

    runner.server = HTTPServer(runner.app.make_web_app(runner.hub))
    runner.server.add_sockets(runner.sockets)
    try:
        async with httpx.AsyncClient(base_url=runner.url, timeout=10) as http:
            response = await http.get("api/catalog", headers={"Authorization": "token a"})
        assert response.status_code == 503
        body = response.json()
        assert body["error"] == "unavailable" and "DodoHubApp.db_url" in body["message"]
        assert "nobody" not in body["message"]
        # JupyterHub's health check sees it too (the hub logs a warning for a 5xx).
        async with httpx.AsyncClient(base_url=runner.url, timeout=10) as http:
            assert (await http.get("")).status_code == 503
    finally:
        runner.server.stop()


def record(record_id: str, **fields: Any) -> dict[str, Any]:
    """A forwarded tool-call record as a user's server sends it."""
    return {
        "id": record_id,
        "at": "2026-12-04T10:00:00+00:00",
        "username": "alice",
        "path": "gateway",
        "server_id": "gh",
        "tool": "delete_repo",
        "outcome": "refused_policy",
        "duration_ms": 3,
        "arguments_bytes": 12,
        "result_bytes": 0,
        "arguments_hash": "ab" * 32,
        **fields,
    }


async def test_servers_forward_calls_kept_once_under_their_own_name(call: Client) -> None:
    calls = [record("r1"), record("r2", username="bob"), record("bad", outcome="great")]
    status, tally = await call("POST", "api/tool-calls", "alice-token", {"calls": calls})
    assert (status, tally) == (200, {"stored": 2, "known": 0, "rejected": ["bad"]})
    status, tally = await call("POST", "api/tool-calls", "alice-token", {"calls": calls[:2]})
    assert (status, tally["stored"], tally["known"]) == (200, 0, 2)  # sent again: kept once

    status, body = await call("GET", "api/admin/tool-calls")
    assert status == 200
    assert sorted((c["id"], c["username"]) for c in body["calls"]) == [
        ("r1", "alice"),
        ("r2", "alice"),  # a record cannot speak for another user
    ]
    assert (await call("GET", "api/admin/tool-calls", user="bob"))[1] == {"calls": []}
    # Paging back from a record (ids are not numbers).
    newest, older = body["calls"][0]["id"], body["calls"][1]["id"]
    status, page = await call("GET", "api/admin/tool-calls", before=newest, limit="5")
    assert (status, [c["id"] for c in page["calls"]]) == (200, [older])
    status, bad = await call("GET", "api/admin/tool-calls", limit="many")
    assert status == 400 and "'limit' must be a whole number" in bad["message"]
    status, body = await call("GET", "api/admin/tool-calls", "alice-token")
    assert status == 403
    status, body = await call("POST", "api/tool-calls", "alice-token", {"calls": "nope"})
    assert status == 400 and "'calls' must be a list" in body["message"]


async def test_the_service_serves_its_metrics_to_callers_with_access(
    service: ServiceRunner,
) -> None:
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        assert (await http.get("metrics")).status_code == 401
        answer = await http.get("metrics", headers={"Authorization": "token alice-token"})
    assert answer.status_code == 200 and "text/plain" in answer.headers["content-type"]
    assert "process_cpu_seconds_total" in answer.text or "python_info" in answer.text


async def test_records_wait_through_an_outage_and_arrive_once(db_url: str, tmp_path: Path) -> None:
    from dodo_jupyter.catalog.hub_client import HubCatalogClient
    from dodo_jupyter.exceptions import HubCatalogUnavailable
    from dodo_jupyter.governance.history import CallHistory, CallRecord
    from dodo_jupyter.store import Store

    # The user's server keeps its own store; the service has another.
    server_store = Store(f"sqlite:///{tmp_path / 'server.sqlite'}", tmp_path / "server.key")
    server_store.open_sync()
    history = CallHistory(server_store)
    for n in range(250):  # more than one batch
        history.record(CallRecord("alice", "kernel", "gh", f"tool{n}", "ok", n, 2, 9, "h"))
    await history.flush()

    with socket.socket() as closed:  # a port nobody listens on: the service is down
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}/services/dodo/"
    with pytest.raises(HubCatalogUnavailable):
        await history.forward(HubCatalogClient(down, "alice-token", timeout=2).send_calls)
    assert len(await history.unforwarded(1000)) == 250

    restarted = CallHistory(server_store)  # the server restarted: the records are stored
    service = ServiceRunner(db_url)
    await service.start()
    try:
        client = HubCatalogClient(service.url, "alice-token", timeout=5)
        assert await restarted.forward(client.send_calls) == 250
        assert await restarted.forward(client.send_calls) == 0
        # A mark lost in a crash: the batch goes again, and the service keeps it once.
        tally = await client.send_calls(await restarted.query("alice", limit=5))
        assert (tally["stored"], tally["known"]) == (0, 5)
        received = await service.hub.history.query(None, limit=1000)
    finally:
        await service.stop()
        server_store.close()
    assert len(received) == len({r["id"] for r in received}) == 250
    assert {r["username"] for r in received} == {"alice"}
