"""What an aggregated tool name leads to (:class:`Route`), and a finished listing of a
user's tools (:class:`Listing`), as the gateway service keeps them."""

from __future__ import annotations

from dataclasses import dataclass, field

import mcp_types as types

from ..governance.gate import GatedTool, ToolGate
from ..governance.tool_policy import ToolPolicy
from ..store.models import MCPConnection

__all__ = ["Inputs", "Listing", "Route", "alias_of", "tool_error", "unrouted"]


def alias_of(row: MCPConnection) -> str:
    """A connection's alias: its catalog id, or ``srv-<6 hex>`` for a server added by URL
    (the prefix of its tools' and prompts' names, the server part of its resource URIs)."""
    return row.catalog_id or f"srv-{row.id[:6]}"


@dataclass(frozen=True)
class Route:
    """Where an aggregated tool name leads, and what governs it: the user's switch, the
    server's tool policy, the tool's quarantine (:mod:`dodo_jupyter.governance`)."""

    name: str
    connection_id: str
    server_id: str
    original_name: str
    tool: types.Tool
    enabled: bool
    catalog_id: str | None = None
    policy: ToolPolicy = field(default_factory=ToolPolicy)
    quarantine: str | None = None

    @property
    def gated(self) -> GatedTool:
        return GatedTool(
            self.name, self.server_id, self.catalog_id, self.tool, self.policy, self.quarantine
        )

    @property
    def alias(self) -> str:
        """The server's alias (the prefix of its tools' names)."""
        return self.catalog_id or f"srv-{self.connection_id[:6]}"  # as alias_of(row)

    @property
    def offered(self) -> bool:
        """Whether agents see it: switched on, allowed, not quarantined."""
        return self.enabled and ToolGate.hidden(self.gated) is None


@dataclass(frozen=True)
class Listing:
    """A finished listing: every route, and the tools agents see (enabled, renamed)."""

    routes: dict[str, Route]
    tools: list[types.Tool]


#: What a listing was built from: the user's usable rows and their tool switches.
Inputs = tuple[list[MCPConnection], dict[str, bool]]


def tool_error(message: str) -> types.CallToolResult:
    """A tool result an agent reads as a failure, with ``message`` as its text."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


def unrouted(name: str, unusable: list[MCPConnection]) -> types.CallToolResult:
    """The error for a tool name no usable server lists: the server's own problem when
    the name starts with the alias of one of the user's ``unusable`` connections."""
    alias = name.split("__", 1)[0] if "__" in name else None
    row = next((row for row in unusable if alias and alias_of(row) == alias), None)
    if row is not None and row.error:
        return tool_error(f"{alias}: {row.error} (MCP panel → Connect)")
    return tool_error(
        f"No tool named {name!r}: list the tools again, or connect its server in the MCP panel."
    )
