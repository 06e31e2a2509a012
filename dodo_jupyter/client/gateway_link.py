"""One connection to the gateway kept per event loop, for code that makes request after
request (a notebook, or an agent's code in code mode calling tool after tool).

The kernel client speaks MCP with dodo's own client (:mod:`dodo_jupyter.upstream.wire`,
the one the gateway uses for its upstream servers): against a gateway that speaks
2026-07-28 each request is one POST on a kept-alive connection, with no session; against
an older one, a 2025-11-25 session is opened once. What is kept per loop is the HTTP
client and where its requests go (:class:`GatewayLink`); the first request of a loop
opens it (one at a time, so requests that start together share it). A request that
fails below MCP (the connection, the HTTP status) drops it; the next request opens a
new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx2

    from ..upstream.wire import StreamableTarget

__all__ = ["GatewayLink", "HeldLinks"]


@dataclass(frozen=True)
class GatewayLink:
    """An HTTP client and the gateway target its requests go to."""

    http: httpx2.AsyncClient
    target: StreamableTarget


OpenLink = Callable[[], Awaitable[GatewayLink]]


class _Loop:
    """One loop's link, and the lock under which it is opened."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.link: GatewayLink | None = None


class HeldLinks:
    """An open :class:`GatewayLink` per event loop (see the module docstring)."""

    def __init__(self, open_link: OpenLink) -> None:
        self._open = open_link
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Loop] = (
            weakref.WeakKeyDictionary()
        )

    def _loop(self) -> _Loop:
        loop = asyncio.get_running_loop()
        held = self._loops.get(loop)
        if held is None:
            held = self._loops[loop] = _Loop()
        return held

    async def link(self) -> GatewayLink:
        """This loop's link, opened when it has none."""
        held = self._loop()
        if held.link is not None:
            return held.link
        async with held.lock:
            if held.link is None:
                held.link = await self._open()
            return held.link

    async def drop(self, link: GatewayLink) -> None:
        """Forget ``link`` (it failed) and close it; the next request opens another."""
        held = self._loop()
        if held.link is link:
            held.link = None
        with contextlib.suppress(Exception):
            await link.http.aclose()

    async def close(self) -> None:
        """Close this loop's link (the others close with their loops)."""
        from ..upstream.wire import close

        held = self._loops.pop(asyncio.get_running_loop(), None)
        if held is not None and held.link is not None:
            with contextlib.suppress(Exception):
                await close(held.link.http, held.link.target)  # a 2025-11-25 session ends
            with contextlib.suppress(Exception):
                await held.link.http.aclose()
