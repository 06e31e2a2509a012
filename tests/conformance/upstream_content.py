"""Resources, resource templates, prompts and completion of the conformance upstream.

The server scenarios of ``@modelcontextprotocol/conformance`` read, subscribe to and
complete what the reference "everything" server offers besides tools. The upstream
(:mod:`.upstream`) offers the same through :class:`ContentHandlers`, each item behaving
as the suite's scenario descriptions ask:

==================================  =================================================
``test://static-text``              text/plain, "This is the content of the static
                                    text resource."
``test://static-binary``            image/png, a 1x1 PNG as ``blob``
``test://watched-resource``         text/plain; ``resources/subscribe`` and
                                    ``resources/unsubscribe`` track its URI
``test://template/{id}/data``       (template) application/json naming the ``id``
``test_simple_prompt``              one user text message
``test_prompt_with_arguments``      ``arg1`` and ``arg2`` (required), substituted
``test_prompt_with_embedded_resource``  ``resourceUri`` (required): an embedded text
                                    resource with that URI, then a text message
``test_prompt_with_image``          an image message, then a text message
==================================  =================================================

``completion/complete`` offers a few values for the arguments of
``test_prompt_with_arguments`` and for the template's ``id``, those starting with what
was typed. A URI or prompt the upstream does not have is a JSON-RPC error
(``-32002`` "Resource not found", ``-32602`` for an unknown prompt or a missing
argument), which the gateway passes on with its code and message.

Every URI here is the upstream's own; through the gateway they read
``dodo://conformance/test://...`` (:mod:`dodo_jupyter.gateway.uris`), and prompts are
``conformance__<prompt>``.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

__all__ = ["COMPLETED", "PROMPTS", "RESOURCES", "TEMPLATES", "ContentHandlers", "png"]

Ctx = ServerRequestContext[Any]

#: MCP's "resource not found" (2025-11-25) and JSON-RPC's "invalid params".
_RESOURCE_NOT_FOUND = -32002
_INVALID_PARAMS = -32602

STATIC_TEXT = "This is the content of the static text resource."
WATCHED_TEXT = "Watched resource content"
TEMPLATE = "test://template/{id}/data"
_TEMPLATE_URI = re.compile(r"^test://template/(?P<id>[^/]+)/data$")


def png() -> str:
    """A 1x1 red PNG, base64 (PNG spec §5, §11.2)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    image = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(image).decode()


RESOURCES = [
    types.Resource(
        uri="test://static-text",
        name="static-text",
        title="Static Text Resource",
        description="A static text resource for testing",
        mime_type="text/plain",
    ),
    types.Resource(
        uri="test://static-binary",
        name="static-binary",
        title="Static Binary Resource",
        description="A static binary resource (a PNG) for testing",
        mime_type="image/png",
    ),
    types.Resource(
        uri="test://watched-resource",
        name="watched-resource",
        title="Watched Resource",
        description="A resource to subscribe to",
        mime_type="text/plain",
    ),
]

TEMPLATES = [
    types.ResourceTemplate(
        uri_template=TEMPLATE,
        name="template",
        title="Resource Template",
        description="A resource template with parameter substitution",
        mime_type="application/json",
    )
]


def _argument(name: str, description: str) -> types.PromptArgument:
    return types.PromptArgument(name=name, description=description, required=True)


PROMPTS = [
    types.Prompt(
        name="test_simple_prompt",
        title="Simple Test Prompt",
        description="A simple prompt without arguments",
    ),
    types.Prompt(
        name="test_prompt_with_arguments",
        title="Prompt With Arguments",
        description="A prompt with required arguments",
        arguments=[
            _argument("arg1", "First test argument"),
            _argument("arg2", "Second test argument"),
        ],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        title="Prompt With Embedded Resource",
        description="A prompt that includes an embedded resource",
        arguments=[_argument("resourceUri", "URI of the resource to embed")],
    ),
    types.Prompt(
        name="test_prompt_with_image",
        title="Prompt With Image",
        description="A prompt that includes image content",
    ),
]

#: What ``arg1`` of ``test_prompt_with_arguments`` completes to from "test", as the
#: suite's ``completion-complete`` asks.
COMPLETED = "testValue1"
#: Completion candidates by (prompt name or template, argument).
_COMPLETIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("test_prompt_with_arguments", "arg1"): ("paris", "park", "party", COMPLETED),
    ("test_prompt_with_arguments", "arg2"): ("world", "testValue2"),
    (TEMPLATE, "id"): ("1", "2", "3", "123"),
}


def _user(content: Any) -> types.PromptMessage:
    return types.PromptMessage(role="user", content=content)


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


class ContentHandlers:
    """The upstream's ``on_*`` handlers for resources, prompts and completion; keeps the
    URIs subscribed to (one upstream serves one rig, so one set)."""

    def __init__(self) -> None:
        self.subscriptions: set[str] = set()

    def handlers(self) -> dict[str, Any]:
        return {
            "on_list_resources": self._list_resources,
            "on_list_resource_templates": self._list_templates,
            "on_read_resource": self._read_resource,
            "on_subscribe_resource": self._subscribe,
            "on_unsubscribe_resource": self._unsubscribe,
            "on_list_prompts": self._list_prompts,
            "on_get_prompt": self._get_prompt,
            "on_completion": self._complete,
        }

    # -- resources ----------------------------------------------------------------------

    async def _list_resources(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=RESOURCES)

    async def _list_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=TEMPLATES)

    async def _read_resource(
        self, ctx: Ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = params.uri
        contents: types.TextResourceContents | types.BlobResourceContents
        if uri == "test://static-text":
            contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text=STATIC_TEXT)
        elif uri == "test://static-binary":
            contents = types.BlobResourceContents(uri=uri, mime_type="image/png", blob=png())
        elif uri == "test://watched-resource":
            contents = types.TextResourceContents(
                uri=uri, mime_type="text/plain", text=WATCHED_TEXT
            )
        elif match := _TEMPLATE_URI.match(uri):
            item = match["id"]
            text = json.dumps({"id": item, "templateTest": True, "data": f"Data for ID: {item}"})
            contents = types.TextResourceContents(uri=uri, mime_type="application/json", text=text)
        else:
            raise MCPError(_RESOURCE_NOT_FOUND, f"Resource not found: {uri}")
        return types.ReadResourceResult(contents=[contents])

    async def _subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        self.subscriptions.add(params.uri)
        return types.EmptyResult()

    async def _unsubscribe(
        self, ctx: Ctx, params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        self.subscriptions.discard(params.uri)
        return types.EmptyResult()

    # -- prompts ------------------------------------------------------------------------

    async def _list_prompts(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=PROMPTS)

    async def _get_prompt(
        self, ctx: Ctx, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        arguments = params.arguments or {}

        def argument(name: str) -> str:
            if name not in arguments:
                raise MCPError(_INVALID_PARAMS, f"{params.name} needs the argument {name!r}")
            return arguments[name]

        if params.name == "test_simple_prompt":
            messages = [_user(_text("This is a simple prompt for testing."))]
        elif params.name == "test_prompt_with_arguments":
            arg1, arg2 = argument("arg1"), argument("arg2")
            messages = [_user(_text(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"))]
        elif params.name == "test_prompt_with_embedded_resource":
            resource = types.TextResourceContents(
                uri=argument("resourceUri"),
                mime_type="text/plain",
                text="Embedded resource content for testing.",
            )
            messages = [
                _user(types.EmbeddedResource(type="resource", resource=resource)),
                _user(_text("Please process the embedded resource above.")),
            ]
        elif params.name == "test_prompt_with_image":
            messages = [
                _user(types.ImageContent(type="image", data=png(), mime_type="image/png")),
                _user(_text("Please analyze the image above.")),
            ]
        else:
            raise MCPError(_INVALID_PARAMS, f"Unknown prompt: {params.name}")
        return types.GetPromptResult(messages=messages)

    # -- completion ---------------------------------------------------------------------

    async def _complete(
        self, ctx: Ctx, params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        ref = params.ref
        owner = ref.name if isinstance(ref, types.PromptReference) else ref.uri
        candidates = _COMPLETIONS.get((owner, params.argument.name), ())
        values = [value for value in candidates if value.startswith(params.argument.value)]
        return types.CompleteResult(
            completion=types.Completion(values=values, total=len(values), has_more=False)
        )
