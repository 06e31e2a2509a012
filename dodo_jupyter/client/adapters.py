"""The gateway's tools as OpenAI function-calling specs. (Tools as Python functions:
:mod:`dodo_jupyter.client.typed_api`, behind ``DodoClient.functions()``.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .results import Tool

__all__ = ["openai_tools"]


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
