"""The deprecated HTTP+SSE transport (protocol 2024-11-05), for catalog entries whose
``transport`` is ``sse`` and whose server does not speak streamable HTTP.

It is a different transport, not a second client for the same one: requests are POSTed
to an endpoint the server names on a long-lived ``GET`` event stream, and every answer
comes back on that stream. dodo leaves it to the MCP SDK's ``sse_client`` and
``ClientSession`` (over dodo's guarded httpx2 clients), in one long-lived task, because
the SDK's anyio task groups must be entered and left in the same task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import httpx2
import mcp_types as types
from mcp import ClientSession
from mcp.client.sse import sse_client

from ..exceptions import UpstreamError, describe_error
from .auth import ConnectionAuth

__all__ = ["LegacySSESession", "looks_lost"]

log = logging.getLogger(__name__)


class LegacySSESession:
    """An open HTTP+SSE session: :meth:`open`, use :attr:`session`, :meth:`close`."""

    def __init__(
        self,
        key: str,
        url: str,
        make_client: Callable[..., httpx2.AsyncClient],
        auth: ConnectionAuth,
        timeout: float,
        on_list_changed: Callable[[], None],
    ) -> None:
        self.key = key
        self.url = url
        self._make_client = make_client
        self._auth = auth
        self._timeout = timeout
        self._on_list_changed = on_list_changed
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.session: ClientSession | None = None

    async def open(self) -> None:
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(ready), name=f"dodo-upstream-sse-{self.key}")
        try:
            self.session = await asyncio.wait_for(ready, self._timeout)
        except BaseException:
            await self.close()
            raise

    def alive(self) -> bool:
        return self.session is not None and self._task is not None and not self._task.done()

    async def _run(self, ready: asyncio.Future[ClientSession]) -> None:
        auth = self._auth

        def factory(
            headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = auth
        ) -> httpx2.AsyncClient:
            return self._make_client(headers=headers, timeout=timeout, auth=auth)

        try:
            async with (
                sse_client(self.url, httpx_client_factory=factory, auth=auth) as (read, write),
                ClientSession(
                    read,
                    write,
                    message_handler=self._on_message,
                    read_timeout_seconds=self._timeout,
                ) as session,
            ):
                await session.initialize()
                ready.set_result(session)
                await self._stop.wait()
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e if isinstance(e, Exception) else UpstreamError(str(e)))
            elif not self._stop.is_set():
                log.info("dodo: upstream SSE session %s ended: %s", self.key, describe_error(e))
        finally:
            self.session = None

    async def _on_message(self, message: Any) -> None:
        if isinstance(getattr(message, "root", message), types.ToolListChangedNotification):
            self._on_list_changed()

    async def close(self) -> None:
        task, self._task = self._task, None
        self.session = None
        if task is None:
            return
        self._stop.set()
        if not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), 5)
            except (TimeoutError, Exception):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task


def looks_lost(error: BaseException, session: LegacySSESession) -> bool:
    """Whether the SDK's error means the session is gone (the server restarted and
    forgot it, the stream closed): then it is opened again."""
    text = str(error).lower()
    lost = "session" in text and ("terminated" in text or "not found" in text)
    return lost or "closed" in text or not session.alive()
