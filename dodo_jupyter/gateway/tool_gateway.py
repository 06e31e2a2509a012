"""What the gateway's MCP endpoint needs of the gateway service (``runtime.gateway``):
:class:`ToolGateway`. The endpoint is built before the service exists (the runtime
opens on a thread), so it asks for the service through a function returning this."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import mcp_types

    from ..governance.context import CallContext
    from ..tool_results import ToolCallResult
    from ..upstream.messages import Relay
    from .caller import ProgressFn
    from .directory import Directory
    from .live import LiveSessions

__all__ = ["ToolGateway"]


class ToolGateway(Protocol):
    """What the endpoint needs from the gateway service (``runtime.gateway``)."""

    #: Resources, prompts, completion, logging.
    directory: Directory
    #: The open client sessions, told of changes.
    live: LiveSessions

    async def list_tools(self, username: str) -> list[mcp_types.Tool]:
        """The user's enabled tools under their aggregated names."""
        ...

    async def call_tool(
        self,
        username: str,
        name: str,
        arguments: dict[str, Any],
        progress: ProgressFn | None = None,
        context: CallContext | None = None,
        relay: Callable[[str], Relay] | None = None,
    ) -> ToolCallResult:
        """Call an aggregated tool through the governance gate (the server's result as it
        sent it, or one dodo made); upstream problems come back as ``isError`` results,
        a refused call raises ``ToolRefused``; server requests during the call go to
        ``relay(server alias)``."""
        ...

    def input_schema(self, username: str, name: str) -> dict[str, Any] | None:
        """The cached input schema of an aggregated tool, without I/O."""
        ...
