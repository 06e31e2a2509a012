"""The deprecated HTTP+SSE transport (protocol 2024-11-05), the client side, for catalog
entries whose ``transport`` is ``sse`` and whose server does not speak streamable HTTP.

It is a different transport for the same messages (:mod:`.messages`): the session is a
long-lived ``GET`` event stream whose first event (``endpoint``) names where to POST;
every request, notification and answer to a server request is POSTed there (the server
answers ``202``), and everything the server says (answers, notifications, its own
requests) comes back on the stream. :class:`LegacySSESession` reads the stream in one
task and hands each answer to the request waiting for its id; a progress notification
goes to the request whose token it carries, any other notification to the session's
handler. A server request is relayed to the :class:`~.messages.Relay` of the one call
in flight that has one (the transport does not say which call a request belongs to, so
with several such calls in flight it is answered "method not found" rather than guessed).
When the stream ends, every waiting request fails with :class:`~.messages.SessionLost`
(the session is opened again on the next use).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2

from ..tool_results import WireResult
from .messages import (
    MAX_EVENT_BYTES,
    OnNotification,
    Relay,
    RequestFailed,
    SessionLost,
    cancelled_notice,
    in_background,
    initialize_params,
    negotiated_version,
    relayed_answer,
    request_message,
    result_of,
)

__all__ = ["LegacySSESession"]

log = logging.getLogger(__name__)

#: A request waiting for its answer: the answer, its notification handler, its relay.
_Waiting = tuple[asyncio.Future[dict[str, Any]], OnNotification, Relay | None]

#: How long the event stream may stay silent before the session counts as lost.
STREAM_IDLE_SECONDS = 300.0


class LegacySSESession:
    """An HTTP+SSE session over ``client`` (a guarded httpx2 client, which this session
    owns and closes): :meth:`open`, :meth:`request`, :meth:`close`."""

    def __init__(
        self, key: str, url: str, client: httpx2.AsyncClient, on_notification: OnNotification
    ) -> None:
        self.key = key
        self.url = url
        self._client = client
        self._on_notification = on_notification
        #: Where messages are POSTed, from the stream's ``endpoint`` event.
        self._endpoint: asyncio.Future[httpx2.URL] = asyncio.get_running_loop().create_future()
        #: Requests waiting for their answer: id -> (answer, the request's handler, relay).
        self._waiting: dict[str, _Waiting] = {}
        #: Server requests being relayed (each answered in its own task).
        self._relays: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self.protocol_version = ""
        self.server_capabilities: dict[str, Any] = {}

    async def open(self, client_version: str, capabilities: dict[str, Any] | None = None) -> None:
        """Open the event stream, learn the endpoint, then ``initialize`` declaring the
        client ``capabilities`` (the caller bounds the time)."""
        self._reader = asyncio.create_task(self._read(), name=f"dodo-upstream-sse-{self.key}")
        result = await self.request("initialize", initialize_params(client_version, capabilities))
        self.protocol_version = negotiated_version(result)
        declared = result.get("capabilities")
        self.server_capabilities = declared if isinstance(declared, dict) else {}
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def alive(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def request(
        self,
        method: str,
        params: dict[str, Any],
        *,
        on_notification: OnNotification | None = None,
        progress: bool = False,
        relay: Relay | None = None,
    ) -> WireResult:
        """Send one request and return its ``result`` (see :func:`.wire.send_request`);
        progress notifications for it go to ``on_notification``, server requests made
        while it runs to ``relay`` (see the module docstring)."""
        message = request_message(method, params, progress)
        request_id = message["id"]
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = (answer, on_notification or self._on_notification, relay)
        try:
            await self._post(message)
            return result_of(await answer)
        except (asyncio.CancelledError, TimeoutError):
            if self.alive() and self._endpoint.done():
                in_background(self._post(cancelled_notice(request_id)))
            raise
        finally:
            self._waiting.pop(request_id, None)

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        for task in self._relays:
            task.cancel()
        self._fail_waiting(SessionLost("The session closed."))
        await self._client.aclose()

    # -- the stream ---------------------------------------------------------------------

    async def _read(self) -> None:
        timeout = httpx2.Timeout(self._client.timeout.connect, read=STREAM_IDLE_SECONDS)
        ended: Exception = SessionLost("The MCP server closed its event stream.")
        try:
            async with self._client.stream(
                "GET", self.url, headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    ended = RequestFailed(
                        f"The MCP server answered HTTP {response.status_code} to the event "
                        "stream's GET.",
                        response.status_code,
                    )
                    return
                async for event in httpx2.EventSource(response, max_event_size=MAX_EVENT_BYTES):
                    if event.event == "endpoint":
                        self._found_endpoint(event.data)
                    elif event.event == "message" and event.data:
                        await self._dispatch(json.loads(event.data))
        except httpx2.HTTPError as e:
            ended = RequestFailed.of_transport(self.url, e)
        except (ValueError, RequestFailed) as e:  # malformed JSON, a foreign endpoint
            ended = RequestFailed(str(e) if isinstance(e, RequestFailed) else "Malformed JSON.")
        finally:
            if not self._endpoint.done():
                self._endpoint.set_exception(ended)
                self._endpoint.exception()  # retrieved: no "never retrieved" warning
            self._fail_waiting(ended)
            log.debug("dodo: upstream SSE session %s ended: %s", self.key, ended)

    def _found_endpoint(self, data: str) -> None:
        """Take the endpoint the server named: on the stream's own origin only."""
        endpoint = urljoin(self.url, data.strip())
        here, there = urlsplit(self.url), urlsplit(endpoint)
        if (here.scheme, here.netloc) != (there.scheme, there.netloc):
            raise RequestFailed(
                "The MCP server named a message endpoint on another origin; dodo refuses it."
            )
        if not self._endpoint.done():
            self._endpoint.set_result(httpx2.URL(endpoint))

    async def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        method = message.get("method")
        if isinstance(method, str):
            if "id" in message:
                task = asyncio.create_task(self._relay_request(message))
                self._relays.add(task)
                task.add_done_callback(self._relays.discard)
                return
            handler = self._on_notification
            token = (message.get("params") or {}).get("progressToken")
            if method == "notifications/progress" and isinstance(token, str):
                handler = self._waiting.get(token, (None, handler, None))[1]
            elif method != "notifications/progress":
                handler = self._relaying_handler() or handler
            try:
                await handler(message)
            except Exception as e:  # a handler's failure must not end the session
                log.debug("dodo: a notification handler failed: %s", type(e).__name__)
            return
        waiting = self._waiting.get(str(message.get("id")))
        if waiting is not None and not waiting[0].done():
            waiting[0].set_result(message)

    def _relaying(self) -> _Waiting | None:
        """The one call in flight that relays to its caller, if exactly one does."""
        relaying = [waiting for waiting in self._waiting.values() if waiting[2] is not None]
        return relaying[0] if len(relaying) == 1 else None

    def _relaying_handler(self) -> OnNotification | None:
        waiting = self._relaying()
        return waiting[1] if waiting is not None else None

    async def _relay_request(self, message: dict[str, Any]) -> None:
        waiting = self._relaying()
        try:
            await self._post(await relayed_answer(message, waiting[2] if waiting else None))
        except (RequestFailed, SessionLost) as e:
            log.debug("dodo: an answer to the MCP server was not delivered: %s", e)

    def _fail_waiting(self, error: Exception) -> None:
        for answer, _, _ in self._waiting.values():
            if not answer.done():
                answer.set_exception(error)

    async def _post(self, message: dict[str, Any]) -> None:
        endpoint = await asyncio.shield(self._endpoint)
        body = json.dumps(message, separators=(",", ":")).encode()
        try:
            response = await self._client.post(
                endpoint, content=body, headers={"Content-Type": "application/json"}
            )
            await response.aclose()
        except httpx2.HTTPError as e:
            raise RequestFailed.of_transport(self.url, e) from None
        if response.status_code == 404:
            raise SessionLost("The MCP server no longer knows this session (HTTP 404).")
        if response.status_code >= 400:
            raise RequestFailed(
                f"The MCP server answered HTTP {response.status_code}.", response.status_code
            )
