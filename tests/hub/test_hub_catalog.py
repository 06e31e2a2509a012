"""Issue 5 on a real JupyterHub: the hub catalog service, one catalog for every user.

The hub runs the ``jupyterhub_config.py`` block of ``docs/jupyterhub.md`` (the service
``dodo``, the custom scope, the ``dodo-admin`` role, server token scopes, and
``DODO_HUB_CATALOG_URL`` for the servers), once with the service on SQLite and once on
PostgreSQL (a schema of its own): the tests run on both, and the catalog's ETag, a hash
of its exact JSON, is checked against the one computed here, so both databases give the
same answer byte for byte.

Users: ``admin`` (hub admin), ``alice``, and ``bob``, whom ``DodoApp.admin_users`` makes a
dodo administrator *for the servers only*: the service, asking the hub, does not agree.
The servers read the service at most every second (``catalog_cache_ttl``) and give up on
it after two (``hub_catalog_timeout``). Tests run in order and share the hub.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dodo_jupyter.catalog.service import CatalogCache

from ..conftest import postgres_schema
from .harness import Hub

pytestmark = pytest.mark.hub_e2e

CATALOG = "dodo/api/mcp-catalog"
ADMIN = "dodo/api/admin/approved-mcps"
TOKENS = "dodo/api/user/mcp-tokens"
SERVICE = "services/dodo/"
DEADLINE = 20.0

WEATHER = {
    "id": "weather",
    "url": "https://weather.example.com/mcp",
    "display_name": "Weather",
    "description": "Forecasts",
}
TICKETS = {"id": "tickets", "url": "https://tickets.example.com/mcp", "display_name": "Tickets"}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def hub_catalog_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'dodo_catalog.sqlite'}"
        return
    with postgres_schema("dodo_hub") as url:
        yield url


@pytest.fixture(scope="module")
def hub_dodo_settings() -> dict[str, Any]:
    return {"catalog_cache_ttl": 1.0, "hub_catalog_timeout": 2.0, "admin_users": ["bob"]}


@pytest.fixture(scope="module")
def servers(hub: Hub) -> Hub:
    hub.spawn("admin", "alice", "bob")
    return hub


# -- helpers ----------------------------------------------------------------------------


def at_service(hub: Hub, method: str, path: str, token: str, json: Any = None) -> Any:
    """``method`` on the catalog service through the proxy (``/services/dodo/...``)."""
    return hub.request(method, f"/{SERVICE}{path}", token=token, json=json)


def catalog_of(hub: Hub, server: str) -> dict[str, Any]:
    status, body = hub.call(server, "GET", CATALOG, hub.user_token(server))
    assert status == 200, (body, hub.log_tail())
    return dict(body)


def ids(body: dict[str, Any]) -> list[str]:
    return [e["id"] for e in body["entries"]]


def wait_for(
    hub: Hub, what: str, probe: Callable[[], dict[str, Any]], done: Callable[[Any], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {DEADLINE} s for {what}; last: {value}\n{hub.log_tail()}")
        time.sleep(0.2)


def expected_etag(entries: list[dict[str, Any]]) -> str:
    """The service's ETag for exactly these entries (what CatalogCache computes)."""
    return CatalogCache(0).put(entries).etag


# -- the tests, in order ----------------------------------------------------------------


def test_the_hubs_health_check_of_the_service_is_answered(hub: Hub) -> None:
    # The hub checked the service when it started it (GET <url>/services/dodo/, no
    # token): answered 200 and logged at debug level only, not as a 404 warning.
    import httpx

    log = hub.log_path.read_text(errors="replace")
    assert "GET /services/dodo/ (" not in log, hub.log_tail()
    direct = httpx.get(f"http://127.0.0.1:{hub.catalog_port}/{SERVICE}", timeout=10)
    assert (direct.status_code, direct.json()) == (200, {"status": "ok"})


def test_admin_adds_an_entry_and_alice_lists_it(servers: Hub) -> None:
    hub = servers
    assert ids(catalog_of(hub, "alice")) == []  # --no-default-catalog: nothing yet

    status, created = hub.call("admin", "POST", ADMIN, hub.user_token("admin"), WEATHER)
    assert status == 201, (created, hub.log_tail())
    assert created["created_by"] == "admin" and created["managed_by"] == "admin"

    body = wait_for(hub, "alice's server to list it", lambda: catalog_of(hub, "alice"), ids)
    assert ids(body) == ["weather"]
    assert body["catalog_source"] == "hub" and body["catalog_stale"] is False
    assert body["entries"][0]["description"] == "Forecasts"

    # The service itself, asked with alice's server token: the same entries, the ETag
    # this module computes for them (on SQLite and on PostgreSQL), and 304 when unchanged.
    server_token = hub.server_token("alice")
    response = at_service(hub, "GET", "api/catalog", server_token)
    assert response.status_code == 200, response.text
    assert response.json()["entries"] == body["entries"]
    assert response.headers["ETag"] == expected_etag(body["entries"])
    again = hub.request(
        "GET",
        f"/{SERVICE}api/catalog",
        token=server_token,
        headers={"If-None-Match": response.headers["ETag"]},
    )
    assert again.status_code == 304


def test_normal_users_get_403_on_admin_endpoints(servers: Hub) -> None:
    hub = servers
    alice = hub.user_token("alice")
    for method, path, body in [
        ("GET", ADMIN, None),
        ("POST", ADMIN, TICKETS),
        ("POST", f"{ADMIN}/import", {"entries": [TICKETS]}),
        ("PUT", f"{ADMIN}/weather", {"enabled": False}),
        ("DELETE", f"{ADMIN}/weather", None),
    ]:
        # At her own server: refused there.
        status, reply = hub.call("alice", method, path, alice, body)
        assert status == 403, (method, path, reply)
        assert reply["message"].startswith("'alice' is not a dodo administrator")
        # Straight at the service, with her own token or her server's: refused there.
        service_path = path.removeprefix("dodo/")
        for token in (alice, hub.server_token("alice")):
            response = at_service(hub, method, service_path, token, body)
            assert response.status_code == 403, (method, path, response.text)
            assert "'alice' is not a dodo administrator at the hub" in response.json()["message"]

    # bob is an administrator for the servers (DodoApp.admin_users), not at the hub: his
    # server forwards, the service asks the hub and refuses; its answer is passed on.
    status, reply = hub.call("bob", "POST", ADMIN, hub.user_token("bob"), TICKETS)
    assert status == 403, reply
    assert reply["message"].startswith("'bob' is not a dodo administrator at the hub")
    assert ids(catalog_of(hub, "alice")) == ["weather"]


def test_visitors_cannot_forward_and_the_owner_is_unaffected(servers: Hub) -> None:
    hub = servers
    bob = hub.user_token("bob")  # before the share: an existing token gains it
    hub.share("alice", "bob")
    try:
        for visitor, token in (("bob", bob), ("admin", hub.user_token("admin"))):
            # bob is a dodo admin for servers, admin a hub admin: both are visitors here.
            status, reply = hub.call("alice", "POST", ADMIN, token, TICKETS)
            assert status == 403, (visitor, reply)
            assert f"'{visitor}' is not the owner of this server ('alice' is)" in reply["message"]
        status, reply = hub.call("alice", "GET", TOKENS, bob)
        assert status == 403 and "is not the owner of this server" in reply["message"]
        # Visitors read the catalog; the owner's personal endpoints work as before.
        status, body = hub.call("alice", "GET", CATALOG, bob)
        assert status == 200 and ids(body) == ["weather"]
        status, _ = hub.call("alice", "GET", TOKENS, hub.user_token("alice"))
        assert status == 200
    finally:
        hub.unshare("alice", "bob")
    assert ids(catalog_of(hub, "alice")) == ["weather"]  # nothing was forwarded


def test_edits_and_deletes_reach_every_server(servers: Hub) -> None:
    hub = servers
    admin = hub.user_token("admin")
    status, body = hub.call("admin", "POST", f"{ADMIN}/import", admin, {"entries": [TICKETS]})
    assert status == 201, body
    status, body = hub.call("admin", "PUT", f"{ADMIN}/weather", admin, {"enabled": False})
    assert status == 200 and body["enabled"] is False and body["updated_by"] == "admin"
    status, body = hub.call("admin", "POST", ADMIN, admin, {"id": "Bad Id", "url": 5})
    assert status == 400 and set(body["fields"]) == {"id", "url"}
    status, body = hub.call("admin", "POST", ADMIN, admin, TICKETS)
    assert status == 409 and body["error"] == "conflict"

    for name in ("alice", "bob"):
        body = wait_for(
            hub,
            f"{name}'s server",
            lambda n=name: catalog_of(hub, n),
            lambda b: ids(b) == ["tickets"],
        )
        assert body["catalog_stale"] is False
    assert hub.call("admin", "DELETE", f"{ADMIN}/weather", admin)[0] == 204
    status, listing = hub.call("admin", "GET", ADMIN, admin)
    assert status == 200 and [e["id"] for e in listing["entries"]] == ["tickets"]

    audit = at_service(hub, "GET", "api/admin/audit", admin).json()["entries"]
    assert [(a["actor"], a["action"], a["target"]) for a in audit][:3] == [
        ("admin", "catalog.delete", "weather"),
        ("admin", "catalog.update", "weather"),
        ("admin", "catalog.import", "tickets"),
    ]
    body = catalog_of(hub, "alice")
    response = at_service(hub, "GET", "api/catalog", hub.user_token("alice"))
    assert response.headers["ETag"] == expected_etag(body["entries"])


def test_service_down_users_keep_the_last_good_catalog(servers: Hub) -> None:
    hub = servers
    before = catalog_of(hub, "alice")
    assert ids(before) == ["tickets"] and before["catalog_stale"] is False
    pid = hub.service_pid("dodo")
    os.kill(pid, signal.SIGSTOP)  # hung: connections open, nothing answers
    try:
        body = wait_for(
            hub,
            "alice's catalog to go stale",
            lambda: catalog_of(hub, "alice"),
            lambda b: b["catalog_stale"],
        )
        assert body["entries"] == before["entries"]
        assert "did not answer within 2 s" in body["catalog_stale_reason"]
        assert "Showing the last good copy" in body["catalog_stale_reason"]

        # A write while it hangs: 503, and the honest caveat that the service may still
        # apply it (the request sits in its socket; it does when it wakes up).
        status, reply = hub.call("admin", "POST", ADMIN, hub.user_token("admin"), WEATHER)
        assert status == 503 and reply["error"] == "hub_catalog_unavailable", reply
        assert "The change may still be made" in reply["message"]

        # alice's server restarts while the service is still down: the copy is in its store.
        hub.stop_server("alice")
        hub.spawn("alice")
        body = catalog_of(hub, "alice")
        assert body["entries"] == before["entries"]
        assert body["catalog_source"] == "hub" and body["catalog_stale"] is True
        assert "Showing the last good copy" in body["catalog_stale_reason"]
    finally:
        os.kill(pid, signal.SIGCONT)
    body = wait_for(
        hub,
        "alice's catalog to be current",
        lambda: catalog_of(hub, "alice"),
        lambda b: not b["catalog_stale"],
    )
    assert body["catalog_stale_reason"] is None
    assert [e for e in body["entries"] if e["id"] != "weather"] == before["entries"]
