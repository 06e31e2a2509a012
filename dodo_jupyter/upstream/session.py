"""One MCP client per upstream server (:class:`UpstreamSession`).

An :class:`UpstreamSession` opens its session on first use (:func:`.wire.initialize`),
keeps it for any number of concurrent calls (bounded by a semaphore), reads the server's
``GET`` stream in the background (:func:`.wire.listen`: ``tools/list_changed`` outside a
call), and ends it when closed (``DELETE``). Requests carry fresh credentials through
:class:`~.auth.ConnectionAuth`; a ``401``/``403`` that stands becomes
:class:`~.auth.AuthRejected`. A session the server forgot (404) is opened again at once;
one that fails to open is retried after an exponential backoff. The tool list is cached
and dropped on ``notifications/tools/list_changed`` or when older than the TTL.

What the server says beyond answers: progress goes to the call that asked for it; a
server request (elicitation, sampling, roots) and a log message made during a call go to
that call's :class:`~.messages.Relay`; list changes, resource updates and log messages
outside a call go to the session's ``on_event``. The session declares to the server the
client capabilities it was built with (the gateway builds one session per set of
capabilities its callers declared). Servers
whose catalog entry says ``transport: sse`` use the deprecated HTTP+SSE transport
(:mod:`.legacy_sse`) when streamable HTTP answers 404 or 405; no other server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx2
import mcp_types as types
from mcp.shared.exceptions import MCPError

from .._version import __version__
from ..exceptions import DodoError, UpstreamError, UpstreamTimeout
from ..net.deadline import host_shown
from ..net.failures import describe_failure
from ..tool_results import WireResult, checked_tool_result
from . import wire
from .auth import AuthRejected, ConnectionAuth, Headers
from .legacy_sse import LegacySSESession
from .messages import OnNotification, Relay, RequestFailed, SessionLost

__all__ = ["UpstreamSession"]

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Longest wait for the GET stream when a session opens (it is read in any case).
LISTEN_OPEN_SECONDS = 5.0
ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
#: Notifications that concern the session, not one call.
SESSION_EVENTS = frozenset(
    {
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
        "notifications/resources/updated",
    }
)
#: Notifications a call's relay receives when they come while the call runs.
CALL_EVENTS = frozenset({"notifications/message", "notifications/elicitation/complete"})
#: Pages of a listing read at most.
MAX_PAGES = 100


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
    timeout:
        Seconds opening the session, and each request, may take.
    sse_fallback:
        Fall back to the HTTP+SSE transport when streamable HTTP gets 404/405 (only for
        catalog entries whose transport is ``sse``).
    listen:
        Read the server's GET stream while the session is open (not for short sessions).
    capabilities:
        The client capabilities declared in ``initialize`` (what the callers relayed to
        declared: ``elicitation``, ``sampling``, ``roots``); none by default.
    on_event:
        Told the notifications that concern the session (see the module docstring).
    on_open:
        Awaited after each time the session opened, to ask the new session for what the
        server forgot with the old one (subscriptions, a log level; see
        :meth:`request_once`). Its errors are logged, never raised.
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
        listen: bool = True,
        capabilities: dict[str, Any] | None = None,
        on_event: OnNotification | None = None,
        on_open: Callable[[UpstreamSession], Awaitable[None]] | None = None,
    ) -> None:
        self.key = key
        self._on_open = on_open
        self.capabilities = capabilities or {}
        self._on_event = on_event
        self.url = url
        self._listen = listen
        self._make_client = make_client
        self._headers = headers
        self._limit = asyncio.Semaphore(max_concurrency)
        self._tools_ttl = tools_ttl
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._auth = ConnectionAuth(headers)
        #: The open streamable-HTTP session: its client, target and GET-stream reader.
        self._client: httpx2.AsyncClient | None = None
        #: The session's requests' timeouts: a read may wait as long as a call may take.
        self._waiting: httpx2.Timeout | None = None
        self._target: wire.StreamableTarget | None = None
        self._listener: asyncio.Task[None] | None = None
        #: The open HTTP+SSE session, for a server that needs it.
        self._legacy: LegacySSESession | None = None
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

    # -- lifecycle ----------------------------------------------------------------------

    def _is_open(self) -> bool:
        if self._legacy is not None:
            return self._legacy.alive()
        return self._target is not None

    async def _ensure_open(self) -> None:
        """Open the session when it is not (after the backoff of earlier failures)."""
        self.last_used = time.monotonic()
        if self._is_open():
            return
        async with self._lock:
            if self._is_open():
                return
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                raise UpstreamError(
                    f"The MCP server is unavailable ({self.last_error}); retrying in {wait:.0f} s."
                )
            await self._open_locked()
        if self._on_open is not None:
            try:
                await self._on_open(self)
            except Exception as e:  # the session is open: what it could not restore is lost
                log.info("dodo: %s reopened without its earlier requests: %s", self.key, e)

    async def _open_locked(self) -> None:
        await self._shutdown()
        self._auth = ConnectionAuth(self._headers)
        try:
            if self._use_sse:
                await self._open_legacy()
            else:
                await self._open_streamable()
        except BaseException as e:
            await self._shutdown()
            status = e.status if isinstance(e, RequestFailed) else None
            if self.sse_fallback and not self._use_sse and status in (404, 405):
                log.info("dodo: %s does not speak streamable HTTP; using HTTP+SSE", self.key)
                self._use_sse = True
                return await self._open_locked()
            if not isinstance(e, Exception):
                raise
            self._failed(e)
            self._raise_rejection()
            if isinstance(e, DodoError):  # e.g. NeedsAuth from the token hook
                raise
            raise UpstreamError(f"Cannot open an MCP session: {describe_failure(e)}") from None
        self.failures = 0
        self.last_error = None

    async def _open_streamable(self) -> None:
        client = self._client = self._make_client(auth=self._auth)
        self._waiting = wire.waiting(client, self._timeout)
        try:
            async with asyncio.timeout(self._timeout):
                target = await wire.initialize(client, self.url, __version__, self.capabilities)
        except TimeoutError:
            raise UpstreamTimeout(self._late("initialize, opening the MCP session")) from None
        self._target = target
        if self._listen:
            # The session is ready once its GET stream is open: what the server sends
            # there before that is lost (it has nowhere to send it).
            opened = asyncio.Event()
            self._listener = asyncio.create_task(
                wire.listen(client, target, self._notified(None), opened),
                name=f"dodo-listen-{self.key}",
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self._timeout, LISTEN_OPEN_SECONDS)):
                    await opened.wait()

    async def _open_legacy(self) -> None:
        client = self._make_client(auth=self._auth)
        legacy = self._legacy = LegacySSESession(self.key, self.url, client, self._notified(None))
        try:
            async with asyncio.timeout(self._timeout):
                await legacy.open(__version__, self.capabilities)
        except TimeoutError:
            raise UpstreamTimeout(self._late("initialize, opening the MCP session")) from None

    def _raise_rejection(self) -> None:
        if self._auth.rejected is not None:
            status, challenge = self._auth.rejected
            raise AuthRejected(status, challenge)

    def _failed(self, error: BaseException) -> None:
        self.failures += 1
        self.last_error = describe_failure(error)
        self._retry_at = time.monotonic() + min(60.0, 0.5 * 2 ** (self.failures - 1))

    async def _shutdown(self) -> None:
        """End the open session, if any (its GET stream, ``DELETE``, its connections)."""
        self._tools = None
        listener, self._listener = self._listener, None
        client, self._client = self._client, None
        target, self._target = self._target, None
        legacy, self._legacy = self._legacy, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener
        if client is not None:
            if target is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await wire.close(client, target)
            await client.aclose()
        if legacy is not None:
            await legacy.close()

    async def close(self) -> None:
        async with self._lock:
            await self._shutdown()

    # -- use ----------------------------------------------------------------------------

    async def _with_session(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` on the open session; when the session was lost, open it again and
        run ``work`` once more."""
        for attempt in (1, 2):
            await self._ensure_open()
            self._auth.rejected = None
            try:
                async with self._limit:
                    return await work()
            except DodoError:
                raise
            except MCPError:  # an answer: the session is fine, unless credentials were refused
                self._raise_rejection()
                raise
            except Exception as e:
                self._raise_rejection()
                if attempt == 2 or not self._lost(e):
                    if isinstance(e, RequestFailed) and e.status is None:
                        # The connection broke: open a new session on the next use.
                        async with self._lock:
                            await self._shutdown()
                    raise UpstreamError(f"The MCP server failed: {describe_failure(e)}") from None
                log.info(
                    "dodo: upstream session %s lost (%s); reconnecting",
                    self.key,
                    describe_failure(e),
                )
                async with self._lock:
                    await self._shutdown()
        raise AssertionError("unreachable")

    @property
    def server_capabilities(self) -> dict[str, Any]:
        """What the server declared in ``initialize`` (empty until the session is open)."""
        if self._legacy is not None:
            return self._legacy.server_capabilities
        return self._target.server_capabilities if self._target is not None else {}

    async def offers(self, capability: str) -> bool:
        """Whether the server declared ``capability`` (``resources``, ``prompts``,
        ``completions``, ``logging``); opens the session when it is not."""
        await self._ensure_open()
        return capability in self.server_capabilities

    @staticmethod
    def _lost(error: Exception) -> bool:
        unsent = isinstance(error, RequestFailed) and error.unsent
        return isinstance(error, SessionLost) or unsent

    async def list_tools(self, meta: dict[str, Any] | None = None) -> list[types.Tool]:
        """The server's tools, from cache when fresh; ``meta`` goes with the requests."""
        if self._tools is not None and time.monotonic() - self._tools_at < self._tools_ttl:
            return self._tools
        with _errors_as_upstream():
            items = await self.list_all("tools/list", "tools", meta)
        tools = [types.Tool.model_validate(item) for item in items]
        self._tools, self._tools_at = tools, time.monotonic()
        self._tools_serial += 1
        return tools

    async def list_all(
        self, method: str, key: str, meta: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paginated listing (``resources/list`` → ``resources``), at
        most :data:`MAX_PAGES` pages; ``meta`` goes with the requests. A JSON-RPC error
        raises :class:`~mcp.shared.exceptions.MCPError`."""

        async def work() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                params: dict[str, Any] = {"cursor": cursor} if cursor else {}
                if meta:
                    params["_meta"] = meta
                result = await self._request(method, params)
                page = result.get(key)
                if not isinstance(page, list):
                    raise RequestFailed(f"The MCP server's {method} answer has no {key!r} list.")
                items.extend(item for item in page if isinstance(item, dict))
                cursor = result.get("nextCursor")
                if not isinstance(cursor, str) or not cursor:
                    break
            return items

        return await self._with_session(work)

    async def request(
        self, method: str, params: dict[str, Any], relay: Relay | None = None
    ) -> dict[str, Any]:
        """Any request's ``result`` (``resources/read``, ``prompts/get``,
        ``completion/complete``, ``logging/setLevel``...); a JSON-RPC error raises
        :class:`~mcp.shared.exceptions.MCPError`."""
        return await self._with_session(lambda: self._request(method, params, relay=relay))

    async def request_once(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """:meth:`request` on the session as it is now, never opening it again (for
        ``on_open``, which runs when it just opened)."""
        async with self._limit:
            return await self._request(method, params)

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
        relay: Relay | None = None,
    ) -> WireResult:
        """Call a tool; the server's result as it sent it (``isError`` for tool errors),
        checked for a tool result's shape (:mod:`dodo_jupyter.tool_results`). Server
        requests and log messages made while it runs go to ``relay``."""

        async def work() -> WireResult:
            params: dict[str, Any] = {"name": name, "arguments": arguments}
            if meta:
                params["_meta"] = meta
            return checked_tool_result(await self._request("tools/call", params, progress, relay))

        with _errors_as_upstream():
            return await self._with_session(work)

    async def _request(
        self,
        method: str,
        params: dict[str, Any],
        progress: ProgressFn | None = None,
        relay: Relay | None = None,
    ) -> WireResult:
        """A request's result over the open session, within the timeout."""
        try:
            async with asyncio.timeout(self._timeout):
                if self._legacy is not None:
                    return await self._legacy.request(
                        method,
                        params,
                        on_notification=self._notified(progress, relay),
                        progress=progress is not None,
                        relay=relay,
                    )
                client, target = self._client, self._target
                if client is None or target is None:
                    raise SessionLost("The session closed.")
                return await wire.send_request(
                    client,
                    target,
                    method,
                    params,
                    on_notification=self._notified(progress, relay),
                    progress=progress is not None,
                    http_timeouts=self._waiting,
                    relay=relay,
                )
        except TimeoutError:
            raise UpstreamTimeout(self._late(method)) from None

    def _late(self, step: str) -> str:
        """The message of a request that missed its deadline: the host and the step, never
        the URL's path or query."""
        return f"{host_shown(self.url)} did not answer within {self._timeout:g} s ({step})."

    def _notified(self, progress: ProgressFn | None, relay: Relay | None = None) -> OnNotification:
        """Handles the notifications of the session (and of one call's stream); see the
        module docstring."""

        async def notified(message: dict[str, Any]) -> None:
            method = message["method"]
            params = message.get("params")
            params = params if isinstance(params, dict) else {}
            if method == "notifications/tools/list_changed":
                self._tools = None
            if method == "notifications/progress":
                if progress is not None:
                    total = params.get("total")
                    await progress(
                        float(params.get("progress", 0)),
                        float(total) if total is not None else None,
                        params.get("message"),
                    )
            elif method in CALL_EVENTS and relay is not None:
                await relay.notify(method, params)
            elif (method in SESSION_EVENTS or method in CALL_EVENTS) and self._on_event:
                await self._on_event(message)

        return notified


@contextlib.contextmanager
def _errors_as_upstream() -> Iterator[None]:
    """A JSON-RPC error to a tool listing or call as an :class:`UpstreamError` (which the
    gateway shows as the server's state or a tool error), in the server's own words."""
    try:
        yield
    except MCPError as e:
        raise UpstreamError(
            f"The MCP server answered with an error: {e.message} (code {e.code})."
        ) from None
