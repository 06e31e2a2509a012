"""The upstream MCP server behind the gateway in the server conformance run.

``@modelcontextprotocol/conformance server`` expects the server it tests to offer the
tools of the reference "everything" server. The gateway has no tools of its own: it
re-exposes a connected server's tools. This module is that server, with the tools the
applicable scenarios call (see ``run-server.sh``), each behaving as the suite's scenario
descriptions ask:

==============================  ====================================================
``test_simple_text``            one text item
``test_image_content``          a 1x1 PNG (image content)
``test_audio_content``          a short WAV (audio content, ``audio/wav``)
``test_embedded_resource``      an embedded text resource
``test_multiple_content_types`` text, image and embedded resource together
``test_error_handling``         ``isError: true`` with a message
``test_tool_with_progress``     progress 0, 50 and 100 of 100, 50 ms apart
``json_schema_2020_12_tool``    an input schema with ``$schema``, ``$defs`` and
                                ``additionalProperties`` (SEP-1613)
``test_reconnection``           closes its event stream mid-call, then answers 100 ms
                                later (SEP-1699: the client resumes with
                                ``Last-Event-ID``)
==============================  ====================================================

It is built from the MCP SDK's own low-level :class:`~mcp.server.lowlevel.Server` and
session manager (dodo's :class:`~dodo_jupyter.gateway.event_store.ResumableSessionManager`,
which keeps each session's events, so a closed stream can be resumed) and served by
uvicorn on a loopback port, in a thread (:func:`running_upstream`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from dodo_jupyter.gateway.event_store import ResumableSessionManager
from dodo_jupyter.gateway.host import ResumeLimits

__all__ = ["ERROR_TEXT", "TOOLS", "build_upstream", "running_upstream"]

#: The text of ``test_error_handling``'s error; the runner looks for it in the result to
#: tell the upstream's error from one of the gateway's own ("No tool named ...").
ERROR_TEXT = "This tool intentionally returns an error for testing"

_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}

TOOLS = [
    types.Tool(
        name="test_simple_text", description="Returns one text item.", input_schema=_NO_ARGS
    ),
    types.Tool(name="test_image_content", description="Returns a PNG.", input_schema=_NO_ARGS),
    types.Tool(name="test_audio_content", description="Returns a WAV.", input_schema=_NO_ARGS),
    types.Tool(
        name="test_embedded_resource",
        description="Returns an embedded text resource.",
        input_schema=_NO_ARGS,
    ),
    types.Tool(
        name="test_multiple_content_types",
        description="Returns text, an image and a resource.",
        input_schema=_NO_ARGS,
    ),
    types.Tool(
        name="test_error_handling", description="Always fails (isError).", input_schema=_NO_ARGS
    ),
    types.Tool(
        name="test_tool_with_progress",
        description="Reports progress 0, 50 and 100 of 100.",
        input_schema=_NO_ARGS,
    ),
    types.Tool(
        name="test_reconnection",
        description="Closes its event stream mid-call, then answers (SEP-1699).",
        input_schema=_NO_ARGS,
    ),
    types.Tool(
        name="json_schema_2020_12_tool",
        description="Tool with JSON Schema 2020-12 features",
        input_schema={
            "$schema": _SCHEMA_2020_12,
            "type": "object",
            "$defs": {
                "address": {
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                }
            },
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "additionalProperties": False,
        },
    ),
]


def _png() -> str:
    """A 1x1 red PNG, base64 (PNG spec §5, §11.2)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(png).decode()


def _wav() -> str:
    """100 ms of silence, 8 kHz 8-bit mono PCM WAV, base64."""
    samples = b"\x80" * 800
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + samples
    return base64.b64encode(b"RIFF" + struct.pack("<I", len(body)) + body).decode()


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _image() -> types.ImageContent:
    return types.ImageContent(type="image", data=_png(), mime_type="image/png")


def _resource(uri: str, mime_type: str, text: str) -> types.EmbeddedResource:
    return types.EmbeddedResource(
        type="resource",
        resource=types.TextResourceContents(uri=uri, mime_type=mime_type, text=text),
    )


async def _list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def _call_tool(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    name = params.name
    if name == "test_simple_text":
        content: list[Any] = [_text("This is a simple text response for testing.")]
    elif name == "test_image_content":
        content = [_image()]
    elif name == "test_audio_content":
        content = [types.AudioContent(type="audio", data=_wav(), mime_type="audio/wav")]
    elif name == "test_embedded_resource":
        content = [
            _resource(
                "test://embedded-resource", "text/plain", "This is an embedded resource content."
            )
        ]
    elif name == "test_multiple_content_types":
        content = [
            _text("Multiple content types test:"),
            _image(),
            _resource(
                "test://mixed-content-resource", "application/json", '{"test":"data","value":123}'
            ),
        ]
    elif name == "test_error_handling":
        return types.CallToolResult(content=[_text(ERROR_TEXT)], is_error=True)
    elif name == "test_tool_with_progress":
        for value in (0, 50, 100):
            if value:
                await asyncio.sleep(0.05)
            await ctx.session.report_progress(value, 100, f"{value}%")
        content = [_text("Progress test completed.")]
    elif name == "test_reconnection":
        if ctx.close_sse_stream is not None:  # a 2025-11-25 client with a resumable stream
            await ctx.close_sse_stream()
        await asyncio.sleep(0.1)
        content = [_text("Reconnection test completed: the client resumed the stream.")]
    elif name == "json_schema_2020_12_tool":
        content = [_text(f"Received: {params.arguments!r}")]
    else:
        return types.CallToolResult(content=[_text(f"Unknown tool: {name}")], is_error=True)
    return types.CallToolResult(content=content)


def build_upstream() -> Starlette:
    """The ASGI app: the MCP endpoint at ``/mcp`` (Streamable HTTP, stateful, SSE)."""
    server: Server[Any] = Server(
        "conformance-upstream", version="1.0.0", on_list_tools=_list_tools, on_call_tool=_call_tool
    )
    # A short retry: the gateway's client waits that long before resuming.
    manager = ResumableSessionManager(server, resume=ResumeLimits(retry_interval=0.05))

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
def running_upstream(timeout: float = 10.0) -> Iterator[str]:
    """Serve the upstream on a free loopback port in a thread; yields its MCP URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(build_upstream(), log_level="warning", lifespan="on", access_log=False)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="upstream", daemon=True
    )
    thread.start()
    _wait(lambda: server.started, timeout, "the upstream MCP server did not start")
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def _wait(ready: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(message)
        time.sleep(0.02)
