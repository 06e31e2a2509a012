"""The gateway's tools in the shapes agent code wants: OpenAI function-calling specs, and
plain Python callables whose signature and docstring come from the tool's JSON schema."""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .results import Tool, ToolResult


class CallsTools(Protocol):
    """What a tool function needs of a client (``DodoClient`` is one)."""

    def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult: ...


__all__ = ["openai_tools", "tool_function", "tool_functions"]

_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def openai_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """``[{"type": "function", "function": {name, description, parameters}}, ...]``."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.input_schema or {"type": "object", "properties": {}},
            },
        }
        for tool in tools
    ]


def _annotation(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return Any
    kind = schema.get("type")
    if isinstance(kind, str):
        return _JSON_TYPES.get(kind, Any)
    return Any


def _parameter_name(name: str) -> str:
    safe = re.sub(r"\W", "_", name)
    if not safe or safe[0].isdigit() or keyword.iskeyword(safe):
        safe = f"arg_{safe}"
    return safe


def _docstring(tool: Tool) -> str:
    lines = [tool.description.strip() or f"The MCP tool {tool.name}.", ""]
    properties = (tool.input_schema or {}).get("properties") or {}
    if properties:
        lines.append("Parameters")
        lines.append("----------")
        for name, schema in properties.items():
            schema = schema if isinstance(schema, dict) else {}
            kind = schema.get("type", "any")
            lines.append(f"{name} : {kind}")
            if schema.get("description"):
                lines.append(f"    {schema['description']}")
            if schema.get("enum"):
                lines.append(f"    One of {schema['enum']!r}.")
    return "\n".join(lines).rstrip()


def tool_function(client: CallsTools, tool: Tool) -> Callable[..., Any]:
    """A callable for one tool: keyword (or positional) arguments as in its schema."""
    schema = tool.input_schema or {}
    properties: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    parameters: list[inspect.Parameter] = []
    names: dict[str, str] = {}
    # Required parameters first: Python needs them before those with defaults.
    for name in sorted(properties, key=lambda n: n not in required):
        python_name = _parameter_name(name)
        names[python_name] = name
        prop = properties[name] if isinstance(properties[name], dict) else {}
        if name in required:
            default: Any = inspect.Parameter.empty
        else:
            default = prop.get("default")
        parameters.append(
            inspect.Parameter(
                python_name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=default,
                annotation=_annotation(prop),
            )
        )
    signature = inspect.Signature(parameters)

    def call(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        arguments = {names[key]: value for key, value in bound.arguments.items()}
        return client.call_tool(tool.name, arguments).value

    call.__name__ = call.__qualname__ = _parameter_name(tool.name)
    call.__doc__ = _docstring(tool)
    call.__signature__ = signature  # type: ignore[attr-defined]
    return call


def tool_functions(client: CallsTools, tools: Sequence[Tool]) -> dict[str, Callable[..., Any]]:
    """One callable per tool, by tool name."""
    return {tool.name: tool_function(client, tool) for tool in tools}
