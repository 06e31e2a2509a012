"""A tool's result on its way through the gateway: the server's JSON as it came
(:class:`WireResult`), or the SDK's model for the results dodo makes itself (its errors).

The gateway hands a server's result on without validating it into the SDK's model and
dumping it again: for a result of 500 issues that was about 2 ms of the Jupyter
server's event loop per call. What it checks instead is the shape MCP gives a tool
result (:func:`checked_tool_result`): content blocks of a known type with their required
fields, ``isError`` a boolean, ``structuredContent`` an object; anything else is an
:class:`~dodo_jupyter.exceptions.UpstreamError` that the agent reads as a tool error.
The MCP SDK still validates what the gateway's handler returns, against the caller's
protocol version.

A caller that reads only a result's structured content (the kernel's typed tool
functions: ``tools.<server>.<tool>()`` returns that value) says so in the request's
``_meta`` (:data:`STRUCTURED_ONLY_META_KEY`); the gateway then leaves out the text blocks
of a successful result that has structured content (:func:`for_caller`). MCP asks a tool
with structured content to repeat it as JSON text; for 500 issues that text is half the
answer, which the gateway would validate, serialize and send, and the kernel parse, for
nothing. Errors, and blocks other than text, are always sent.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from .exceptions import UpstreamError

__all__ = [
    "STRUCTURED_ONLY_META_KEY",
    "ToolCallResult",
    "WireResult",
    "checked_tool_result",
    "for_caller",
    "is_error",
    "result_size",
    "wire_form",
]


class WireResult(dict[str, Any]):
    """A JSON-RPC ``result`` as a server sent it (camelCase keys), and the size in bytes
    of the JSON that carried it (None when not measured)."""

    def __init__(self, result: dict[str, Any], size: int | None = None) -> None:
        super().__init__(result)
        self.size = size


#: What calling a tool gives: the server's result, or one dodo made (an error).
ToolCallResult = types.CallToolResult | WireResult

#: Request ``_meta`` key by which a caller says it reads only the structured content of a
#: tool's result (see the module docstring).
STRUCTURED_ONLY_META_KEY = "io.github.dodo-jupyter/structuredOnly"

#: The fields each kind of content block requires, as strings (``resource`` aside).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "image": ("data", "mimeType"),
    "audio": ("data", "mimeType"),
    "resource_link": ("uri", "name"),
    "resource": (),
}


def _block_problem(index: int, block: Any) -> str | None:
    if not isinstance(block, dict):
        return f"content[{index}] is not an object"
    kind = block.get("type")
    if kind not in _REQUIRED:
        return f"content[{index}] has an unknown type {str(kind)[:40]!r}"
    for key in _REQUIRED[kind]:
        if not isinstance(block.get(key), str):
            return f"content[{index}] ({kind}) has no {key!r} string"
    if kind == "resource":
        resource = block.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("uri"), str):
            return f"content[{index}] (resource) has no resource with a 'uri'"
    return None


#: What a tool result without these fields means (the SDK's model's defaults).
_DEFAULTS: dict[str, Any] = {"content": [], "isError": False, "resultType": "complete"}


def checked_tool_result(result: WireResult) -> WireResult:
    """``result`` with the defaults of the fields it left out, when it has the shape of
    a tool result; otherwise an :class:`UpstreamError` saying what is wrong."""
    for key, value in _DEFAULTS.items():
        result.setdefault(key, value)
    content = result["content"]
    problem = None
    if not isinstance(content, list):
        problem = "'content' is not a list"
    elif not isinstance(result["isError"], bool):
        problem = "'isError' is not true or false"
    elif not isinstance(result.get("structuredContent", {}), dict):
        problem = "'structuredContent' is not an object"
    else:
        problem = next(
            (p for i, block in enumerate(content) if (p := _block_problem(i, block))), None
        )
    if problem is not None:
        raise UpstreamError(f"The MCP server sent a tool result that is not valid MCP: {problem}.")
    return result


def for_caller(result: ToolCallResult, meta: Any) -> ToolCallResult:
    """``result`` as the caller whose request ``_meta`` is ``meta`` wants it: without its
    text blocks when the caller reads only structured content (see the module
    docstring), else as it is."""
    if (
        not isinstance(meta, dict)
        or meta.get(STRUCTURED_ONLY_META_KEY) is not True
        or not isinstance(result, WireResult)
        or result.get("structuredContent") is None
        or is_error(result)
    ):
        return result
    content = [block for block in result["content"] if block.get("type") != "text"]
    return WireResult({**result, "content": content}, result.size)


def is_error(result: ToolCallResult) -> bool:
    """Whether the tool reported an error (``isError``)."""
    if isinstance(result, WireResult):
        return result.get("isError") is True
    return bool(result.is_error)


def result_size(result: ToolCallResult) -> int:
    """The result's size in bytes, as JSON."""
    if isinstance(result, WireResult):
        if result.size is not None:
            return result.size
        return len(json.dumps(result, separators=(",", ":")).encode())
    return len(result.model_dump_json(by_alias=True, exclude_none=True))


def wire_form(result: ToolCallResult) -> dict[str, Any]:
    """The result as MCP's JSON (camelCase keys)."""
    if isinstance(result, WireResult):
        return dict(result)
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)
