"""An upstream MCP server that uses the whole protocol, for the gateway's tests: resources
(text, binary, a template, subscriptions), prompts (arguments, an image, an embedded
resource), completion, logging, and tools that ask their client things (elicitation in
form and URL mode, sampling, roots), log while they run, wait until cancelled, or change
the server's tool list. Built from the MCP SDK's low-level ``Server`` (so each message is
exactly what the test expects) and served on loopback by :func:`running_protocol_peer`;
what it saw is in its :class:`PeerLog`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from starlette.applications import Starlette

from .mcp_peers import RunningServer, mcp_app, running_mcp_server

__all__ = ["BLOB", "PeerLog", "running_protocol_peer"]

#: The bytes of ``note://logo``.
BLOB = b"\x89PNG\r\n\x1a\n-not-really-an-image-\x00\xff"
Ctx = ServerRequestContext[Any]
_NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass
class PeerLog:
    """What the peer saw (read by tests from their own thread)."""

    name: str
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    subscribed: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    client_capabilities: list[dict[str, Any]] = field(default_factory=list)
    extra_tools: list[str] = field(default_factory=list)
    sessions: list[Any] = field(default_factory=list)


def _tool(name: str) -> types.Tool:
    return types.Tool(name=name, description=f"{name} (protocol peer)", input_schema=_NO_ARGS)


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


class _Peer:
    def __init__(self, log: PeerLog) -> None:
        self.log = log

    async def list_tools(self, ctx: Ctx, params: Any) -> types.ListToolsResult:
        names = [
            "ask",
            "ask_url",
            "ask_http",
            "think",
            "roots",
            "chatty",
            "slow",
            "change",
            "touch",
        ]
        return types.ListToolsResult(tools=[_tool(n) for n in names + self.log.extra_tools])

    async def call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> Any:
        session, related = ctx.session, ctx.request_id
        caps = session.client_capabilities
        self.log.client_capabilities.append(
            caps.model_dump(by_alias=True, exclude_none=True) if caps else {}
        )
        name = params.name
        if name == "ask":
            answer = await session.elicit_form(
                "Which colour?",
                {"type": "object", "properties": {"colour": {"type": "string"}}},
                related,
            )
            return types.CallToolResult(content=[_text(f"{answer.action}: {answer.content}")])
        if name == "ask_url":
            answer = await session.elicit_url(
                "Sign the form", "https://example.invalid/consent", "e-1", related
            )
            return types.CallToolResult(content=[_text(f"url {answer.action}")])
        if name == "ask_http":  # a plain-http page is no place to send a person
            answer = await session.elicit_url(
                "Sign here", "http://example.invalid/consent", "e-2", related
            )
            return types.CallToolResult(content=[_text(f"url {answer.action}")])
        if name == "think":
            result = await session.create_message(
                [types.SamplingMessage(role="user", content=_text("2+2?"))],
                max_tokens=10,
                related_request_id=related,
            )
            text = result.content.text if isinstance(result.content, types.TextContent) else "?"
            return types.CallToolResult(content=[_text(f"model said {text}")])
        if name == "roots":
            roots = await session.send_request(
                types.ListRootsRequest(),
                types.ListRootsResult,
                metadata=ServerMessageMetadata(related_request_id=related),
            )
            return types.CallToolResult(content=[_text(" ".join(str(r.uri) for r in roots.roots))])
        if name == "chatty":
            for level in ("debug", "info", "error"):
                await session.send_log_message(level, f"{level} line", "work", related)
            return types.CallToolResult(content=[_text("chatted")])
        if name == "slow":
            self.log.started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.log.cancelled.set()
                raise
            return types.CallToolResult(content=[_text("slept")])
        if name == "change":
            self.log.extra_tools.append(f"added_{len(self.log.extra_tools)}")
            await session.send_tool_list_changed()
            return types.CallToolResult(content=[_text("changed")])
        if name == "touch":
            for other in self.log.sessions:
                with contextlib.suppress(Exception):  # a session the gateway closed since
                    await other.send_resource_updated("note://readme")
            return types.CallToolResult(content=[_text("touched")])
        return types.CallToolResult(content=[_text(f"unknown {name}")], is_error=True)

    async def list_resources(self, ctx: Ctx, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[
                types.Resource(uri="note://readme", name="readme", mime_type="text/plain"),
                types.Resource(uri="note://logo", name="logo", mime_type="image/png"),
            ]
        )

    async def list_templates(self, ctx: Ctx, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(uri_template="note://items/{id}", name="item")
            ]
        )

    async def read_resource(
        self, ctx: Ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = params.uri
        if uri == "note://readme":
            contents: Any = types.TextResourceContents(
                uri=uri, mime_type="text/plain", text=f"readme of {self.log.name}"
            )
        elif uri == "note://logo":
            contents = types.BlobResourceContents(
                uri=uri, mime_type="image/png", blob=base64.b64encode(BLOB).decode()
            )
        elif uri.startswith("note://items/"):
            contents = types.TextResourceContents(uri=uri, text=f"item {uri.rsplit('/', 1)[1]}")
        else:
            raise MCPError(-32002, f"Resource not found: {uri}")
        return types.ReadResourceResult(contents=[contents])

    async def subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        self.log.subscribed.append(params.uri)
        self.log.sessions.append(ctx.session)
        return types.EmptyResult()

    async def unsubscribe(
        self, ctx: Ctx, params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        self.log.unsubscribed.append(params.uri)
        return types.EmptyResult()

    async def list_prompts(self, ctx: Ctx, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(
                    name="greeting",
                    description="Greets someone.",
                    arguments=[types.PromptArgument(name="who", required=True)],
                ),
                types.Prompt(name="with_image"),
                types.Prompt(name="with_resource"),
            ]
        )

    async def get_prompt(
        self, ctx: Ctx, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        if params.name == "greeting":
            who = (params.arguments or {}).get("who", "nobody")
            content: Any = _text(f"Hello {who}, from {self.log.name}")
        elif params.name == "with_image":
            content = types.ImageContent(
                type="image", data=base64.b64encode(BLOB).decode(), mime_type="image/png"
            )
        else:
            content = types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(uri="note://readme", text="embedded"),
            )
        return types.GetPromptResult(messages=[types.PromptMessage(role="user", content=content)])

    async def complete(self, ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        prefix = params.argument.value
        values = [v for v in ("ada", "alan", "grace") if v.startswith(prefix)]
        return types.CompleteResult(completion=types.Completion(values=values, total=len(values)))

    async def set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        self.log.levels.append(params.level)
        return types.EmptyResult()


class _Server(Server[Any]):
    def create_initialization_options(self, *args: Any, **kwargs: Any) -> InitializationOptions:
        return super().create_initialization_options(NotificationOptions(True, True, True))


def _app(log: PeerLog) -> Starlette:
    peer = _Peer(log)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # logging is deprecated from 2026-07-28 on
        server = _Server(
            log.name,
            on_list_tools=peer.list_tools,
            on_call_tool=peer.call_tool,
            on_list_resources=peer.list_resources,
            on_list_resource_templates=peer.list_templates,
            on_read_resource=peer.read_resource,
            on_subscribe_resource=peer.subscribe,
            on_unsubscribe_resource=peer.unsubscribe,
            on_list_prompts=peer.list_prompts,
            on_get_prompt=peer.get_prompt,
            on_completion=peer.complete,
            on_set_logging_level=peer.set_level,
        )
    manager = StreamableHTTPSessionManager(server)
    return mcp_app(manager)


@contextlib.contextmanager
def running_protocol_peer(name: str, port: int = 0) -> Iterator[tuple[RunningServer, PeerLog]]:
    """The peer named ``name`` at ``/mcp`` on a loopback port, and what it saw."""
    log = PeerLog(name)
    with running_mcp_server(app=_app(log), port=port) as server:
        yield server, log
