"""The HTTP/1.1 connection pool under every request dodo sends (:class:`PooledTransport`).

It is an ``httpx2`` transport, so the MCP SDK's sessions, authlib's token requests and
dodo's own calls all go through one stack: ``httpx2.AsyncClient`` (auth flow, redirects,
timeouts) → the total deadline (:class:`~.deadline.DeadlineTransport`) → the SSRF guard
(:class:`~.guard.GuardedTransport`: URL rules, judged and pinned addresses, SNI) → this
pool → the socket. The bytes are framed and parsed by ``h11`` (a maintained HTTP/1.1
implementation: status lines, headers, ``Content-Length``, chunked bodies, heads bounded
by :data:`MAX_HEAD_BYTES`); this module owns only what a pool needs, with asyncio's
public protocol API:

* connections kept alive per pool (the guard keeps one pool per scheme, host and port),
  at most :data:`MAX_IDLE` idle; an idle connection the server closed or wrote on is
  dropped, never reused;
* a request's head and a small body leave in one write (on loopback each write wakes
  the server; measured by ``bench/gateway_overhead.py``);
* a ``text/event-stream`` answer to a POST that its reader leaves as soon as it has its
  result (the MCP SDK and dodo both do) is drained first, at most
  :data:`DRAIN_MAX_BYTES` within :data:`DRAIN_SECONDS`, so a stream that ends there
  keeps its connection;
* httpx2's connect, read and write timeouts apply to each step; failures are httpx2's
  exceptions (``ConnectError`` means nothing was sent) with the socket's or TLS error as
  their context; a connection reset is a ``ReadError`` (never taken for the end of an
  answer), and a server that closes before its answer is complete raises
  :class:`ClosedEarly` (:mod:`.failures` says what happened from these).

HTTP/2, proxies and upgrades are not spoken: dodo's upstreams are MCP servers and OAuth
endpoints, which all answer HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import h11
import httpx2

__all__ = [
    "CONNECT_TO",
    "DRAIN_MAX_BYTES",
    "DRAIN_SECONDS",
    "MAX_HEAD_BYTES",
    "MAX_IDLE",
    "ClosedEarly",
    "PooledTransport",
    "request_timeouts",
]

#: The request extension naming the address to connect to (the guard's judged one);
#: without it, the URL's host.
CONNECT_TO = "dodo_connect_to"
#: The largest response head (status line and headers) accepted, in bytes.
MAX_HEAD_BYTES = 64 * 1024
#: Idle connections kept per pool.
MAX_IDLE = 8
#: Most bytes read from the rest of a ``text/event-stream`` POST answer left early.
DRAIN_MAX_BYTES = 64 * 1024
#: Longest wait for the end of such an answer, in seconds.
DRAIN_SECONDS = 0.5
#: Request bytes gathered before a write (a larger body streams in pieces this size).
_WRITE_BYTES = 64 * 1024
#: Unread bytes at which the socket is no longer read until the body is consumed.
_READ_HIGH_WATER = 256 * 1024


class ClosedEarly(httpx2.RemoteProtocolError):
    """The server closed the connection before its answer was complete."""


class _ClosedEarly(h11.RemoteProtocolError):
    """(Inside the pool) the connection ended where the answer was not complete."""


class _Socket(asyncio.Protocol):
    """One connection's bytes as they arrive, and whether (and how) it ended."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self.ended = False
        #: Why the connection was lost, when it was not a clean close (a reset).
        self.error: OSError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > _READ_HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, OSError):
            self.error = exc
        self.ended = True
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, within: float | None) -> bytes:
        """What arrived since the last read; ``b""`` once the connection was closed.
        ``TimeoutError`` when nothing arrived ``within`` seconds; the ``OSError`` that
        ended the connection (a reset) once everything before it was read."""
        while not self._buffer and not self.ended:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = None if within is None else loop.call_later(within, _expire, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        if not self._buffer and self.error is not None:
            raise self.error
        data = bytes(self._buffer)
        self._buffer.clear()
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def write(self, data: bytes) -> None:
        if self.ended or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        self.transport.write(data)
        if self._writable is not None:
            await self._writable

    def reusable(self) -> bool:
        """Open, with nothing unread (an idle connection the server wrote on is broken)."""
        open_ = self.transport is not None and not self.transport.is_closing()
        return open_ and not self.ended and not self._buffer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Connection:
    """A socket and its HTTP/1.1 state machine."""

    __slots__ = ("h11", "key", "socket")

    def __init__(self, key: _Key, socket: _Socket) -> None:
        self.key = key
        self.socket = socket
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)

    async def next_event(self, read_timeout: float | None) -> Any:
        """The next event from the server, reading as needed (h11 errors pass through;
        :class:`_ClosedEarly` when the connection closed with the event incomplete)."""
        closed = False
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:
                if closed:
                    raise _ClosedEarly(
                        "the connection closed before the answer was complete"
                    ) from None
                raise
            if event is not h11.NEED_DATA:
                return event
            data = await self.socket.read(read_timeout)
            closed = not data
            self.h11.receive_data(data)

    def reusable(self) -> bool:
        unread, ended = self.h11.trailing_data
        return self.h11.our_state is h11.IDLE and not (unread or ended) and self.socket.reusable()


#: Where a connection leads: scheme, address, port and the name TLS verified.
_Key = tuple[str, str, int, str]


def _key_of(request: httpx2.Request) -> _Key:
    url = request.url
    https = url.scheme == "https"
    return (
        url.scheme,
        str(request.extensions.get(CONNECT_TO) or url.host),
        url.port or (443 if https else 80),
        str(request.extensions.get("sni_hostname") or url.host) if https else "",
    )


def request_timeouts(request: httpx2.Request) -> dict[str, float | None]:
    """httpx2's timeouts of a request by step (``connect``, ``read``, ``write``, ``pool``)."""
    timeout = request.extensions.get("timeout")
    return timeout if isinstance(timeout, dict) else {}


@contextlib.contextmanager
def _as_httpx(request: httpx2.Request, phase: str) -> Any:
    """h11's, the socket's and asyncio's errors as httpx2's (``phase``: connect, write or
    read), with messages that name no library."""
    try:
        yield
    except _ClosedEarly:
        raise ClosedEarly(
            "The server closed the connection before its answer was complete.", request=request
        ) from None
    except h11.RemoteProtocolError as e:
        raise httpx2.RemoteProtocolError(
            f"The server broke HTTP/1.1: {e}", request=request
        ) from None
    except h11.LocalProtocolError as e:
        raise httpx2.LocalProtocolError(f"The request is not valid HTTP/1.1: {e}") from None
    except TimeoutError:
        errors: dict[str, Callable[..., httpx2.TimeoutException]] = {
            "connect": httpx2.ConnectTimeout,
            "write": httpx2.WriteTimeout,
            "read": httpx2.ReadTimeout,
        }
        raise errors[phase](
            f"The server did not answer in time ({phase}).", request=request
        ) from None
    except OSError as e:
        kinds: dict[str, Callable[..., httpx2.TransportError]] = {
            "connect": httpx2.ConnectError,
            "write": httpx2.WriteError,
            "read": httpx2.ReadError,
        }
        reason = e.strerror or str(e) or "no reason given"
        raise kinds[phase](f"The connection failed ({phase}): {reason}", request=request) from None


class PooledTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over kept-alive connections to the address the guard judged (the
    :data:`CONNECT_TO` extension), TLS verified against the request's ``sni_hostname``
    extension (the original host name). One pool serves one scheme, host and port.

    Parameters
    ----------
    tls:
        The TLS context for https (certificates and host names verified).
    max_idle:
        Idle connections kept.
    """

    def __init__(self, tls: ssl.SSLContext, *, max_idle: int = MAX_IDLE) -> None:
        self._tls = tls
        self.max_idle = max_idle
        #: Idle connections by where they lead: scheme, address, port and TLS name.
        self._idle: dict[_Key, list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts = request_timeouts(request)
        key = _key_of(request)
        connection = self._idle_connection(key) or await self._connect(key, request, timeouts)
        try:
            with _as_httpx(request, "write"):
                async with asyncio.timeout(timeouts.get("write")):
                    await self._send(connection, request)
            with _as_httpx(request, "read"):
                head = await self._head(connection, timeouts.get("read"))
        except BaseException:
            connection.socket.close()
            raise
        drain = request.method == "POST" and _is_event_stream(head.headers)
        body = _Body(self, connection, request, timeouts.get("read"), drain=drain)
        return httpx2.Response(
            status_code=head.status_code,
            headers=head.headers,
            stream=body,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )

    def _idle_connection(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.reusable():
                return connection
            connection.socket.close()
        return None

    async def _connect(
        self, key: _Key, request: httpx2.Request, timeouts: dict[str, float | None]
    ) -> _Connection:
        scheme, address, port, server_hostname = key
        https = scheme == "https"
        loop = asyncio.get_running_loop()
        with _as_httpx(request, "connect"):
            async with asyncio.timeout(timeouts.get("connect")):
                _, socket = await loop.create_connection(
                    _Socket,
                    address,
                    port,
                    ssl=self._tls if https else None,
                    server_hostname=server_hostname if https else None,
                )
        return _Connection(key, socket)

    async def _send(self, connection: _Connection, request: httpx2.Request) -> None:
        """The head and the body, gathered into writes of up to :data:`_WRITE_BYTES`."""
        state = connection.h11
        target = request.url.raw_path
        pending = bytearray(
            state.send(h11.Request(method=request.method, target=target, headers=_raw(request)))
            or b""
        )
        assert isinstance(request.stream, httpx2.AsyncByteStream)
        async for chunk in request.stream:
            if chunk:
                pending += state.send(h11.Data(data=chunk)) or b""
            if len(pending) >= _WRITE_BYTES:
                await connection.socket.write(bytes(pending))
                pending.clear()
        pending += state.send(h11.EndOfMessage()) or b""
        await connection.socket.write(bytes(pending))

    async def _head(self, connection: _Connection, read_timeout: float | None) -> h11.Response:
        while True:
            event = await connection.next_event(read_timeout)
            if isinstance(event, h11.Response):
                names = {name for name, _ in event.headers}
                if b"content-length" in names and b"transfer-encoding" in names:
                    # RFC 9112 6.3: a sign of response splitting; handled as an error.
                    raise h11.RemoteProtocolError(
                        "the answer has both Content-Length and Transfer-Encoding"
                    )
                return event
            if isinstance(event, h11.ConnectionClosed):
                raise _ClosedEarly("the server closed the connection without answering")
            # InformationalResponse (1xx): the final answer follows.

    def release(self, connection: _Connection) -> None:
        """Keep a connection whose exchange ended cleanly, or close it."""
        state = connection.h11
        if state.our_state is h11.DONE and state.their_state is h11.DONE:
            state.start_next_cycle()
        idle = self._idle.setdefault(connection.key, [])
        if self._closed or len(idle) >= self.max_idle or not connection.reusable():
            connection.socket.close()
        else:
            idle.append(connection)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.socket.close()


def _raw(request: httpx2.Request) -> list[tuple[bytes, bytes]]:
    return list(request.headers.raw)


def _is_event_stream(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lower().startswith(b"text/event-stream")
    return False


class _Body(httpx2.AsyncByteStream):
    """A response body read from its connection as it is consumed; closing it hands the
    connection back (after a brief drain, see the module docstring) or closes it."""

    def __init__(
        self,
        pool: PooledTransport,
        connection: _Connection,
        request: httpx2.Request,
        read_timeout: float | None,
        *,
        drain: bool,
    ) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self._request = request
        self._read_timeout = read_timeout
        self._drain = drain
        self._ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            raise httpx2.StreamClosed()
        with _as_httpx(self._request, "read"):
            while not self._ended:
                event = await connection.next_event(self._read_timeout)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self._ended = True
                else:
                    raise _ClosedEarly("the server closed the connection mid-answer")

    async def _drained(self) -> bool:
        read = 0
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                async for chunk in self:
                    read += len(chunk)
                    if read > DRAIN_MAX_BYTES:
                        return False
        except (TimeoutError, httpx2.TransportError):
            return False
        return self._ended

    async def aclose(self) -> None:
        connection = self._connection
        if connection is None:
            return
        task = asyncio.current_task()
        leaving = task is not None and task.cancelling() > 0
        try:
            if not self._ended and self._drain and not leaving:
                await self._drained()
        finally:
            self._connection = None
            if self._ended:
                self._pool.release(connection)
            else:
                connection.socket.close()
