"""Talking to one upstream MCP server: probe it, keep a session to it, call its tools.

:func:`probe` sends a bare ``initialize`` to learn whether a server wants credentials.
:class:`UpstreamSession` is a persistent MCP client session: it owns a long-lived task
that enters the MCP SDK's client context managers (their anyio task groups must be
entered and left in the same task), initializes once, and serves any number of
concurrent calls until it is closed. Requests carry fresh credentials through
:class:`ConnectionAuth` (an ``httpx2.Auth`` that asks for a token and retries once after
a ``401``); a ``401``/``403`` that stands becomes :class:`AuthRejected`. A session that
fails — the server restarted and forgot our session id, the network dropped — is torn
down and rebuilt on the next use, after an exponential backoff. Servers whose catalog
entry says ``transport: sse`` fall back to the legacy HTTP+SSE transport when streamable
HTTP answers 404 or 405; no other server ever does. The tool list is cached and dropped
on ``notifications/tools/list_changed`` or when it is older than the TTL; calls are
bounded by a semaphore. The SDK opens and initializes the session; ``tools/list`` and
``tools/call`` then go straight over it (:mod:`.upstream_rpc`), which costs about half
the client-side CPU of the SDK's session tasks. :class:`Upstream` runs single operations
on short sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx2
import mcp_types as types
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from .exceptions import DodoError, UpstreamError, describe_error, dodo_error_in
from .oauth.discovery import Challenge, parse_challenge
from .upstream_rpc import RequestFailed, SessionLost, StreamableTarget, send_request

__all__ = [
    "AuthRejected",
    "ConnectionAuth",
    "ProbeResult",
    "Upstream",
    "UpstreamSession",
    "probe",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Headers = Callable[[str | None], Awaitable[dict[str, str]]]
ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]

_PROTOCOL_VERSION = "2025-11-25"
_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": _PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "dodo-jupyter", "version": "probe"},
    },
}


class AuthRejected(DodoError):
    """The MCP server answered 401 or 403: credentials missing, expired or too narrow."""

    status = 502
    code = "upstream_auth"

    def __init__(self, status: int, challenge: Challenge) -> None:
        super().__init__(f"The MCP server answered HTTP {status}.")
        self.http_status = status
        self.challenge = challenge


@dataclass(frozen=True)
class ProbeResult:
    """How an MCP server answered an ``initialize`` without (or with) credentials."""

    status: int
    challenge: Challenge = field(default_factory=Challenge)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


async def probe(
    http: httpx2.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> ProbeResult:
    """POST an MCP ``initialize`` and report the status (the body is not read)."""
    request_headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": _PROTOCOL_VERSION,
        **(headers or {}),
    }
    try:
        async with http.stream("POST", url, json=_INITIALIZE, headers=request_headers) as response:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            return ProbeResult(response.status_code, challenge)
    except httpx2.TimeoutException:
        raise UpstreamError("The MCP server did not answer in time.") from None
    except httpx2.HTTPError as e:
        raise UpstreamError(f"The MCP server could not be reached ({type(e).__name__}).") from None


class ConnectionAuth(httpx2.Auth):
    """Adds a connection's credentials to every request; after a 401 asks once for a
    fresher token (``headers(stale_token)``) and retries. A 401/403 that stands is kept
    in :attr:`rejected`: the MCP SDK reports it as a generic error, and dodo must see it
    to start a sign-in or step up scopes."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers
        #: The last 401/403 that stood (after any retry): its status and challenge.
        self.rejected: tuple[int, Challenge] | None = None

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
                response = yield request
        if response.status_code in (401, 403):
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            self.rejected = (response.status_code, challenge)


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
    sse_fallback:
        Fall back to the legacy HTTP+SSE transport when streamable HTTP gets 404/405
        (only for catalog entries whose transport is ``sse``).
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
        sse_fallback: bool = False,
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
        self._tools_serial = 0
        self.failures = 0
        self._retry_at = 0.0
        self.last_used = time.monotonic()
        self.last_error: str | None = None
        #: Whether this server may fall back to HTTP+SSE (its catalog transport is "sse").
        self.sse_fallback = sse_fallback
        self._use_sse = False
        self._last_post_status: int | None = None
        self._auth = ConnectionAuth(headers)
        #: The streamable-HTTP client and what initialize negotiated: calls go straight
        #: through them (:mod:`.upstream_rpc`); None on the legacy SSE transport.
        self._client: httpx2.AsyncClient | None = None
        self._target: StreamableTarget | None = None
        self._session_id: str | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def _run(self, ready: asyncio.Future[ClientSession]) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                session = await stack.enter_async_context(
                    ClientSession(
                        read,
                        write,
                        message_handler=self._on_message,
                        read_timeout_seconds=self._timeout,
                    )
                )
                initialized = await session.initialize()
                if self._client is not None:
                    self._target = StreamableTarget(
                        self.url, self._session_id, initialized.protocol_version
                    )
                ready.set_result(session)
                await self._stop.wait()
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e if isinstance(e, Exception) else UpstreamError(str(e)))
            elif not self._stop.is_set():
                log.info("dodo: upstream session %s ended: %s", self.key, describe_error(e))
        finally:
            self._session = None
            self._target = None

    def _transport(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Streamable HTTP, or the legacy HTTP+SSE transport once a server that is allowed
        to use it answered 404/405 to streamable HTTP."""
        auth = self._auth = ConnectionAuth(self._headers)
        self._client = self._target = self._session_id = None
        if self._use_sse:

            def factory(
                headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = auth
            ) -> httpx2.AsyncClient:
                return self._make_client(headers=headers, timeout=timeout, auth=auth)

            return sse_client(self.url, httpx_client_factory=factory, auth=auth)
        client = self._client = self._make_client(
            auth=auth, event_hooks={"response": [self._watch_status]}
        )

        @contextlib.asynccontextmanager
        async def streamable() -> AsyncIterator[Any]:
            async with client, streamable_http_client(self.url, http_client=client) as streams:
                yield streams

        return streamable()

    async def _watch_status(self, response: httpx2.Response) -> None:
        if response.request.method != "POST":
            return
        if response.status_code >= 400:
            self._last_post_status = response.status_code
        elif self._session_id is None:
            self._session_id = response.headers.get("mcp-session-id")

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
            return await self._open_locked()

    async def _open_locked(self) -> ClientSession:
        await self._shutdown()
        self._stop = asyncio.Event()
        self._last_post_status = None
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(ready), name=f"dodo-upstream-{self.key}")
        try:
            self._session = await asyncio.wait_for(ready, self._timeout)
        except BaseException as e:
            await self._shutdown()
            if self.sse_fallback and not self._use_sse and self._last_post_status in (404, 405):
                log.info("dodo: %s does not speak streamable HTTP; using HTTP+SSE", self.key)
                self._use_sse = True
                return await self._open_locked()
            self._failed(e)
            self._raise_rejection()
            found = dodo_error_in(e)  # e.g. NeedsAuth from the token hook, in a task group
            if found is not None:
                raise found from None
            raise UpstreamError(f"Cannot open an MCP session: {describe_error(e)}") from None
        self.failures = 0
        self.last_error = None
        return self._session

    def _raise_rejection(self) -> None:
        if self._auth.rejected is not None:
            status, challenge = self._auth.rejected
            raise AuthRejected(status, challenge)

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
            self._auth.rejected = None
            try:
                async with self._limit:
                    return await work(session)
            except DodoError:
                raise
            except Exception as e:
                self._raise_rejection()
                if attempt == 2 or not _looks_like_lost_session(e, self):
                    if isinstance(e, RequestFailed) and e.status is None:
                        # The connection broke: open a new session on the next use.
                        async with self._lock:
                            await self._shutdown()
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
                params: dict[str, Any] = {"cursor": cursor} if cursor else {}
                if meta:
                    params["_meta"] = meta
                answer = await self._send("tools/list", params)
                if answer is None:  # the legacy SSE transport
                    result = await session.list_tools(
                        params=types.PaginatedRequestParams.model_validate(params)
                    )
                else:
                    result = types.ListToolsResult.model_validate(answer)
                tools.extend(result.tools)
                cursor = result.next_cursor
                if not cursor:
                    break
            return tools

        tools: list[types.Tool] = await self._with_session(work)
        self._tools, self._tools_at = tools, time.monotonic()
        self._tools_serial += 1
        return tools

    def tools_stamp(self) -> int | None:
        """Which fetch the cached tool list came from, while it is fresh; None once it was
        dropped (``tools/list_changed``, a reconnect) or is older than the TTL. Equal
        stamps mean the same list: the gateway's listing cache compares them."""
        if self._tools is None or time.monotonic() - self._tools_at >= self._tools_ttl:
            return None
        return self._tools_serial

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        progress: ProgressFn | None = None,
        meta: dict[str, Any] | None = None,
    ) -> types.CallToolResult:
        """Call a tool; the server's result (``isError`` for tool errors)."""

        async def work(session: ClientSession) -> types.CallToolResult:
            params: dict[str, Any] = {"name": name, "arguments": arguments}
            if meta:
                params["_meta"] = meta
            answer = await self._send("tools/call", params, progress)
            if answer is None:  # the legacy SSE transport
                return await session.call_tool(
                    name,
                    arguments,
                    progress_callback=progress,  # type: ignore[arg-type]
                    meta=meta,  # type: ignore[arg-type]
                )
            return types.CallToolResult.model_validate(answer)

        result: types.CallToolResult = await self._with_session(work)
        return result

    async def _send(
        self, method: str, params: dict[str, Any], progress: ProgressFn | None = None
    ) -> dict[str, Any] | None:
        """A request's result, sent straight over the open streamable-HTTP session
        (:mod:`.upstream_rpc`); None on the legacy SSE transport (use the SDK session)."""
        client, target = self._client, self._target
        if client is None or target is None:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                return await send_request(
                    client,
                    target,
                    method,
                    params,
                    on_notification=self._notified(progress),
                    progress=progress is not None,
                )
        except TimeoutError:
            raise UpstreamError(
                f"The MCP server did not answer within {self._timeout:.0f} s."
            ) from None

    def _notified(self, progress: ProgressFn | None) -> Callable[[dict[str, Any]], Awaitable[None]]:
        """Handles the notifications on one call's stream."""

        async def notified(message: dict[str, Any]) -> None:
            method = message["method"]
            params = message.get("params") or {}
            if method == "notifications/tools/list_changed":
                self._tools = None
            elif method == "notifications/progress" and progress is not None:
                total = params.get("total")
                await progress(
                    float(params.get("progress", 0)),
                    float(total) if total is not None else None,
                    params.get("message"),
                )

        return notified


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
        )
        try:
            return await work(session)
        finally:
            await session.close()

    async def list_tools(self) -> list[types.Tool]:
        return await self._once(lambda session: session.list_tools())

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return await self._once(lambda session: session.call_tool(name, arguments))


def _looks_like_lost_session(error: BaseException, session: UpstreamSession) -> bool:
    text = str(error).lower()
    task = session._task
    # The SDK reports a 404 for our session id (the server restarted) as "Session
    # terminated" or "Session not found", depending on where it noticed.
    if isinstance(error, SessionLost) or (isinstance(error, RequestFailed) and error.unsent):
        return True
    lost = "session" in text and ("terminated" in text or "not found" in text)
    return lost or "closed" in text or (task is not None and task.done())
