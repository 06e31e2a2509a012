"""The gateway's answers as this package's results.

The kernel client reads answers as plain JSON (:mod:`dodo_jupyter.upstream.wire`), not
as the MCP SDK's models: a result of 500 issues is parsed once and handed on, not
validated and dumped again. Each function here checks what it reads for the shape MCP
gives it (a list of tools, content blocks as objects, names as strings) and raises
:class:`BadAnswer` when it is not there; optional fields of the wrong type are left out.
"""

from __future__ import annotations

from typing import Any

from .results import (
    Prompt,
    PromptArgument,
    PromptResult,
    Resource,
    ResourceContent,
    ResourceResult,
    ResourceTemplate,
    Tool,
    ToolResult,
    origin_of,
)

__all__ = [
    "BadAnswer",
    "items_of",
    "prompt_result_of",
    "prompts_of",
    "resource_result_of",
    "resources_of",
    "templates_of",
    "tool_result_of",
    "tools_of",
]


class BadAnswer(Exception):
    """The gateway answered without the shape MCP requires."""

    def __init__(self) -> None:
        super().__init__("its answer did not have the shape MCP requires")


def items_of(result: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """``result[key]``: a list of objects (a listing's page, content blocks)."""
    items = result.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise BadAnswer
    return items


def _name(item: dict[str, Any], key: str = "name") -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise BadAnswer
    return value


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    return value if isinstance(value, str) else ""


def _object(item: dict[str, Any], key: str) -> dict[str, Any]:
    value = item.get(key)
    return dict(value) if isinstance(value, dict) else {}


def tools_of(items: list[dict[str, Any]]) -> list[Tool]:
    return [
        Tool(
            _name(t),
            _text(t, "description"),
            _object(t, "inputSchema"),
            _object(t, "outputSchema"),
        )
        for t in items
    ]


def tool_result_of(name: str, result: dict[str, Any]) -> ToolResult:
    return ToolResult(
        name=name,
        content=items_of(result, "content"),
        structured=result.get("structuredContent"),
        is_error=result.get("isError") is True,
    )


def resources_of(items: list[dict[str, Any]]) -> list[Resource]:
    resources = []
    for r in items:
        origin = origin_of(r.get("_meta"))
        size = r.get("size")
        resources.append(
            Resource(
                uri=_name(r, "uri"),
                name=_text(r, "name"),
                title=_text(r, "title"),
                description=_text(r, "description"),
                mime_type=_text(r, "mimeType"),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                server_id=str(origin.get("server", "")),
                original_uri=str(origin.get("uri", "")),
            )
        )
    return resources


def templates_of(items: list[dict[str, Any]]) -> list[ResourceTemplate]:
    return [
        ResourceTemplate(
            uri_template=_name(t, "uriTemplate"),
            name=_text(t, "name"),
            title=_text(t, "title"),
            description=_text(t, "description"),
            mime_type=_text(t, "mimeType"),
            server_id=str(origin_of(t.get("_meta")).get("server", "")),
            original_uri_template=str(origin_of(t.get("_meta")).get("uriTemplate", "")),
        )
        for t in items
    ]


def prompts_of(items: list[dict[str, Any]]) -> list[Prompt]:
    prompts = []
    for p in items:
        arguments = p.get("arguments") or []
        if not isinstance(arguments, list) or not all(isinstance(a, dict) for a in arguments):
            raise BadAnswer
        origin = origin_of(p.get("_meta"))
        prompts.append(
            Prompt(
                name=_name(p),
                description=_text(p, "description"),
                arguments=[
                    PromptArgument(_name(a), _text(a, "description"), a.get("required") is True)
                    for a in arguments
                ],
                title=_text(p, "title"),
                server_id=str(origin.get("server", "")),
                original_name=str(origin.get("name", "")),
            )
        )
    return prompts


def resource_result_of(uri: str, result: dict[str, Any]) -> ResourceResult:
    contents = [
        ResourceContent(
            uri=str(item.get("uri", uri)),
            mime_type=_text(item, "mimeType"),
            text=item.get("text") if isinstance(item.get("text"), str) else None,
            blob=item.get("blob") if isinstance(item.get("blob"), str) else None,
        )
        for item in items_of(result, "contents")
    ]
    return ResourceResult(uri, contents)


def prompt_result_of(name: str, result: dict[str, Any]) -> PromptResult:
    return PromptResult(name, items_of(result, "messages"), _text(result, "description"))
