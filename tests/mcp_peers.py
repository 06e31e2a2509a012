"""Plain MCP servers for tests (no OAuth), built from the MCP SDK's own MCPServer and
served by uvicorn in a background thread on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import mcp_types as types
import uvicorn
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.prompts.base import AssistantMessage, UserMessage
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dodo_jupyter.demo.tools import make_png

#: A bare MCP ``initialize`` request (protocol 2025-11-25), the first thing clients send.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "dodo-tests", "version": "0"},
    },
}
#: The ``Accept`` header of a streamable-HTTP client.
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@dataclass
class RunningServer:
    url: str
    base_url: str


class RequireHeader:
    """ASGI middleware: 401 unless the request carries ``header: value``."""

    def __init__(self, app: ASGIApp, header: str, value: str) -> None:
        self.app = app
        self.header = header.lower().encode()
        self.value = value.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(self.header) != self.value:
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"error":"bad key"}'})
            return
        await self.app(scope, receive, send)


def tool_server(name: str = "plain") -> MCPServer:
    mcp = MCPServer(name)

    @mcp.tool()
    def greet(who: str) -> str:
        """Say hello."""
        return f"hello {who}"

    @mcp.tool()
    def double(n: int) -> int:
        """Twice n."""
        return 2 * n

    @mcp.tool()
    async def count_slowly(n: int, ctx: Context) -> str:
        """Count to n, reporting progress at every step."""
        for step in range(1, n + 1):
            await ctx.report_progress(step, n, f"step {step}")
            await asyncio.sleep(0.01)
        return f"counted to {n}"

    @mcp.tool()
    def request_meta(ctx: Context) -> str:
        """The request's _meta as JSON (to see what a caller sent along)."""
        return json.dumps(dict(ctx.request_context.meta or {}), default=str)

    return mcp


class Item(BaseModel):
    """An item to store."""

    name: str = Field(description="What it is called.")
    qty: int = Field(1, description="How many.")


def typed_server(name: str = "typed") -> MCPServer:
    """Tools whose schemas (made by the MCP SDK from the signatures) have what a typed
    API must carry over: required and defaulted parameters, an enum, an array, a nested
    object, names that are no Python identifiers (``find-items``, ``class``), a tool
    that fails with a message, and one that answers with an image."""
    mcp = MCPServer(name)

    @mcp.tool()
    def add(a: int, b: int = 0) -> int:
        """Add two whole numbers."""
        return a + b

    @mcp.tool(name="find-items")
    def find_items(
        query: str = Field(description="Words to look for."),
        mode: Literal["fast", "exact"] = "fast",
        tags: list[str] | None = None,
    ) -> list[str]:
        """Find stored items by name."""
        return [f"{query}/{mode}/{','.join(tags or [])}"]

    @mcp.tool()
    def store(item: Item) -> dict[str, Any]:
        """Store an item."""
        return {"stored": item.name, "qty": item.qty}

    @mcp.tool(name="class")
    def classify(text: str) -> str:
        """Say what kind of thing the text names."""
        return "fruit" if text == "apple" else "unknown"

    @mcp.tool()
    def fail(reason: str) -> str:
        """Always fails, with ``reason`` as the message."""
        raise ToolError(reason)

    @mcp.tool()
    def picture(size: int = 8) -> Image:
        """A blue square, ``size`` pixels wide."""
        return Image(data=make_png(size, (51, 102, 204)), format="png")

    return mcp


#: The bytes of every :func:`content_server`'s ``note://data.bin``.
DATA_BIN = bytes(range(256)) * 4


def content_server(name: str, colour: tuple[int, int, int] = (51, 102, 204)) -> MCPServer:
    """An MCP server with resources and prompts (and no tools): two of them under
    different catalog ids collide in every URI and prompt name, and tell themselves apart
    by their ``name`` in what they answer. ``note://logo.png`` is a 48 px square of
    ``colour``; ``note://items/broken`` fails (a JSON-RPC internal error)."""
    mcp = MCPServer(name)

    @mcp.resource("note://readme", mime_type="text/markdown", description="Read me first.")
    def readme() -> str:
        return f"# {name}\n\nreadme of {name}"

    @mcp.resource("note://config.json", mime_type="application/json")
    def config() -> str:
        return json.dumps({"server": name, "limits": {"calls": 3}})

    @mcp.resource("note://logo.png", mime_type="image/png", description="The logo.")
    def logo() -> bytes:
        return make_png(48, colour)

    @mcp.resource("note://data.bin", mime_type="application/octet-stream")
    def data() -> bytes:
        return DATA_BIN

    @mcp.resource("note://items/{item}", mime_type="text/plain", description="One item.")
    def item(item: str) -> str:
        if item == "broken":
            raise ResourceError("the item store is on fire")
        return f"item {item} of {name}"

    @mcp.prompt(description="Greet someone.")
    def greeting(who: str, mood: str = "cheerful") -> str:
        """Greet someone."""
        return f"Hello {who}, from {name} ({mood})"

    @mcp.prompt(description="A picture and a question about it.")
    def with_image() -> list[Any]:
        return [
            UserMessage(Image(data=make_png(8, colour), format="png")),
            AssistantMessage("A square."),
        ]

    @mcp.prompt(description="A resource to discuss.")
    def with_resource() -> list[Any]:
        readme_text = types.TextResourceContents(
            uri="note://readme", mime_type="text/markdown", text=f"readme of {name}"
        )
        return [UserMessage(types.EmbeddedResource(type="resource", resource=readme_text))]

    return mcp


async def buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Read an ASGI request's whole body; returns it and a ``receive`` that replays it."""
    messages = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break

    async def replay() -> Any:
        return messages.pop(0) if messages else await receive()

    return body, replay


class SlowToolList:
    """ASGI middleware: delay ``tools/list`` requests by ``delay`` seconds (when set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.delay = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.delay:
            await self.app(scope, receive, send)
            return
        body, replay = await buffered(receive)
        if b'"tools/list"' in body:
            await asyncio.sleep(self.delay)
        await self.app(scope, replay, send)


def mcp_app(manager: StreamableHTTPSessionManager) -> Starlette:
    """An ASGI app serving a low-level server's session ``manager`` at ``/mcp``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return Starlette(routes=[Route("/mcp", endpoint=_Endpoint(manager))], lifespan=lifespan)


class _Endpoint:
    """The session manager as an ASGI app (a class, so starlette passes ASGI through)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self._manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._manager.handle_request(scope, receive, send)


@contextlib.contextmanager
def running_mcp_server(
    *,
    require_header: tuple[str, str] | None = None,
    name: str = "plain",
    port: int = 0,
    slow: SlowToolList | None = None,
    sse: bool = False,
    app: ASGIApp | None = None,
) -> Iterator[RunningServer]:
    """An MCP server at ``/mcp`` (optionally behind a required header) in a thread; with
    ``sse``, a legacy HTTP+SSE server at ``/sse`` instead; ``app`` serves another MCP
    server's app (at its own ``/mcp``) instead of :func:`tool_server`'s."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    port = sock.getsockname()[1]
    if app is None:
        server_app = tool_server(name)
        app = (
            server_app.sse_app(host="127.0.0.1")
            if sse
            else server_app.streamable_http_app(host="127.0.0.1")
        )
    if require_header:
        app = RequireHeader(app, *require_header)
    if slow is not None:
        slow.app = app
        app = slow
    # A stopped test server drops open streams after a second, as a killed process would.
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.02)
        yield RunningServer(url=base + ("/sse" if sse else "/mcp"), base_url=base)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
