"""The upstream pool: one persistent MCP client session per connected server.

Each :class:`UpstreamSession` owns a long-lived task that enters the MCP SDK's client
context managers (their anyio task groups must be entered and left in the same task),
initializes once, and then serves any number of concurrent calls until it is closed.
Requests carry fresh credentials through :class:`ConnectionAuth` (an ``httpx2.Auth``
that asks the OAuth engine for a token and retries once after a ``401``). A session that
fails — the server restarted and forgot our session id, the network dropped — is torn
down and rebuilt on the next use, after an exponential backoff. The tool list is cached
and dropped on ``notifications/tools/list_changed`` or when it is older than the TTL.
Calls per upstream are bounded by a semaphore; sessions idle for longer than the idle
timeout are closed by :meth:`UpstreamPool.reap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import httpx2
import mcp_types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from ..exceptions import DodoError, UpstreamError, describe_error

__all__ = ["ConnectionAuth", "UpstreamPool", "UpstreamSession"]

log = logging.getLogger(__name__)

Headers = Callable[[str | None], Awaitable[dict[str, str]]]
ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]


class ConnectionAuth(httpx2.Auth):
    """Adds a connection's credentials to every request; after a 401 asks once for a
    fresher token (``headers(stale_token)``) and retries."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        sent = await self._headers(None)
        request.headers.update(sent)
        response = yield request
        bearer = sent.get("Authorization", "")
        if response.status_code == 401 and bearer.startswith("Bearer "):
            fresh = await self._headers(bearer.removeprefix("Bearer "))
            if fresh.get("Authorization") != bearer:
                request.headers.update(fresh)
                yield request


class UpstreamSession:
    """A persistent MCP session to one server (see the module docstring).

    Parameters
    ----------
    key:
        The connection id.
    url:
        The server's MCP endpoint.
    make_client:
        Builds the guarded ``httpx2.AsyncClient`` (keyword arguments pass through).
    headers:
        ``await headers(stale_token)`` gives the request headers.
    max_concurrency:
        Calls in flight at once.
    tools_ttl:
        Seconds a tool list is trusted without a change notification.
    """

    def __init__(
        self,
        key: str,
        url: str,
        make_client: Callable[..., httpx2.AsyncClient],
        headers: Headers,
        *,
        max_concurrency: int = 8,
        tools_ttl: float = 300.0,
        timeout: float = 30.0,
    ) -> None:
        self.key = key
        self.url = url
        self._make_client = make_client
        self._headers = headers
        self._limit = asyncio.Semaphore(max_concurrency)
        self._tools_ttl = tools_ttl
        self._timeout = timeout
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[ClientSession] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tools: list[types.Tool] | None = None
        self._tools_at = 0.0
        self.failures = 0
        self._retry_at = 0.0
        self.last_used = time.monotonic()
        self.last_error: str | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def _run(self, ready: asyncio.Future[ClientSession]) -> None:
        client = self._make_client(auth=ConnectionAuth(self._headers))
        try:
            async with (
                client,
                streamable_http_client(self.url, http_client=client) as (
                    read,
                    write,
                ),
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
                log.info("dodo: upstream session %s ended: %s", self.key, describe_error(e))
        finally:
            self._session = None

    async def _on_message(self, message: Any) -> None:
        inner = getattr(message, "root", message)
        if isinstance(inner, types.ToolListChangedNotification):
            self._tools = None

    async def session(self) -> ClientSession:
        """The open session, connecting (or reconnecting after backoff) when needed."""
        self.last_used = time.monotonic()
        if self._session is not None and self._task is not None and not self._task.done():
            return self._session
        async with self._lock:
            if self._session is not None and self._task is not None and not self._task.done():
                return self._session
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                raise UpstreamError(
                    f"The MCP server is unavailable ({self.last_error}); retrying in {wait:.0f} s."
                )
            await self._shutdown()
            self._stop = asyncio.Event()
            ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._run(ready), name=f"dodo-upstream-{self.key}")
            try:
                self._session = await asyncio.wait_for(ready, self._timeout)
            except BaseException as e:
                self._failed(e)
                await self._shutdown()
                if isinstance(e, DodoError):
                    raise
                raise UpstreamError(f"Cannot open an MCP session: {describe_error(e)}") from None
            self.failures = 0
            self.last_error = None
            return self._session

    def _failed(self, error: BaseException) -> None:
        self.failures += 1
        self.last_error = describe_error(error)
        self._retry_at = time.monotonic() + min(60.0, 0.5 * 2 ** (self.failures - 1))

    async def _shutdown(self) -> None:
        task, self._task = self._task, None
        self._session = None
        self._tools = None
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

    async def close(self) -> None:
        async with self._lock:
            await self._shutdown()

    # -- use ----------------------------------------------------------------------------

    async def _with_session(self, work: Callable[[ClientSession], Awaitable[Any]]) -> Any:
        """Run ``work`` on the session; after a broken session, reconnect and retry once."""
        for attempt in (1, 2):
            session = await self.session()
            try:
                async with self._limit:
                    return await work(session)
            except DodoError:
                raise
            except Exception as e:
                if attempt == 2 or not _looks_like_lost_session(e, self):
                    raise UpstreamError(f"The MCP server failed: {describe_error(e)}") from None
                log.info(
                    "dodo: upstream session %s lost (%s); reconnecting", self.key, describe_error(e)
                )
                async with self._lock:
                    await self._shutdown()
        raise AssertionError("unreachable")

    async def list_tools(self, meta: dict[str, Any] | None = None) -> list[types.Tool]:
        """The server's tools, from cache when fresh; ``meta`` goes with the requests."""
        if self._tools is not None and time.monotonic() - self._tools_at < self._tools_ttl:
            return self._tools

        async def work(session: ClientSession) -> list[types.Tool]:
            tools: list[types.Tool] = []
            cursor: str | None = None
            for _ in range(100):
                params = types.PaginatedRequestParams(
                    cursor=cursor,
                    _meta=meta,  # type: ignore[arg-type]
                )
                result = await session.list_tools(params=params)
                tools.extend(result.tools)
                cursor = result.next_cursor
                if not cursor:
                    break
            return tools

        tools: list[types.Tool] = await self._with_session(work)
        self._tools, self._tools_at = tools, time.monotonic()
        return tools

    def cached_tools(self) -> list[types.Tool] | None:
        return self._tools

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        progress: ProgressFn | None = None,
        meta: dict[str, Any] | None = None,
    ) -> types.CallToolResult:
        """Call a tool; the server's result (``isError`` for tool errors)."""

        async def work(session: ClientSession) -> types.CallToolResult:
            return await session.call_tool(
                name,
                arguments,
                progress_callback=progress,  # type: ignore[arg-type]
                meta=meta,  # type: ignore[arg-type]
            )

        result: types.CallToolResult = await self._with_session(work)
        return result


class UpstreamPool:
    """Upstream sessions by connection id, shared by every caller of one server."""

    def __init__(self, *, idle_timeout: float = 600.0) -> None:
        self._sessions: dict[str, UpstreamSession] = {}
        self.idle_timeout = idle_timeout

    def get(self, key: str) -> UpstreamSession | None:
        return self._sessions.get(key)

    def ensure(self, key: str, factory: Callable[[], UpstreamSession]) -> UpstreamSession:
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = factory()
        return session

    async def discard(self, key: str) -> None:
        """Close and forget one session (disconnect, credentials changed)."""
        session = self._sessions.pop(key, None)
        if session is not None:
            await session.close()

    async def reap(self) -> int:
        """Close sessions idle for longer than ``idle_timeout``; returns how many."""
        now = time.monotonic()
        idle = [k for k, s in self._sessions.items() if now - s.last_used > self.idle_timeout]
        for key in idle:
            await self.discard(key)
        return len(idle)

    async def close(self) -> None:
        for key in list(self._sessions):
            await self.discard(key)


def _looks_like_lost_session(error: BaseException, session: UpstreamSession) -> bool:
    text = str(error).lower()
    task = session._task
    # The SDK reports a 404 for our session id (the server restarted) as "Session
    # terminated" or "Session not found", depending on where it noticed.
    lost = "session" in text and ("terminated" in text or "not found" in text)
    return lost or "closed" in text or (task is not None and task.done())
