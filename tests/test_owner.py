"""The owner record: drift wipes every secret of the previous owner (and revokes upstream),
hygiene asks the hub, and a network failure never destroys anything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server
from dodo_jupyter.identity import HubIdentityResolver, LocalIdentityResolver
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.runtime_settings import RuntimeSettings
from dodo_jupyter.store.models import (
    AuditLog,
    MCPConnection,
    OAuthClient,
    OwnerRecord,
    UserMCPToken,
)

from .oauth_peers import FakeServer, callback_query, consent

pytestmark = pytest.mark.asyncio

API = "http://127.0.0.1:18081/hub/api"
REDIRECT = "http://127.0.0.1:9/dodo/oauth/callback"


@pytest.fixture
def demo() -> Iterator[DemoHandle]:
    with running_demo_server(DemoConfig(port=0)) as handle:
        yield handle


@pytest.fixture
def build(db_url: str, tmp_path: Path, demo: DemoHandle) -> Iterator[Any]:
    made: list[DodoRuntime] = []

    def make(
        owner: str, *, api_url: str = API, hub_token: str = "", mode: str = "hub"
    ) -> DodoRuntime:
        settings = RuntimeSettings(
            db_url=db_url,
            key_file=tmp_path / "k",
            environ={},
            default_catalog=False,
            allow_insecure_loopback=True,
            catalog=[{"id": "demo", "url": demo.url}],
            hub_api_token=hub_token,
            catalog_cache_ttl=0.0,
        )
        resolver = (
            HubIdentityResolver(owner, api_url) if mode == "hub" else LocalIdentityResolver(owner)
        )
        runtime = DodoRuntime(settings, resolver)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        if hasattr(runtime, "store"):
            runtime.store.close()


async def connected(runtime: DodoRuntime) -> tuple[str, str]:
    """Connect the demo server for the owner; returns (connection id, gateway token)."""
    await runtime.mcp_ready()
    owner = runtime.resolver.owner
    started = await runtime.connections.start_auth(owner, catalog_id="demo", redirect_uri=REDIRECT)
    await runtime.connections.complete(
        owner, callback_query(await consent(started["authorize_url"]))
    )
    token = await runtime.tokens.create(owner, "agent")
    return started["connection_id"], token.token


def count(runtime: DodoRuntime, model: Any) -> int:
    return runtime.store.db.read_sync(lambda s: s.query(model).count())


async def test_first_start_records_the_owner_and_a_restart_keeps_everything(build: Any) -> None:
    first = build("alice")
    await first.ready()
    conn_id, token = await connected(first)
    first.store.close()

    again = build("alice")
    await again.ready()
    assert count(again, MCPConnection) == 1 and count(again, UserMCPToken) == 1
    row = again.store.db.read_sync(lambda s: s.get(OwnerRecord, 1))
    assert (row.mode, row.username, row.hub_api_url) == ("hub", "alice", API)
    assert await again.tokens.authenticate(token) == "alice"


@pytest.mark.parametrize(
    ("owner", "api_url", "mode"),
    [
        ("alice2", API, "hub"),
        ("alice", "http://127.0.0.1:28081/hub/api", "hub"),
        ("alice", "", "local"),
    ],
)
async def test_drift_wipes_every_secret_and_revokes_upstream(
    build: Any, demo: DemoHandle, owner: str, api_url: str, mode: str
) -> None:
    first = build("alice")
    await first.ready()
    conn_id, token = await connected(first)
    access = json.loads(
        first.store.vault.decrypt(
            first.store.db.read_sync(lambda s: s.get(MCPConnection, conn_id)).tokens_enc
        )
    )["access_token"]
    first.store.close()

    drifted = build(owner, api_url=api_url, mode=mode)
    await drifted.ready()
    for model in (MCPConnection, OAuthClient, UserMCPToken):
        assert count(drifted, model) == 0, model
    assert await drifted.tokens.authenticate(token) is None
    assert await demo.provider.load_access_token(access) is None  # revoked upstream
    assert [e["id"] for e in (await drifted.catalog.enabled()).entries] == ["demo"]  # kept
    (audit,) = drifted.store.db.read_sync(
        lambda s: s.query(AuditLog).filter(AuditLog.action == "owner.drift").all()
    )
    assert audit.detail["mcp_connections"] == 1 and audit.detail["revoked"] == 1
    assert drifted.store.db.read_sync(lambda s: s.get(OwnerRecord, 1)).username == owner


async def test_email_change_wipes(build: Any) -> None:
    runtime = build("alice")
    await runtime.ready()
    await connected(runtime)
    await runtime.note_owner_email("alice@example.org")
    assert count(runtime, MCPConnection) == 1  # first sight: recorded, nothing wiped
    await runtime.note_owner_email("alice@example.org")
    assert count(runtime, MCPConnection) == 1
    await runtime.note_owner_email("mallory@example.org")
    assert count(runtime, MCPConnection) == 0 and count(runtime, UserMCPToken) == 0


@pytest_asyncio.fixture
async def hub_api() -> Any:
    server = FakeServer()
    yield server
    server.stop()


def answer(status: int, body: Any = None) -> Any:
    return lambda req: (
        status,
        {"Content-Type": "application/json"},
        json.dumps(body or {}).encode(),
    )


@pytest.mark.parametrize(
    ("route", "wiped"),
    [
        (answer(200, {"name": "alice", "user_info": {"email": "a@example.org"}}), False),
        (answer(200, {"name": "alice-renamed"}), True),
        (answer(404), True),
        (answer(403), True),
        (answer(401), True),
        (answer(500), False),
        (answer(502), False),
        (None, False),  # the hub cannot be reached
    ],
)
async def test_hygiene(build: Any, hub_api: FakeServer, route: Any, wiped: bool) -> None:
    api_url = hub_api.base + "/hub/api" if route is not None else "http://127.0.0.1:1/hub/api"
    runtime = build("alice", api_url=api_url, hub_token="server-token")
    await runtime.ready()
    await connected(runtime)
    if route is not None:
        hub_api.routes["/hub/api/user"] = route
    reason = await runtime.hygiene()
    assert (reason is not None) == wiped
    assert count(runtime, MCPConnection) == (0 if wiped else 1)
    assert count(runtime, UserMCPToken) == (0 if wiped else 1)
    if route is not None:
        assert ("GET", "/hub/api/user") in hub_api.requests


async def test_a_user_created_again_under_the_same_name_is_a_new_owner(
    build: Any, hub_api: FakeServer
) -> None:
    runtime = build("alice", api_url=hub_api.base + "/hub/api", hub_token="server-token")
    first = {"name": "alice", "created": "2026-11-01T10:00:00.000000Z"}
    hub_api.routes["/hub/api/user"] = answer(200, first)
    await runtime.ready()
    assert await runtime.hygiene() is None  # first sight of the creation time: recorded
    await connected(runtime)
    assert await runtime.hygiene() is None and count(runtime, MCPConnection) == 1

    # alice was deleted and a new alice created: same hub, same name, a new creation time.
    hub_api.routes["/hub/api/user"] = answer(200, {**first, "created": "2026-11-26T09:00:00Z"})
    await runtime.hygiene()
    assert count(runtime, MCPConnection) == 0 and count(runtime, UserMCPToken) == 0
    # The new alice's own secrets then survive the next checks.
    await connected(runtime)
    await runtime.hygiene()
    assert count(runtime, MCPConnection) == 1
    # A hub that does not show the creation time (narrower token scopes) changes nothing.
    hub_api.routes["/hub/api/user"] = answer(200, {"name": "alice"})
    await runtime.hygiene()
    assert count(runtime, MCPConnection) == 1


async def test_requests_trigger_hygiene_at_most_once_a_minute(
    build: Any, hub_api: FakeServer
) -> None:
    runtime = build("alice", api_url=hub_api.base + "/hub/api", hub_token="server-token")
    hub_api.routes["/hub/api/user"] = answer(200, {"name": "alice"})
    await runtime.ready()
    await runtime.hygiene_if_due()
    await runtime.hygiene_if_due()
    assert hub_api.requests.count(("GET", "/hub/api/user")) == 1
    await connected(runtime)
    runtime._hygiene_at -= 61  # a minute later the user was deleted at the hub
    hub_api.routes["/hub/api/user"] = answer(404)
    await runtime.hygiene_if_due()
    assert count(runtime, MCPConnection) == 0


async def test_a_stopped_server_started_again_for_a_recreated_user_wipes_before_serving(
    build: Any, hub_api: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """alice's server is stopped; the hub deletes alice and creates her again; the new
    alice starts the server on the old home. The hub's answer is part of the start: the
    old secrets are gone before the store is ready (before a request is served or the
    kernels' token is minted), and what the new owner gets then survives."""
    first = {"name": "alice", "created": "2026-11-01T10:00:00.000000Z"}
    hub_api.routes["/hub/api/user"] = answer(200, first)
    old = build("alice", api_url=hub_api.base + "/hub/api", hub_token="server-token")
    await old.ready()
    _, old_token = await connected(old)
    assert count(old, MCPConnection) == 1
    old.store.close()  # the server stops

    hub_api.routes["/hub/api/user"] = answer(200, {**first, "created": "2026-11-26T09:00:00Z"})
    new = build("alice", api_url=hub_api.base + "/hub/api", hub_token="server-token")
    await new.ready()
    assert count(new, MCPConnection) == 0 and count(new, UserMCPToken) == 0
    assert await new.tokens.authenticate(old_token) is None
    (audit,) = new.store.db.read_sync(
        lambda s: s.query(AuditLog).filter(AuditLog.action == "owner.drift").all()
    )
    assert audit.detail["reason"] == "the hub user 'alice' was deleted and created again"
    assert old_token not in json.dumps(audit.detail) + caplog.text
    assert "every secret of the previous owner was wiped" in caplog.text

    kernels = await new.tokens.create("alice", "Jupyter kernels (this server's lifetime)")
    await new.hygiene()  # the background round's first check
    assert await new.tokens.authenticate(kernels.token) == "alice"


async def test_a_token_that_cannot_read_the_creation_time_is_named_with_the_fix(
    build: Any,
    hub_api: FakeServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("dodo_jupyter.owner._WARNED_NO_CREATED", set())
    runtime = build("alice", api_url=hub_api.base + "/hub/api", hub_token="server-token")
    hub_api.routes["/hub/api/user"] = answer(200, {"name": "alice"})  # no read:users!user
    await runtime.ready()
    await runtime.hygiene()
    warnings = [r.getMessage() for r in caplog.records if "read:users!user" in r.getMessage()]
    assert warnings == [
        "dodo hygiene: the hub does not show this server's token when its owner 'alice' was "
        "created, so a user deleted and created again under the same name would inherit "
        'these secrets. Add "read:users!user" to c.Spawner.server_token_scopes '
        "(docs/jupyterhub.md)."
    ]  # once, not at every check
