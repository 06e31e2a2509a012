"""Gateway requests run the hub owner check before trusting a token: after the hub stops
vouching for the owner, an agent's next request finds every secret gone."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from .hub_identity import hub_server_config, hub_user
from .mcp_peers import INITIALIZE
from .oauth_peers import FakeServer
from .test_gateway_endpoint import MCP_ACCEPT


@pytest.fixture
def hub_api(jp_asyncio_loop: Any) -> Iterator[FakeServer]:
    async def make() -> FakeServer:
        return FakeServer()

    server = jp_asyncio_loop.run_until_complete(make())
    server.routes["/hub/api/user"] = lambda req: (
        200,
        {"Content-Type": "application/json"},
        json.dumps({"name": "alice"}).encode(),
    )
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _hub(hub: Callable[..., None], hub_api: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hub(alice=hub_user("alice"))
    monkeypatch.setenv("JUPYTERHUB_API_URL", hub_api.base + "/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")


@pytest.fixture
def jp_server_config(dodo_config: dict[str, Any]) -> dict[str, Any]:
    return hub_server_config(dodo_config, hygiene_interval=1.0)


async def test_agent_request_after_the_hub_dropped_the_owner(
    jp_serverapp: Any,
    http_server_client: Any,
    jp_http_port: int,
    jp_base_url: str,
    hub_api: FakeServer,
) -> None:
    runtime = jp_serverapp.web_app.settings["dodo"]
    await runtime.ready()
    token = (await runtime.tokens.create("alice", "agent")).token
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}dodo/mcp"
    headers = {**MCP_ACCEPT, "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10) as client:
        ok = await client.post(url, content=json.dumps(INITIALIZE), headers=headers)
        assert ok.status_code == 200
        hub_api.routes["/hub/api/user"] = lambda req: (404, {}, b"")
        runtime._hygiene_at -= 120  # the last check is old: the next request asks again
        gone = await client.post(url, content=json.dumps(INITIALIZE), headers=headers)
    assert gone.status_code == 401
    assert hub_api.requests.count(("GET", "/hub/api/user")) >= 2
    assert await runtime.tokens.authenticate(token) is None
