"""REST: the caller's resources and prompts, across their connected servers.

The work is the gateway's :class:`~dodo_jupyter.gateway.directory.Directory`; these
handlers read the request, call it and write what MCP answered as JSON (field names as
on the wire). Resources are listed under gateway URIs (``dodo://<server>/<uri>``) and
prompts under gateway names (``<server>__<prompt>``), with ``server_id`` and the server's
own URI or name added to each item for people to read.

An upstream's JSON-RPC error becomes a 4xx or 502 whose message is the server's own
words (:func:`upstream_error`); who may call is decided as for the tools endpoints: the
owner, never a visitor of a shared server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import DodoError, NotFound, UpstreamError, ValidationFailed
from .base import DodoAPIHandler

if TYPE_CHECKING:
    from mcp.shared.exceptions import MCPError

__all__ = [
    "PromptGetHandler",
    "PromptListHandler",
    "ResourceListHandler",
    "ResourceReadHandler",
    "upstream_error",
]

T = TypeVar("T")

#: ``_meta`` key of a listed item's origin (``dodo_jupyter.gateway.uris.ORIGIN_KEY``,
#: repeated so this module loads without the MCP SDK).
_ORIGIN_KEY = "io.github.dodo-jupyter/origin"
#: JSON-RPC error codes an upstream may answer with (JSON-RPC 2.0 §5.1; MCP 2025-11-25's
#: "resource not found", which SEP-2164 replaced by "invalid params").
_METHOD_NOT_FOUND = -32601
_INVALID_PARAMS = -32602
_RESOURCE_NOT_FOUND = -32002
#: The longest upstream message passed on.
_MAX_MESSAGE = 300
#: What an upstream message loses before a person reads it: pydantic's documentation
#: links and ``[type=…]`` details, exception class names in front of a message.
_NOISE = re.compile(
    r"(For further information visit )?https?://errors\.pydantic\.dev\S*|\[type=[^\]]*\]"
    r"|\b[A-Z][A-Za-z]*(?:Error|Exception): "
)

Asked = Literal["resource", "prompt"]


def upstream_error(error: MCPError, asked: Asked) -> DodoError:
    """The REST error for an upstream's JSON-RPC ``error`` answering a ``resources/read``
    (``asked="resource"``) or a ``prompts/get`` (``"prompt"``).

    A resource the server cannot find or read by that URI is 404 (MCPServer answers
    "invalid params" for it, SEP-2164); arguments a prompt refuses are 400; a method the
    server does not have is 404; anything else is 502. The message carries the server's
    own words, on one line, without library internals.
    """
    code = error.error.code
    said = _one_line(str(error.error.message or "")) or "no reason given"
    if asked == "resource" and code in (_RESOURCE_NOT_FOUND, _INVALID_PARAMS):
        return NotFound(f"The MCP server has no resource by that URI: {said}")
    if code == _INVALID_PARAMS:
        return ValidationFailed(f"The MCP server refused the prompt's arguments: {said}")
    if code == _METHOD_NOT_FOUND:
        return NotFound(f"The MCP server does not offer {asked}s: {said}")
    return UpstreamError(f"The MCP server failed to answer for the {asked}: {said}")


def _one_line(text: str) -> str:
    """An upstream's message on one line of at most :data:`_MAX_MESSAGE` characters."""
    one = " ".join(_NOISE.sub(" ", text).split())
    return one if len(one) <= _MAX_MESSAGE else one[: _MAX_MESSAGE - 1] + "…"


class _DirectoryHandler(DodoAPIHandler):
    """The owner's gateway directory, with upstream errors as REST errors."""

    async def _username(self) -> str:
        return (await self.identity(mcp=True)).require_owner().username

    async def _upstream(self, work: Awaitable[T], asked: Asked) -> T:
        from mcp.shared.exceptions import MCPError  # loaded with the gateway already

        try:
            return await work
        except MCPError as e:
            raise upstream_error(e, asked) from None
        except UpstreamError as e:
            # The upstream session reports a JSON-RPC error answer as an UpstreamError
            # raised while handling it (``from None``): the answer is its context.
            if isinstance(e.__context__, MCPError):
                raise upstream_error(e.__context__, asked) from None
            raise


def _dump(item: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = item.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _with_origin(item: Any, key: str, original: str) -> dict[str, Any]:
    """A listed item as JSON, with ``server_id`` and the server's own ``key`` (``uri``,
    ``uriTemplate``, ``name``) as ``original``."""
    dumped = _dump(item)
    origin = (dumped.get("_meta") or {}).get(_ORIGIN_KEY) or {}
    dumped["server_id"] = origin.get("server", "")
    dumped[original] = origin.get(key, "")
    return dumped


class ResourceListHandler(_DirectoryHandler):
    """``GET /dodo/api/mcp/resources``: ``resources`` and ``templates`` of the caller's
    connected servers, under gateway URIs, each with ``server_id`` and ``original_uri``
    (``original_uri_template``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        username = await self._username()
        directory = self.dodo.gateway.directory
        resources, templates = await asyncio.gather(
            directory.list_resources(username), directory.list_resource_templates(username)
        )
        self.send_json(
            {
                "resources": [_with_origin(r, "uri", "original_uri") for r in resources],
                "templates": [
                    _with_origin(t, "uriTemplate", "original_uri_template") for t in templates
                ],
            }
        )


class ResourceReadHandler(_DirectoryHandler):
    """``GET /dodo/api/mcp/resources/read?uri=dodo://<server>/<uri>``: MCP's
    ``ReadResourceResult`` (``contents``, each with ``text`` or base64 ``blob``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        username = await self._username()
        uri = self.get_query_argument("uri", "")
        if not uri:
            raise ValidationFailed(
                "Give the resource's 'uri' (dodo://<server>/<uri>, from GET mcp/resources).",
                fields={"uri": "required"},
            )
        directory = self.dodo.gateway.directory
        result = await self._upstream(directory.read_resource(username, uri), "resource")
        self.send_json(_dump(result))


class PromptListHandler(_DirectoryHandler):
    """``GET /dodo/api/mcp/prompts``: the prompts of the caller's connected servers,
    named ``<server>__<prompt>``, each with ``server_id`` and ``original_name``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        username = await self._username()
        prompts = await self.dodo.gateway.directory.list_prompts(username)
        self.send_json({"prompts": [_with_origin(p, "name", "original_name") for p in prompts]})


class PromptGetHandler(_DirectoryHandler):
    """``POST /dodo/api/mcp/prompts/get {name, arguments}``: MCP's ``GetPromptResult``
    (``description``, ``messages``); the arguments are text, as MCP's are."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        username = await self._username()
        body = self.json_object()
        name, arguments = body.get("name"), body.get("arguments", {})
        arguments = {} if arguments is None else arguments
        if not isinstance(name, str) or not name:
            raise ValidationFailed(
                "Give the prompt's 'name' (<server>__<prompt>, from GET mcp/prompts).",
                fields={"name": "required string"},
            )
        if not isinstance(arguments, dict):
            raise ValidationFailed(
                "'arguments' must be a JSON object of texts by argument name.",
                fields={"arguments": "object required"},
            )
        not_text = sorted(key for key, value in arguments.items() if not isinstance(value, str))
        if not_text:
            raise ValidationFailed(
                f"Prompt arguments are text: give {', '.join(map(repr, not_text))} as strings.",
                fields={f"arguments.{key}": "string required" for key in not_text},
            )
        directory = self.dodo.gateway.directory
        try:
            result = await self._upstream(directory.get_prompt(username, name, arguments), "prompt")
        except UpstreamError as e:
            # Servers built with the MCP SDK fail (an internal error) on a missing
            # argument: say which, from the prompt as listed.
            missing = await self._missing(username, name, arguments) if e.status == 502 else []
            if not missing:
                raise
            raise ValidationFailed(
                f"The prompt {name!r} needs {', '.join(map(repr, missing))}.",
                fields={f"arguments.{key}": "required" for key in missing},
            ) from None
        self.send_json(_dump(result))

    async def _missing(self, username: str, name: str, arguments: dict[str, str]) -> list[str]:
        """The prompt's required arguments that ``arguments`` lacks (as listed now)."""
        for prompt in await self.dodo.gateway.directory.list_prompts(username):
            if prompt.name == name:
                return [
                    argument.name
                    for argument in prompt.arguments or []
                    if argument.required and argument.name not in arguments
                ]
        return []
