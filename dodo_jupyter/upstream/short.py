"""Short MCP sessions for single operations (:class:`Upstream`): probes after a sign-in,
tool counts, step-up checks. The gateway keeps sessions open instead
(:class:`~.session.UpstreamSession`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx2
import mcp_types as types

from ..tool_results import WireResult
from .session import UpstreamSession

__all__ = ["Upstream"]

T = TypeVar("T")


class Upstream:
    """Fixed request headers and a fresh short session per operation: probes after a
    sign-in, tool counts, step-up checks. (The gateway keeps sessions open instead.)"""

    def __init__(
        self,
        make_client: Callable[..., httpx2.AsyncClient],
        url: str,
        headers: dict[str, str],
        *,
        sse_fallback: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self._make_client = make_client
        self.url = url
        self.headers = headers
        self._sse_fallback = sse_fallback
        self._timeout = timeout

    async def _once(self, work: Callable[[UpstreamSession], Awaitable[T]]) -> T:
        async def fixed(stale: str | None) -> dict[str, str]:
            return self.headers

        session = UpstreamSession(
            "once",
            self.url,
            self._make_client,
            fixed,
            tools_ttl=0.0,
            timeout=self._timeout,
            sse_fallback=self._sse_fallback,
            listen=False,
        )
        try:
            return await work(session)
        finally:
            await session.close()

    async def list_tools(self) -> list[types.Tool]:
        return await self._once(lambda session: session.list_tools())

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> WireResult:
        return await self._once(lambda session: session.call_tool(name, arguments))
