"""The upstream MCP server behind the gateway in the server conformance run.

``@modelcontextprotocol/conformance server`` expects the server it tests to offer what
the reference "everything" server offers. The gateway has nothing of its own to offer:
it re-exposes a connected server's tools, resources, prompts, completion and logging.
This module is that server, with the tools the applicable scenarios call (see
``run-server.sh``), each behaving as the suite's scenario descriptions ask:

=====================================  =============================================
``test_simple_text``                   one text item
``test_image_content``                 a 1x1 PNG (image content)
``test_audio_content``                 a short WAV (audio content, ``audio/wav``)
``test_embedded_resource``             an embedded text resource
``test_multiple_content_types``        text, image and embedded resource together
``test_error_handling``                ``isError: true`` with a message
``test_tool_with_progress``            progress 0, 50 and 100 of 100, 50 ms apart
``test_tool_with_logging``             three ``info`` log messages, 50 ms apart
``test_sampling``                      asks its client for ``sampling/createMessage``
                                       with ``prompt``, returns the model's text
``test_elicitation``                   asks its client (``elicitation/create``) for a
                                       username and email, with ``message``
``test_elicitation_sep1034_defaults``  a form whose five fields have defaults
                                       (SEP-1034)
``test_elicitation_sep1330_enums``     a form with the five enum kinds (SEP-1330)
``json_schema_2020_12_tool``           an input schema with ``$schema``, ``$defs``
                                       and ``additionalProperties`` (SEP-1613)
``test_reconnection``                  closes its event stream mid-call, then answers
                                       100 ms later (SEP-1699: the client resumes
                                       with ``Last-Event-ID``)
=====================================  =============================================

The tools that ask their client things answer ``isError`` when the client did not
declare the capability (behind the gateway: when the agent's client did not, as the
gateway declares upstream what its client declared) or when the ask failed. Its
resources, resource template, prompts and completion are in :mod:`.upstream_content`.
``logging/setLevel`` is accepted and changes nothing here: the gateway filters what it
relays by the level each client session set.

It is built from the MCP SDK's own low-level :class:`~mcp.server.lowlevel.Server` and
session manager (dodo's :class:`~dodo_jupyter.gateway.session_manager.ResumableSessionManager`,
which keeps each session's events, so a closed stream can be resumed) and served by
uvicorn on a loopback port, in a thread (:func:`running_upstream`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from starlette.applications import Starlette

from dodo_jupyter.gateway.resume_limits import ResumeLimits
from dodo_jupyter.gateway.session_manager import ResumableSessionManager

from ..mcp_peers import mcp_app
from .upstream_content import ContentHandlers, png

__all__ = ["ERROR_TEXT", "TOOLS", "build_upstream", "running_upstream"]

#: The text of ``test_error_handling``'s error; the runner looks for it in the result to
#: tell the upstream's error from one of the gateway's own ("No tool named ...").
ERROR_TEXT = "This tool intentionally returns an error for testing"

_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}

Ctx = ServerRequestContext[Any]


def _string_argument(name: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": description}},
        "required": [name],
    }


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
        name="test_tool_with_logging",
        description="Logs three info messages while it runs.",
        input_schema=_NO_ARGS,
    ),
    types.Tool(
        name="test_sampling",
        description="Asks the client's model (sampling/createMessage).",
        input_schema=_string_argument("prompt", "The prompt to send to the LLM"),
    ),
    types.Tool(
        name="test_elicitation",
        description="Asks the user for a username and email (elicitation/create).",
        input_schema=_string_argument("message", "The message to show the user"),
    ),
    types.Tool(
        name="test_elicitation_sep1034_defaults",
        description="Asks for a form whose fields have defaults (SEP-1034).",
        input_schema=_NO_ARGS,
    ),
    types.Tool(
        name="test_elicitation_sep1330_enums",
        description="Asks for a form with every kind of enum (SEP-1330).",
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
    return types.ImageContent(type="image", data=png(), mime_type="image/png")


def _resource(uri: str, mime_type: str, text: str) -> types.EmbeddedResource:
    return types.EmbeddedResource(
        type="resource",
        resource=types.TextResourceContents(uri=uri, mime_type=mime_type, text=text),
    )


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[_text(text)], is_error=True)


#: ``test_elicitation``'s form.
_CONTACT_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}
#: ``test_elicitation_sep1034_defaults``' form: each primitive type, with a default.
_DEFAULTS_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}


def _titled(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"const": value, "title": title} for value, title in pairs]


#: ``test_elicitation_sep1330_enums``' form: the five kinds of enum of SEP-1330.
_ENUMS_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Select one option",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Select one option with titles",
            "oneOf": _titled(
                ("value1", "First Option"), ("value2", "Second Option"), ("value3", "Third Option")
            ),
        },
        "legacyEnum": {
            "type": "string",
            "description": "Select one option (legacy)",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Select multiple options",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Select multiple options with titles",
            "items": {
                "anyOf": _titled(
                    ("value1", "First Choice"),
                    ("value2", "Second Choice"),
                    ("value3", "Third Choice"),
                )
            },
        },
    },
    "required": [],
}


def _declared(ctx: Ctx, capability: str) -> bool:
    """Whether the client declared ``capability`` (``sampling``, ``elicitation``)."""
    capabilities = ctx.session.client_capabilities
    return capabilities is not None and getattr(capabilities, capability, None) is not None


async def _log(ctx: Ctx) -> types.CallToolResult:
    """Three ``info`` log messages on the call's stream, 50 ms apart."""
    steps = ("Tool execution started", "Tool processing data", "Tool execution completed")
    for i, step in enumerate(steps):
        if i:
            await asyncio.sleep(0.05)
        notification = types.LoggingMessageNotification(
            params=types.LoggingMessageNotificationParams(
                level="info", logger="conformance-upstream", data=step
            )
        )
        await ctx.session.send_notification(notification, related_request_id=ctx.request_id)
    return types.CallToolResult(content=[_text("Tool with logging executed successfully")])


async def _sample(ctx: Ctx, prompt: str) -> types.CallToolResult:
    """Ask the client's model to answer ``prompt``."""
    if not _declared(ctx, "sampling"):
        return _error("test_sampling needs a client that declares the sampling capability")
    request = types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(
            messages=[types.SamplingMessage(role="user", content=_text(prompt))], max_tokens=100
        )
    )
    try:
        result = await ctx.session.send_request(
            request,
            types.CreateMessageResult,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
        )
    except MCPError as e:
        return _error(f"Sampling failed: {e.message}")
    answer = result.content.text if isinstance(result.content, types.TextContent) else "(no text)"
    return types.CallToolResult(content=[_text(f"LLM response: {answer}")])


async def _elicit(ctx: Ctx, message: str, form: dict[str, Any], reply: str) -> types.CallToolResult:
    """Ask the user to fill ``form``; the result says ``<reply>: action=…, content=…``."""
    if not _declared(ctx, "elicitation"):
        return _error("this tool needs a client that declares the elicitation capability")
    try:
        answer = await ctx.session.elicit_form(message, form, ctx.request_id)
    except MCPError as e:
        return _error(f"Elicitation failed: {e.message}")
    content = json.dumps(answer.content or {})
    return types.CallToolResult(
        content=[_text(f"{reply}: action={answer.action}, content={content}")]
    )


async def _list_tools(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def _call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    name = params.name
    arguments = params.arguments or {}
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
        return _error(ERROR_TEXT)
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
    elif name == "test_tool_with_logging":
        return await _log(ctx)
    elif name == "test_sampling":
        return await _sample(ctx, str(arguments.get("prompt", "")))
    elif name == "test_elicitation":
        message = str(arguments.get("message", "Please provide your information"))
        return await _elicit(ctx, message, _CONTACT_FORM, "User response")
    elif name == "test_elicitation_sep1034_defaults":
        message = "Please review and update the form fields with defaults"
        return await _elicit(ctx, message, _DEFAULTS_FORM, "Elicitation completed")
    elif name == "test_elicitation_sep1330_enums":
        message = "Please select options from the enum fields"
        return await _elicit(ctx, message, _ENUMS_FORM, "Elicitation completed")
    elif name == "json_schema_2020_12_tool":
        content = [_text(f"Received: {params.arguments!r}")]
    else:
        return _error(f"Unknown tool: {name}")
    return types.CallToolResult(content=content)


async def _set_level(ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


def build_upstream() -> Starlette:
    """The ASGI app: the MCP endpoint at ``/mcp`` (Streamable HTTP, stateful, SSE)."""
    with warnings.catch_warnings():
        # Logging is deprecated from 2026-07-28 on, and still what the suite's 2025-11-25
        # scenarios use.
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        server: Server[Any] = Server(
            "conformance-upstream",
            version="1.0.0",
            on_list_tools=_list_tools,
            on_call_tool=_call_tool,
            on_set_logging_level=_set_level,
            **ContentHandlers().handlers(),
        )
    # A short retry: the gateway's client waits that long before resuming.
    manager = ResumableSessionManager(server, resume=ResumeLimits(retry_interval=0.05))
    return mcp_app(manager)


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
