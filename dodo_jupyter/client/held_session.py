"""One MCP client to the gateway kept open per event loop, for code that makes request
after request (a notebook, or an agent's code in code mode calling tool after tool).

Opening a client costs a TCP connection and, the first time, the version discovery; kept
open, each later request is one POST on a kept-alive connection. The MCP SDK's client
lives in a task group, which must be left by the task that entered it, while requests
come from many tasks (each synchronous call is a new task on the client's loop thread):
so a small owner task per loop opens the client, hands it out, and closes it when told.
A request that fails below MCP (the connection, the HTTP status) drops the client; the
next request opens a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

__all__ = ["HeldSessions"]

OpenClient = Callable[[list[int]], AbstractAsyncContextManager[Any]]
"""Opens a client; it appends the status of every failed HTTP answer to the list."""


class _Held:
    """The owner task of one loop's client."""

    def __init__(self, open_client: OpenClient) -> None:
        self.failed: list[int] = []
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[Any] = loop.create_future()
        self._stop = asyncio.Event()
        self._task = loop.create_task(self._own(open_client), name="dodo-client-session")

    async def _own(self, open_client: OpenClient) -> None:
        try:
            async with open_client(self.failed) as client:
                self._ready.set_result(client)
                await self._stop.wait()
        except BaseException as e:
            if not self._ready.done():
                self._ready.set_exception(e)
            elif not isinstance(e, Exception):
                raise

    async def client(self) -> Any:
        return await asyncio.shield(self._ready)

    async def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await self._task


class HeldSessions:
    """An open client per event loop (see the module docstring)."""

    def __init__(self, open_client: OpenClient) -> None:
        self._open = open_client
        self._held: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Held] = (
            weakref.WeakKeyDictionary()
        )

    @contextlib.asynccontextmanager
    async def use(self, failed: list[int]) -> AsyncIterator[Any]:
        """The loop's client. A failure drops it, and the statuses of the failed HTTP
        answers it saw since go to ``failed``; a cancellation leaves it open (the request
        was the caller's, not the connection's)."""
        loop = asyncio.get_running_loop()
        held = self._held.get(loop)
        if held is None:
            held = self._held[loop] = _Held(self._open)
        held.failed.clear()
        try:
            yield await held.client()
        except Exception:
            failed.extend(held.failed)
            if self._held.get(loop) is held:
                del self._held[loop]
                await held.close()
            raise

    async def close(self) -> None:
        """Close this loop's client (the others close with their loops)."""
        held = self._held.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held.close()
