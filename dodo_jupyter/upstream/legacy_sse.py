"""The deprecated HTTP+SSE transport (protocol 2024-11-05), the client side, for catalog
entries whose ``transport`` is ``sse`` and whose server does not speak streamable HTTP.

It is a different transport for the same messages (:mod:`.messages`): the session is a
long-lived ``GET`` event stream whose first event (``endpoint``) names where to POST;
every request, notification and answer to a server request is POSTed there (the server
answers ``202``), and everything the server says (answers, notifications, its own
requests) comes back on the stream. :class:`LegacySSESession` reads the stream in one
task and hands each answer to the request waiting for its id; a progress notification
goes to the request whose token it carries, any other notification to the session's
handler. When the stream ends, every waiting request fails with
:class:`~.messages.SessionLost` (the session is opened again on the next use).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2

from .messages import (
    MAX_EVENT_BYTES,
    OnNotification,
    RequestFailed,
    SessionLost,
    cancelled_notice,
    in_background,
    initialize_params,
    negotiated_version,
    reply_to,
    request_message,
    result_of,
)

__all__ = ["LegacySSESession"]

log = logging.getLogger(__name__)

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
        #: Requests waiting for their answer: id -> (answer, the request's handler).
        self._waiting: dict[str, tuple[asyncio.Future[dict[str, Any]], OnNotification]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.protocol_version = ""

    async def open(self, client_version: str) -> None:
        """Open the event stream, learn the endpoint, then ``initialize`` (the caller
        bounds the time)."""
        self._reader = asyncio.create_task(self._read(), name=f"dodo-upstream-sse-{self.key}")
        result = await self.request("initialize", initialize_params(client_version))
        self.protocol_version = negotiated_version(result)
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
    ) -> dict[str, Any]:
        """Send one request and return its ``result`` (see :func:`.wire.send_request`);
        progress notifications for it go to ``on_notification``."""
        message = request_message(method, params, progress)
        request_id = message["id"]
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = (answer, on_notification or self._on_notification)
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
            unsent = isinstance(e, httpx2.ConnectError | httpx2.ConnectTimeout)
            ended = RequestFailed(f"{type(e).__name__}: {e}", unsent=unsent)
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
                in_background(self._post(reply_to(message)))
                return
            handler = self._on_notification
            token = (message.get("params") or {}).get("progressToken")
            if method == "notifications/progress" and isinstance(token, str):
                handler = self._waiting.get(token, (None, handler))[1]
            try:
                await handler(message)
            except Exception as e:  # a handler's failure must not end the session
                log.debug("dodo: a notification handler failed: %s", type(e).__name__)
            return
        waiting = self._waiting.get(str(message.get("id")))
        if waiting is not None and not waiting[0].done():
            waiting[0].set_result(message)

    def _fail_waiting(self, error: Exception) -> None:
        for answer, _ in self._waiting.values():
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
            unsent = isinstance(e, httpx2.ConnectError | httpx2.ConnectTimeout)
            raise RequestFailed(f"{type(e).__name__}: {e}", unsent=unsent) from None
        if response.status_code == 404:
            raise SessionLost("The MCP server no longer knows this session (HTTP 404).")
        if response.status_code >= 400:
            raise RequestFailed(
                f"The MCP server answered HTTP {response.status_code}.", response.status_code
            )
