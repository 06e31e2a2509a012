"""dodo's MCP client (an UpstreamSession over :mod:`dodo_jupyter.upstream.wire`, or over
:mod:`dodo_jupyter.upstream.legacy_sse` for an HTTP+SSE server) against real MCP SDK
servers: SSE and JSON answers, notifications on the call's stream, server requests during
a call (relayed to the caller, or refused without one), resumption after the server
closed the stream, cancellation. The behaviours both transports share are tested on both."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from dodo_jupyter.exceptions import UpstreamError
from dodo_jupyter.upstream import UpstreamSession
from dodo_jupyter.upstream.wire import connect, send_request

from .mcp_peers import RunningServer, running_mcp_server

pytestmark = [
    pytest.mark.asyncio,
    # The tools log as 2025-11-25 servers do; the SDK warns that 2026-07-28 drops it.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]


class MemoryEventStore(EventStore):
    """Every event of every stream, in memory: enough for a server to resume streams."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str, Any]] = []
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = str(next(self._ids))
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        ids = [event_id for event_id, _, _ in self._events]
        if last_event_id not in ids:
            return None
        stream_id = self._events[ids.index(last_event_id)][1]
        for event_id, stream, message in self._events[ids.index(last_event_id) + 1 :]:
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


class Colour(BaseModel):
    colour: str


class Relay:
    """The caller a session relays to: answers elicitations, keeps the log messages."""

    capabilities: dict[str, Any] = {"elicitation": {"form": {}}}

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.told: list[tuple[str, dict[str, Any]]] = []

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((method, params))
        return {"action": "accept", "content": {"colour": "teal"}}

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        self.told.append((method, params))


class Upstream:
    """What the upstream's tools saw (they run on the server's thread)."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()


def upstream_server(seen: Upstream) -> MCPServer:
    mcp = MCPServer("rpc")

    @mcp.tool()
    async def count(n: int, ctx: Context) -> str:
        """Count to n with progress."""
        for step in range(1, n + 1):
            await ctx.report_progress(step, n, f"step {step}")
        return f"counted to {n}"

    @mcp.tool()
    async def change_tools(ctx: Context) -> str:
        """Announce a changed tool list on this call's stream."""
        await ctx.session.send_notification(
            types.ToolListChangedNotification(), related_request_id=ctx.request_id
        )
        return "changed"

    @mcp.tool()
    async def change_tools_later(ctx: Context) -> str:
        """Announce a changed tool list outside this call (on the session's GET stream)."""
        await ctx.session.send_notification(types.ToolListChangedNotification())
        return "announced"

    @mcp.tool()
    async def ping_caller(ctx: Context) -> str:
        """Ping the client in the middle of the call."""
        await ctx.session.send_ping()
        return "pong"

    @mcp.tool()
    async def hang_up_then_answer(ctx: Context) -> str:
        """Close the call's stream, then answer (the client must resume to see it)."""
        await ctx.report_progress(1, 2, "before")
        await ctx.close_sse_stream()
        await asyncio.sleep(0.3)
        return "answered after a resumption"

    @mcp.tool()
    async def ask_colour(ctx: Context) -> str:
        """Ask the client for a colour, logging before it asks."""
        await ctx.log("info", "asking", logger_name="ask")
        answer = await ctx.elicit("Which colour?", Colour)
        return f"{answer.action} {getattr(answer, 'data', None)}"

    @mcp.tool()
    async def think(seconds: float) -> str:
        """Work in silence for a while, then answer."""
        await asyncio.sleep(seconds)
        return "thought"

    @mcp.tool()
    async def wait_forever() -> str:
        """Wait until cancelled."""
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.cancelled.set()
            raise
        return "never"

    return mcp


@contextlib.contextmanager
def serving(
    *, json_response: bool = False, legacy: bool = False, port: int = 0
) -> Iterator[tuple[RunningServer, Upstream]]:
    """The upstream over streamable HTTP, or (``legacy``) over HTTP+SSE at ``/sse``."""
    seen = Upstream()
    mcp = upstream_server(seen)
    if legacy:
        with running_mcp_server(app=mcp.sse_app(host="127.0.0.1"), port=port) as server:
            yield RunningServer(url=server.base_url + "/sse", base_url=server.base_url), seen
        return
    app = mcp.streamable_http_app(
        host="127.0.0.1",
        json_response=json_response,
        event_store=None if json_response else MemoryEventStore(),
        retry_interval=50,
    )
    with running_mcp_server(app=app) as server:
        yield server, seen


@contextlib.asynccontextmanager
async def session_to(url: str, **options: Any) -> AsyncIterator[UpstreamSession]:
    async def no_headers(stale: str | None) -> dict[str, str]:
        return {}

    client_timeout = options.pop("client_timeout", 5.0)
    session = UpstreamSession(
        "test",
        url,
        lambda **kw: httpx2.AsyncClient(timeout=client_timeout, **kw),
        no_headers,
        sse_fallback=url.endswith("/sse"),
        **options,
    )
    try:
        yield session
    finally:
        await session.close()


def text(result: dict[str, Any]) -> str:
    """The text of a tool result's first block (the server's JSON, as the gateway gets it)."""
    (first, *_) = result["content"]
    assert first["type"] == "text"
    return str(first["text"])


@pytest.fixture
def sse_server() -> Iterator[tuple[RunningServer, Upstream]]:
    with serving() as pair:
        yield pair


@pytest.fixture(params=["streamable", "legacy"])
def any_server(request: pytest.FixtureRequest) -> Iterator[tuple[RunningServer, Upstream]]:
    """The upstream over either transport."""
    with serving(legacy=request.param == "legacy") as pair:
        yield pair


async def test_calls_forward_progress_in_order(any_server: tuple[RunningServer, Upstream]) -> None:
    server, _ = any_server
    steps: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        steps.append((done, total, message))

    async with session_to(server.url) as session:
        result = await session.call_tool("count", {"n": 3}, progress)
    assert text(result) == "counted to 3" and not result["isError"]
    assert steps == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_list_changed_on_the_calls_stream_drops_the_cached_tools(
    any_server: tuple[RunningServer, Upstream],
) -> None:
    server, _ = any_server
    async with session_to(server.url) as session:
        await session.list_tools()
        assert session.tools_stamp() is not None
        assert text(await session.call_tool("change_tools", {})) == "changed"
        assert session.tools_stamp() is None


async def test_list_changed_on_the_sessions_get_stream_drops_the_cached_tools(
    any_server: tuple[RunningServer, Upstream],
) -> None:
    server, _ = any_server
    async with session_to(server.url) as session:
        await session.list_tools()
        assert text(await session.call_tool("change_tools_later", {})) == "announced"
        for _ in range(100):  # the notification comes on another stream: wait for it
            if session.tools_stamp() is None:
                break
            await asyncio.sleep(0.02)
        assert session.tools_stamp() is None


async def test_a_ping_during_a_call_is_answered(any_server: tuple[RunningServer, Upstream]) -> None:
    server, _ = any_server
    async with session_to(server.url) as session:
        result = await asyncio.wait_for(session.call_tool("ping_caller", {}), 10)
    assert text(result) == "pong" and not result["isError"]


async def test_a_closed_stream_is_resumed_with_last_event_id(
    sse_server: tuple[RunningServer, Upstream],
) -> None:
    server, _ = sse_server
    steps: list[str | None] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        steps.append(message)

    async with session_to(server.url) as session:
        result = await asyncio.wait_for(session.call_tool("hang_up_then_answer", {}, progress), 10)
    assert text(result) == "answered after a resumption"
    assert steps == ["before"]


async def test_a_cancelled_call_is_cancelled_upstream(
    any_server: tuple[RunningServer, Upstream],
) -> None:
    server, seen = any_server
    async with session_to(server.url) as session:
        await session.list_tools()
        call = asyncio.create_task(session.call_tool("wait_forever", {}))
        await asyncio.sleep(0.5)  # the tool is running upstream
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        for _ in range(100):
            if seen.cancelled.is_set():
                break
            await asyncio.sleep(0.05)
    assert seen.cancelled.is_set(), "the upstream tool was not cancelled"


async def test_json_answers_work_too() -> None:
    with serving(json_response=True) as (server, _):
        async with session_to(server.url) as session:
            result = await session.call_tool("count", {"n": 2})
    assert text(result) == "counted to 2"


@pytest.mark.parametrize("json_response", [False, True])
async def test_a_tool_may_work_in_silence_longer_than_a_read_timeout(json_response: bool) -> None:
    """A call waits as long as the session's call timeout allows, not the client's
    read timeout (outbound_timeout, for discovery and sign-in), whether the server
    answers with JSON or keeps an event stream open without a byte."""
    with serving(json_response=json_response) as (server, _):
        async with session_to(server.url, client_timeout=0.3, timeout=5.0) as session:
            result = await session.call_tool("think", {"seconds": 1.0})
        assert text(result) == "thought"
        async with session_to(server.url, client_timeout=0.3, timeout=1.0) as session:
            with pytest.raises(UpstreamError, match="did not answer within 1 s"):
                await session.call_tool("think", {"seconds": 3.0})


async def test_jsonrpc_errors_are_raised_with_their_message(
    sse_server: tuple[RunningServer, Upstream],
) -> None:
    server, _ = sse_server
    async with session_to(server.url) as session:
        await session._ensure_open()  # initialized: the session has its target
        assert session._client is not None and session._target is not None

        async def ignore(message: dict[str, Any]) -> None:
            return None

        with pytest.raises(MCPError) as raised:
            await send_request(
                session._client,
                session._target,
                "no/such/method",
                {},
                on_notification=ignore,
            )
    assert raised.value.code == -32601


async def test_legacy_sessions_wait_for_silent_tools_and_raise_jsonrpc_errors() -> None:
    """Over HTTP+SSE an answer comes on the session's stream: a tool may work in silence
    longer than the client's read timeout, and a JSON-RPC error keeps its code."""
    with serving(legacy=True) as (server, _):
        async with session_to(server.url, client_timeout=0.3, timeout=5.0) as session:
            assert text(await session.call_tool("think", {"seconds": 1.0})) == "thought"
            assert session._legacy is not None
            with pytest.raises(MCPError) as raised:
                await session._legacy.request("no/such/method", {})
    assert raised.value.code == -32601


async def test_a_legacy_session_the_server_forgot_is_opened_again() -> None:
    """A restarted HTTP+SSE server knows no session: the next call opens a new one and
    succeeds, without counting as a failure."""
    with serving(legacy=True) as (first, _):
        port = int(first.base_url.rsplit(":", 1)[1])
        session_cm = session_to(first.url)
        session = await session_cm.__aenter__()
        assert text(await session.call_tool("count", {"n": 1})) == "counted to 1"
    try:
        with serving(legacy=True, port=port) as (second, _):
            assert second.url == first.url
            assert text(await session.call_tool("count", {"n": 2})) == "counted to 2"
            assert session.failures == 0
    finally:
        await session_cm.__aexit__(None, None, None)


async def test_a_legacy_endpoint_on_another_origin_is_refused() -> None:
    """The stream's ``endpoint`` event may not send dodo's messages elsewhere."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "GET":  # no streamable HTTP here
            await send({"type": "http.response.start", "status": 405, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": b"event: endpoint\ndata: http://127.0.0.1:9/messages/\n\n",
                "more_body": True,
            }
        )
        while (await receive())["type"] != "http.disconnect":
            pass

    with running_mcp_server(app=app) as server:
        async with session_to(server.base_url + "/sse", timeout=3.0) as session:
            with pytest.raises(UpstreamError, match="endpoint on another origin"):
                await session.list_tools()


async def test_a_server_request_during_a_call_is_relayed_to_the_caller(
    any_server: tuple[RunningServer, Upstream],
) -> None:
    server, _ = any_server
    relay = Relay()
    async with session_to(server.url, capabilities=relay.capabilities) as session:
        result = await asyncio.wait_for(session.call_tool("ask_colour", {}, relay=relay), 10)
    assert text(result) == "accept colour='teal'"
    assert [method for method, _ in relay.asked] == ["elicitation/create"]
    assert relay.asked[0][1]["message"] == "Which colour?"
    assert ("notifications/message", {"level": "info", "logger": "ask", "data": "asking"}) in [
        (method, {k: v for k, v in params.items() if k != "_meta"}) for method, params in relay.told
    ]


async def test_without_a_relay_a_server_request_is_refused_at_once(
    any_server: tuple[RunningServer, Upstream],
) -> None:
    server, _ = any_server
    async with session_to(server.url) as session:
        outcome = await asyncio.wait_for(
            asyncio.gather(session.call_tool("ask_colour", {}), return_exceptions=True), 10
        )
    result = outcome[0]
    assert isinstance(result, Exception) or result["isError"]


class Refuse2026:
    """ASGI middleware: the server as one from before 2026-07-28, which refuses a request
    in that version (an SDK 1.x server answers 400 "Unsupported protocol version"), and
    the headers of every MCP request."""

    def __init__(self, app: Any, refuse: bool) -> None:
        self.app = app
        self.refuse = refuse
        self.headers: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/mcp":
            await self.app(scope, receive, send)
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.headers.append(headers)
        if self.refuse and headers.get("mcp-protocol-version") == "2026-07-28":
            body = (
                b'{"jsonrpc":"2.0","id":"server-error","error":{"code":-32600,'
                b'"message":"Bad Request: Unsupported protocol version: 2026-07-28"}}'
            )
            start = {"type": "http.response.start", "status": 400}
            await send({**start, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


@pytest.mark.parametrize("refuse", [False, True], ids=["2026-07-28", "2025-11-25 only"])
async def test_connect_speaks_2026_07_28_when_the_server_does_else_opens_a_session(
    refuse: bool,
) -> None:
    """:func:`connect` sends stateless requests (version, method and name in headers, no
    session) to a server that speaks 2026-07-28, and opens a 2025-11-25 session with one
    that refuses it."""
    seen = Upstream()
    app = Refuse2026(upstream_server(seen).streamable_http_app(host="127.0.0.1"), refuse)
    with running_mcp_server(app=app) as server:
        async with httpx2.AsyncClient(timeout=10) as http:
            target = await connect(http, server.url, "1.0")
            result = await send_request(
                http,
                target,
                "tools/call",
                {"name": "count", "arguments": {"n": 2}},
                on_notification=ignore_notification,
            )
    assert result["content"][0]["text"] == "counted to 2"
    call = app.headers[-1]
    if refuse:
        assert not target.stateless and target.protocol_version == "2025-11-25"
        assert call["mcp-session-id"] == target.session_id and "mcp-method" not in call
    else:
        assert target.stateless and target.session_id is None
        assert [h["mcp-method"] for h in app.headers] == ["server/discover", "tools/call"]
        assert call["mcp-name"] == "count" and call["mcp-protocol-version"] == "2026-07-28"
        assert "mcp-session-id" not in call


async def ignore_notification(message: dict[str, Any]) -> None:
    return None
