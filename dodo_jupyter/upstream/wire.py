"""MCP over streamable HTTP, the client side, on dodo's one HTTP stack: every exchange of
a streamable-HTTP session (2025-11-25) or of a stateless 2026-07-28 target goes through
this module (the messages themselves are :mod:`.messages`'; the deprecated HTTP+SSE
transport is :mod:`.legacy_sse`). The gateway uses it for its upstream servers, and the
kernel client (:mod:`dodo_jupyter.client`) for the gateway.

The MCP SDK's ``ClientSession`` routes every request through a writer task, a task per
POST, memory streams and a receive loop; measured on loopback it costs about twice the
client CPU per call of this module (1.4 ms against 0.7 ms, ``bench/gateway_overhead.py``
and a client-only loop), so dodo speaks the transport itself, entirely:

* :func:`initialize` opens a session (``initialize``, the session id from the answer's
  header, the negotiated version checked, ``notifications/initialized``);
* :func:`connect` asks first whether the server speaks 2026-07-28 (``server/discover``)
  and then sends each request on its own, with no session: the request names its
  protocol version, client and capabilities in ``_meta``, and its method and name in the
  ``Mcp-Method`` and ``Mcp-Name`` headers; a server that does not (any error answer, a
  discovery without 2026-07-28) gets the 2025-11-25 handshake instead, as the SDK's
  ``mode="auto"`` does. Such a request cannot be resumed and has no notices to send: a
  caller that gives up closes its connection, which is 2026-07-28's cancellation;
* :func:`send_request` POSTs one request with the session id and version through the
  session's guarded httpx2 client (whose auth flow refreshes the token once after a
  401) and reads the answer as JSON or as an event stream (httpx2's ``EventSource``,
  events bounded by :data:`~.messages.MAX_EVENT_BYTES`); notifications on the stream
  (progress, logging, ``tools/list_changed``) go to ``on_notification``; a server request
  on it (elicitation, sampling, roots) is relayed to the call's :class:`~.messages.Relay`
  in a task of its own, so the stream is read on while the caller answers, and the
  answer is POSTed back (:func:`~.messages.relayed_answer`); a stream that ends early
  after an event id is resumed with ``GET`` and ``Last-Event-ID`` (after the server's
  ``retry`` delay), at most twice; a caller that gives up makes it send ``notifications/cancelled``;
* :func:`listen` reads the session's ``GET`` stream (what the server sends outside a
  request), resuming it when it breaks;
* :func:`close` ends the session (``DELETE``).

Errors: :class:`~.messages.SessionLost` for a 404 on a session (the server forgot it;
reopen), :class:`~mcp.shared.exceptions.MCPError` for a JSON-RPC error,
:class:`~.messages.RequestFailed` for any other failed exchange (with the HTTP status
when there was one, and whether the request was never sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp.shared.exceptions import MCPError

from ..net.failures import describe_failure
from ..tool_results import WireResult
from .messages import (
    MAX_EVENT_BYTES,
    MODERN_VERSION,
    OnNotification,
    Relay,
    RequestFailed,
    SessionLost,
    cancelled_notice,
    in_background,
    initialize_params,
    modern_meta,
    negotiated_version,
    relayed_answer,
    reply_to,
    request_message,
    result_of,
    routing_headers,
)

__all__ = [
    "StreamableTarget",
    "close",
    "connect",
    "initialize",
    "listen",
    "send_request",
    "waiting",
]

log = logging.getLogger(__name__)

#: Resumptions of one request's stream (the SDK's ``MAX_RECONNECTION_ATTEMPTS``).
MAX_RESUMPTIONS = 2
#: Wait before resuming when the server gave no ``retry`` (milliseconds, as the SDK).
DEFAULT_RETRY_MS = 1000
#: Longest wait for the end of an event stream after its answer, in seconds.
STREAM_END_SECONDS = 0.5

#: How long the session's GET stream may stay silent before it is opened again.
LISTEN_IDLE_SECONDS = 300.0
#: Longest wait between attempts to open the GET stream again.
LISTEN_BACKOFF_MAX = 60.0


@dataclass(frozen=True)
class StreamableTarget:
    """An open session: where, which session id, which negotiated version (empty before
    ``initialize`` answered), and the capabilities the server declared. A stateless
    2026-07-28 target (:func:`connect`) has no session id, and ``meta``: the ``_meta``
    each of its requests carries."""

    url: str
    session_id: str | None
    protocol_version: str
    server_capabilities: dict[str, Any] = field(default_factory=dict, compare=False)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def stateless(self) -> bool:
        """Whether each request stands alone (2026-07-28): no session, no resumption."""
        return bool(self.meta)

    @functools.cached_property
    def http_url(self) -> httpx2.URL:
        """``url`` parsed once (httpx2 parses a string URL at every request)."""
        return httpx2.URL(self.url)

    def headers(self, accept: str = "application/json, text/event-stream") -> dict[str, str]:
        headers = {"Accept": accept}
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
        return headers


async def send_request(
    client: httpx2.AsyncClient,
    target: StreamableTarget,
    method: str,
    params: dict[str, Any],
    *,
    on_notification: OnNotification,
    progress: bool = False,
    http_timeouts: httpx2.Timeout | None = None,
    relay: Relay | None = None,
    headers: dict[str, str] | None = None,
) -> WireResult:
    """Send one request and return its ``result``; see the module docstring.

    With ``progress`` the request asks for progress notifications (its progress token is
    its request id); they reach ``on_notification`` with the other notifications.
    ``http_timeouts`` replace the client's for this request and its resumptions (see
    :func:`waiting`). Server requests on its stream go to ``relay``. ``headers`` are
    added to the POST (a 2026-07-28 ``tools/call``'s ``Mcp-Param-*`` headers).
    """
    result, _ = await _request(
        client, target, method, params, on_notification, progress, http_timeouts, relay, headers
    )
    return result


def waiting(client: httpx2.AsyncClient, seconds: float) -> httpx2.Timeout:
    """The client's timeouts, but waiting up to ``seconds`` for each read: a tool may
    work that long in silence before it answers (the caller bounds the whole request)."""
    return httpx2.Timeout(
        client.timeout.connect,
        read=seconds,
        write=client.timeout.write,
        pool=client.timeout.pool,
    )


async def initialize(
    client: httpx2.AsyncClient,
    url: str,
    client_version: str,
    capabilities: dict[str, Any] | None = None,
) -> StreamableTarget:
    """Open a session at ``url``, declaring the client ``capabilities``: the target its
    requests go to. A 404 or 405 answer (a server without streamable HTTP) is a
    :class:`RequestFailed` with that status."""
    params = initialize_params(client_version, capabilities)
    unopened = StreamableTarget(url, None, "")
    result, exchange = await _request(
        client, unopened, "initialize", params, _ignore_notification, False
    )
    declared = result.get("capabilities")
    target = StreamableTarget(
        url,
        exchange.session_id,
        negotiated_version(result),
        declared if isinstance(declared, dict) else {},
    )
    await _post(client, target, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    return target


async def connect(
    client: httpx2.AsyncClient,
    url: str,
    client_version: str,
    capabilities: dict[str, Any] | None = None,
) -> StreamableTarget:
    """A stateless 2026-07-28 target at ``url`` when the server speaks that version, else
    a 2025-11-25 session (:func:`initialize`); see the module docstring. A failure to
    reach the server raises :class:`RequestFailed` without trying the handshake."""
    meta = modern_meta(client_version, capabilities)
    probe = StreamableTarget(url, None, MODERN_VERSION, meta=meta)
    result: dict[str, Any]
    try:
        result = await send_request(
            client, probe, "server/discover", {}, on_notification=_ignore_notification
        )
    except MCPError:
        result = {}
    except RequestFailed as e:
        if e.status is None:
            raise
        result = {}
    versions = result.get("supportedVersions")
    if isinstance(versions, list) and MODERN_VERSION in versions:
        declared = result.get("capabilities")
        return StreamableTarget(
            url, None, MODERN_VERSION, declared if isinstance(declared, dict) else {}, meta
        )
    return await initialize(client, url, client_version, capabilities)


async def close(client: httpx2.AsyncClient, target: StreamableTarget) -> None:
    """End the session at the server (``DELETE``; a server that does not allow it, or is
    gone, is fine)."""
    if target.session_id is None:
        return
    with contextlib.suppress(httpx2.HTTPError):
        response = await client.delete(target.http_url, headers=target.headers())
        await response.aclose()


async def listen(
    client: httpx2.AsyncClient,
    target: StreamableTarget,
    on_notification: OnNotification,
    opened: asyncio.Event | None = None,
) -> None:
    """Read what the server sends outside a request on the session's ``GET`` stream,
    until cancelled: notifications go to ``on_notification``, server requests are
    answered. A stream that breaks or ends is opened again (resumed after its last event
    id), after the server's ``retry`` delay or a backoff of up to
    :data:`LISTEN_BACKOFF_MAX` seconds; returns when the server offers no stream (405)
    or no longer knows the session (404). ``opened`` is set once the first attempt was
    answered (or failed): a server sends nothing on a stream that is not open yet."""
    last_event_id: str | None = None
    wait = DEFAULT_RETRY_MS / 1000.0
    timeout = httpx2.Timeout(client.timeout.connect, read=LISTEN_IDLE_SECONDS)
    while True:
        headers = target.headers(accept="text/event-stream")
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        try:
            async with client.stream(
                "GET", target.http_url, headers=headers, timeout=timeout
            ) as response:
                if opened is not None:
                    opened.set()
                if response.status_code in (404, 405):
                    return
                if response.status_code == 200:
                    async for event in httpx2.EventSource(response, max_event_size=MAX_EVENT_BYTES):
                        wait = DEFAULT_RETRY_MS / 1000.0  # the stream works: no backoff
                        if event.id:
                            last_event_id = event.id
                        if event.retry is not None:
                            wait = event.retry / 1000.0
                        if event.event == "message" and event.data:
                            await _on_server_message(client, target, event.data, on_notification)
        except (httpx2.HTTPError, ValueError) as e:
            log.debug("dodo: an upstream GET stream ended: %s", type(e).__name__)
        finally:
            if opened is not None:
                opened.set()
        await asyncio.sleep(wait)
        wait = min(wait * 2, LISTEN_BACKOFF_MAX)


async def _on_server_message(
    client: httpx2.AsyncClient, target: StreamableTarget, data: str, on_notification: OnNotification
) -> None:
    message = json.loads(data)
    if isinstance(message, dict) and isinstance(message.get("method"), str):
        if "id" in message:  # outside any call: nobody to relay it to
            await _post(client, target, reply_to(message))
        else:
            await on_notification(message)


async def _post(
    client: httpx2.AsyncClient, target: StreamableTarget, message: dict[str, Any]
) -> None:
    """POST a notification or a reply (the server answers 202 without a body)."""
    headers = target.headers()
    headers["Content-Type"] = "application/json"
    body = json.dumps(message, separators=(",", ":")).encode()
    response = await client.post(target.http_url, content=body, headers=headers)
    await response.aclose()
    if response.status_code == 404 and target.session_id is not None:
        raise SessionLost("The MCP server no longer knows this session (HTTP 404).")


async def _ignore_notification(message: dict[str, Any]) -> None:
    return None


async def _request(
    client: httpx2.AsyncClient,
    target: StreamableTarget,
    method: str,
    params: dict[str, Any],
    on_notification: OnNotification,
    progress: bool,
    http_timeouts: httpx2.Timeout | None = None,
    relay: Relay | None = None,
    extra_headers: dict[str, str] | None = None,
) -> tuple[WireResult, _Exchange]:
    if target.stateless:
        params = {**params, "_meta": {**target.meta, **(params.get("_meta") or {})}}
    message = request_message(method, params, progress)
    body = json.dumps(message, separators=(",", ":")).encode()
    headers = target.headers()
    headers["Content-Type"] = "application/json"
    if target.stateless:
        headers.update(routing_headers(method, params))
    if extra_headers:
        headers.update(extra_headers)
    exchange = _Exchange(client, target, message["id"], on_notification, http_timeouts, relay)
    try:
        async with client.stream(
            "POST", target.http_url, content=body, headers=headers, timeout=exchange.timeout
        ) as response:
            answer = await exchange.read(response)
        for _ in range(MAX_RESUMPTIONS):
            if answer is not None or exchange.last_event_id is None or target.stateless:
                break
            await asyncio.sleep(exchange.retry_ms / 1000.0)
            answer = await exchange.resume()
    except BaseException as e:
        if isinstance(e, asyncio.CancelledError | TimeoutError):
            exchange.cancel_upstream()
        if isinstance(e, httpx2.HTTPError):
            raise RequestFailed.of_transport(str(target.http_url), e) from None
        if isinstance(e, ValueError):  # json.JSONDecodeError
            raise RequestFailed("The MCP server sent malformed JSON.") from None
        raise
    finally:
        exchange.end_relays()
    if answer is None:
        raise RequestFailed("The MCP server's stream ended without an answer.")
    return result_of(answer, exchange.answer_size), exchange


class _Exchange:
    """Reads the answers to one request: the POST's, then any resumed stream's."""

    def __init__(
        self,
        client: httpx2.AsyncClient,
        target: StreamableTarget,
        request_id: str,
        on_notification: OnNotification,
        http_timeouts: httpx2.Timeout | None = None,
        relay: Relay | None = None,
    ) -> None:
        self._client = client
        self._relay = relay
        #: Server requests being relayed (each answered in its own task).
        self._relays: set[asyncio.Task[None]] = set()
        #: This request's timeouts (the client's when None).
        self.timeout = http_timeouts or client.timeout
        self._target = target
        self._id = request_id
        self._on_notification = on_notification
        self.last_event_id: str | None = None
        self.retry_ms = DEFAULT_RETRY_MS
        #: The session id the server gave in its answer (to ``initialize``).
        self.session_id: str | None = None
        #: The bytes of the answer's JSON, once it came.
        self.answer_size: int | None = None

    async def read(self, response: httpx2.Response) -> dict[str, Any] | None:
        status = response.status_code
        self.session_id = self.session_id or response.headers.get("mcp-session-id")
        if status == 404 and self._target.session_id is not None:
            raise SessionLost("The MCP server no longer knows this session (HTTP 404).")
        if status >= 400:
            # A JSON-RPC error may come at a non-2xx status (400 invalid params, ...).
            answer = await self._error_body(response)
            if answer is not None:
                return answer
        if status != 200:
            raise RequestFailed(f"The MCP server answered HTTP {status}.", status)
        content_type = response.headers.get("content-type", "").lower()
        if content_type.startswith("application/json"):
            body = await response.aread()
            self.answer_size = len(body)
            return self._answer(json.loads(body))
        if content_type.startswith("text/event-stream"):
            return await self._read_events(response)
        raise RequestFailed(f"The MCP server answered with content type {content_type!r}.")

    async def _error_body(self, response: httpx2.Response) -> dict[str, Any] | None:
        if not response.headers.get("content-type", "").lower().startswith("application/json"):
            return None
        try:
            answer = self._answer(json.loads(await response.aread()), any_id=True)
        except ValueError:
            return None
        return answer if answer is not None and isinstance(answer.get("error"), dict) else None

    def _answer(self, message: Any, *, any_id: bool = False) -> dict[str, Any] | None:
        if not isinstance(message, dict):
            return None
        if ("result" in message or "error" in message) and (
            any_id or message.get("id") == self._id
        ):
            return message
        return None

    async def _read_events(self, response: httpx2.Response) -> dict[str, Any] | None:
        """The answer from an event stream, handling what comes before it. The stream is
        then read to its end (the server ends it after the answer), for at most
        :data:`STREAM_END_SECONDS`: a stream read to its end leaves no half-read reader
        behind and keeps its connection for the next request."""
        answer: dict[str, Any] | None = None
        rest = asyncio.timeout(None)
        try:
            async with rest:
                async for event in httpx2.EventSource(response, max_event_size=MAX_EVENT_BYTES):
                    if event.id:
                        self.last_event_id = event.id
                    if event.retry is not None:
                        self.retry_ms = event.retry
                    if answer is not None or event.event != "message" or not event.data:
                        continue
                    answer = await self._on_event(json.loads(event.data))
                    if answer is not None:
                        self.answer_size = len(event.data.encode())
                        rest.reschedule(asyncio.get_running_loop().time() + STREAM_END_SECONDS)
        except TimeoutError:
            if answer is None or not rest.expired():
                raise
        except httpx2.SSEError as e:
            if answer is None:
                raise RequestFailed(
                    f"The MCP server's event stream failed: {describe_failure(e)}."
                ) from None
        except (httpx2.ReadError, httpx2.RemoteProtocolError) as e:
            # The stream broke; resumable when the server gave event ids.
            log.debug("dodo: upstream stream ended early: %s", type(e).__name__)
        return answer

    async def _on_event(self, message: Any) -> dict[str, Any] | None:
        """The answer, when ``message`` is it; otherwise handles the message."""
        found = self._answer(message)
        if found is None and isinstance(message, dict) and isinstance(message.get("method"), str):
            if "id" in message:
                task = asyncio.create_task(self._relay_request(message))
                self._relays.add(task)
                task.add_done_callback(self._relays.discard)
            else:
                await self._on_notification(message)
        return found

    async def _relay_request(self, message: dict[str, Any]) -> None:
        """Answer a server request (asking the relay); a failed POST only ends this."""
        try:
            await _post(self._client, self._target, await relayed_answer(message, self._relay))
        except (httpx2.HTTPError, SessionLost) as e:
            log.debug("dodo: an answer to the MCP server was not delivered: %s", type(e).__name__)

    def end_relays(self) -> None:
        """The request is over: stop relaying its server requests."""
        for task in self._relays:
            task.cancel()

    async def resume(self) -> dict[str, Any] | None:
        headers = self._target.headers(accept="text/event-stream")
        assert self.last_event_id is not None
        headers["Last-Event-ID"] = self.last_event_id
        async with self._client.stream(
            "GET", self._target.http_url, headers=headers, timeout=self.timeout
        ) as response:
            return await self.read(response)

    def cancel_upstream(self) -> None:
        """Tell the server the caller gave up (best effort, in the background); a
        stateless request's closed connection told it already."""
        if not self._target.stateless:
            in_background(_post(self._client, self._target, cancelled_notice(self._id)))
