"""Use dodo from a kernel or any Python process.

>>> from dodo_jupyter.client import DodoClient
>>> dodo = DodoClient()                       # found from DODO_MCP_URL / DODO_MCP_TOKEN
>>> [t.name for t in dodo.list_tools()]       # doctest: +SKIP
>>> dodo.call_tool("demo__add", {"a": 1, "b": 2}).value   # doctest: +SKIP
>>> dodo.read_resource("dodo://docs/file:///README.md").text   # doctest: +SKIP
>>> dodo.get_prompt("docs__summarize", topic="MCP").text     # doctest: +SKIP

See :mod:`.discovery` for how dodo is found, :mod:`.adapters` for OpenAI specs,
:mod:`dodo_jupyter.client.typed_api` for the tools as typed Python functions, and
:mod:`.results` for how results display.
"""

from .discovery import Endpoint, discover
from .dodo_client import AsyncDodoClient, DodoClient
from .errors import DodoClientError, NotFoundError, ToolError
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
)

__all__ = [
    "AsyncDodoClient",
    "DodoClient",
    "DodoClientError",
    "Endpoint",
    "NotFoundError",
    "Prompt",
    "PromptArgument",
    "PromptResult",
    "Resource",
    "ResourceContent",
    "ResourceResult",
    "ResourceTemplate",
    "Tool",
    "ToolError",
    "ToolResult",
    "discover",
]
