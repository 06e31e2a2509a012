"""Faults through the gateway: an MCP server that answers 500, malformed JSON or SSE, a
tool result that is not MCP's, cuts its stream, or is slower than the timeout (a server
that is down: ``test_gateway_tools``). Each gives a tool error (or a server state) with a
clear message, the other server keeps working, and everything
recovers by itself once the fault clears; and an authorization server whose token
endpoint fails or is too slow while a token must be refreshed (the sign-in is kept) —
against real MCP and authorization servers on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server

from .conftest import Api
from .mcp_peers import RunningServer, buffered, running_mcp_server, tool_server
from .test_oauth_e2e import connect, expire_access_token, runtime_of, stored_tokens

TOOLS = "dodo/api/mcp/tools"
CALL = "dodo/api/mcp/tools/call"
SERVERS = "dodo/api/mcp/servers"

pytestmark = pytest.mark.usefixtures("upstreams_closed_first")


class Faults:
    """ASGI middleware: while ``mode`` is set, requests for ``method`` get that fault
    instead of the real server's answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.mode: str | None = None
        self.method = "tools/call"
        self.delay = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.mode is None:
            await self.app(scope, receive, send)
            return
        body, replay = await buffered(receive)
        try:
            message = json.loads(body or b"{}")
            method = message.get("method")
        except ValueError:
            message, method = {}, None

        if method != self.method:
            await self.app(scope, replay, send)
            return
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
            await self.app(scope, replay, send)
            return
        status, content_type, payload, cut = {
            "http500": (500, b"text/plain", b"boom", False),
            "bad_json": (200, b"application/json", b'{"jsonrpc": "2.0", "id": ', False),
            "bad_sse": (200, b"text/event-stream", b"event: message\ndata: {oops\n\n", False),
            "cut": (200, b"text/event-stream", b'event: message\ndata: {"jsonrpc"', True),
            # An answer, but no tool result: a text block without its text.
            "bad_result": (200, b"application/json", _bad_result(message.get("id")), False),
        }[self.mode]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": payload, "more_body": cut})
        if cut:
            raise ConnectionResetError("the test server cuts the stream")


def _bad_result(request_id: Any) -> bytes:
    result = {"content": [{"type": "text"}], "isError": False}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}).encode()


@pytest.fixture
def faults() -> Faults:
    return Faults(tool_server("faulty").streamable_http_app(host="127.0.0.1"))


@pytest.fixture
def faulty(faults: Faults) -> Iterator[RunningServer]:
    with running_mcp_server(app=faults) as server:
        yield server


@pytest.fixture
def good() -> Iterator[RunningServer]:
    with running_mcp_server(name="good") as server:
        yield server


@pytest.fixture
def dodo_config(
    dodo_config: dict[str, Any], faulty: RunningServer, good: RunningServer
) -> dict[str, Any]:
    return {
        **dodo_config,
        "upstream_call_timeout": 1.5,
        "upstream_list_timeout": 1.5,
        "catalog": [
            {"id": "faulty", "url": faulty.url, "auth_type": "none"},
            {"id": "good", "url": good.url, "auth_type": "none"},
        ],
    }


async def connect_both(api: Api) -> None:
    for catalog_id in ("faulty", "good"):
        status, body = await api("POST", "dodo/api/mcp/start-auth", {"catalog_id": catalog_id})
        assert body["state"] == "connected", body
    status, body = await api("GET", TOOLS)
    assert {"faulty__greet", "good__greet"} <= {t["name"] for t in body["tools"]}


async def greet(api: Api, server: str) -> dict[str, Any]:
    body = {"name": f"{server}__greet", "arguments": {"who": "x"}}
    status, result = await api("POST", CALL, body)
    assert status == 200, result
    return dict(result)


def text(result: dict[str, Any]) -> str:
    return str(result["content"][0]["text"])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("http500", "HTTP 500"),
        ("bad_json", "malformed JSON"),
        ("bad_sse", "malformed JSON"),
        ("cut", "ended without an answer"),
        ("slow", "did not answer within 1.5 s (tools/call)"),
        ("bad_result", "a tool result that is not valid MCP: content[0] (text) has no 'text'"),
    ],
)
async def test_a_failing_call_is_a_clear_tool_error_and_recovers(
    api: Api, faults: Faults, mode: str, expected: str
) -> None:
    await connect_both(api)
    faults.mode, faults.delay = mode, 4.0
    failed = await greet(api, "faulty")
    assert failed["isError"] and text(failed).startswith("faulty: ")
    assert expected in text(failed), text(failed)
    assert "Traceback" not in text(failed)
    ok = await greet(api, "good")  # the other server is not affected
    assert not ok.get("isError") and text(ok) == "hello x"

    faults.mode = None
    for _ in range(40):  # a broken session is reopened after its backoff
        recovered = await greet(api, "faulty")
        if not recovered.get("isError"):
            break
        await asyncio.sleep(0.25)
    assert text(recovered) == "hello x"


@pytest.mark.parametrize("mode", ["http500", "bad_sse", "slow"])
async def test_a_failing_listing_leaves_the_others_and_recovers(
    api: Api, faults: Faults, mode: str
) -> None:
    faults.method, faults.mode, faults.delay = "tools/list", mode, 4.0
    for catalog_id in ("faulty", "good"):
        await api("POST", "dodo/api/mcp/start-auth", {"catalog_id": catalog_id})
    status, body = await api("GET", TOOLS)
    names = {t["name"] for t in body["tools"]}
    assert "good__greet" in names and "faulty__greet" not in names
    servers = {s["catalog_id"]: s for s in (await api("GET", SERVERS))[1]["servers"]}
    assert servers["faulty"]["state"] == "error" and servers["faulty"]["error"]
    assert servers["good"]["state"] == "connected"

    faults.mode = None
    for _ in range(40):
        names = {t["name"] for t in (await api("GET", TOOLS))[1]["tools"]}
        if "faulty__greet" in names:
            break
        await asyncio.sleep(0.25)
    assert "faulty__greet" in names
    servers = {s["catalog_id"]: s for s in (await api("GET", SERVERS))[1]["servers"]}
    assert servers["faulty"]["state"] == "connected" and not servers["faulty"]["error"]


class TokenEndpointFaults:
    """Wraps the demo server's app: while ``mode`` is set, ``/token`` answers 500 or
    answers only after ``delay`` seconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.mode: str | None = None
        self.delay = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/token" or self.mode is None:
            await self.app(scope, receive, send)
            return
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"token service down"})


class TestAuthorizationServerFaults:
    @pytest.fixture
    def demo(self) -> Iterator[DemoHandle]:
        with running_demo_server(DemoConfig(port=0)) as handle:
            yield handle

    @pytest.fixture
    def dodo_config(
        self, dodo_config: dict[str, Any], demo: DemoHandle, good: RunningServer
    ) -> dict[str, Any]:
        return {
            **dodo_config,
            "catalog": [
                {"id": "demo", "url": demo.url},
                {"id": "good", "url": good.url, "auth_type": "none"},
            ],
        }

    @pytest.mark.parametrize("mode", ["http500", "slow"])
    async def test_a_failing_token_endpoint_keeps_the_sign_in_and_recovers(
        self, api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle, mode: str
    ) -> None:
        connection_id = await connect(api, jp_fetch)
        await api("POST", "dodo/api/mcp/start-auth", {"catalog_id": "good"})
        await api("GET", TOOLS)  # an agent listed the tools before the token expired
        runtime = runtime_of(jp_serverapp)
        before = stored_tokens(runtime, connection_id)
        faults = TokenEndpointFaults(demo.server.app)
        demo.server.app = faults  # type: ignore[method-assign]
        faults.mode, faults.delay = mode, 12.0  # beyond the outbound timeout (10 s)
        await expire_access_token(runtime, connection_id)

        body = {"name": "demo__add", "arguments": {"a": 1, "b": 2}}
        status, failed = await api("POST", CALL, body)
        assert status == 200 and failed["isError"], failed
        assert text(failed).startswith("demo: ") and "Traceback" not in text(failed)
        ok = await greet(api, "good")  # the other server is not affected
        assert text(ok) == "hello x"
        # The sign-in is kept: same refresh token, no new sign-in asked for.
        assert stored_tokens(runtime, connection_id)["refresh_token"] == before["refresh_token"]
        servers = {s["catalog_id"]: s for s in (await api("GET", SERVERS))[1]["servers"]}
        assert servers["demo"]["state"] != "needs_auth", servers["demo"]

        faults.mode = None
        for _ in range(80):  # a slow refresh still under way finishes first
            status, result = await api("POST", CALL, body)
            if not result.get("isError"):
                break
            await asyncio.sleep(0.25)
        assert not result.get("isError"), result
        assert demo.stats.snapshot()["refreshes"] == 1
