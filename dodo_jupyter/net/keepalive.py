"""A small HTTP/1.1 client for the gateway's hot path: one POST and its answer.

Every ``tools/call`` the gateway forwards is a POST on an upstream MCP session. Through
httpx2 (client, auth flow, the SSRF guard's transport, httpcore2's pool, h11) the HTTP
layers took about 40% of the gateway's CPU per call (py-spy over
``bench/gateway_overhead.py``). :class:`KeepAliveClient` does only what that POST needs,
under the same guard rules (:mod:`.guard`):

* a connection is opened to an address :class:`~.guard.PinCache` judged (the policy's
  URL rules, every resolved address judged, the next address only when connecting
  fails), with TLS verified against the host name (SNI) by the same default context as
  the guarded httpx2 clients; one pool per (scheme, host, port);
* the request head and its ``Content-Length`` body are written in one piece;
* the response head is parsed (at most :data:`MAX_HEAD_BYTES`); the body is read by
  ``Content-Length``, in chunks (``Transfer-Encoding: chunked``), or to the end of the
  connection;
* a connection goes back to the pool only once its response was read to the end and
  neither side asked to close it; an idle pooled connection the server closed is
  dropped, not reused. A response closed before its end is drained first (at most
  :data:`~.guard.SSE_DRAIN_MAX_BYTES` within :data:`~.guard.SSE_DRAIN_SECONDS`, as the
  guard does for httpx2), so an MCP answer stream that ends right after its result keeps
  its connection.

No redirects, proxies, compression or cookies: an MCP endpoint answers its POSTs itself.
What this client does not do (refreshing credentials after a 401, resuming a stream with
``GET``) the caller does with the session's httpx2 client (:mod:`dodo_jupyter.upstream_rpc`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from .._version import __version__
from . import guard
from .guard import PinCache, default_tls
from .policy import OutboundPolicy

__all__ = ["MAX_HEAD_BYTES", "HTTPFailure", "InvalidHeader", "KeepAliveClient", "Response"]

#: The largest response head (status line and headers) accepted, in bytes.
MAX_HEAD_BYTES = 64 * 1024
_USER_AGENT = f"dodo-jupyter/{__version__}"
_READ = 64 * 1024
#: Request headers the client writes itself; a caller's are left out.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_UNSAFE = re.compile(r"[\r\n\0]")
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")


class HTTPFailure(Exception):
    """The exchange failed below HTTP (connection, framing). ``unsent``: the request
    never reached a server (no connection could be made), so it is safe to send again."""

    def __init__(self, message: str, *, unsent: bool = False) -> None:
        super().__init__(message)
        self.unsent = unsent


class InvalidHeader(HTTPFailure, ValueError):
    """A header the client refuses to send (line breaks, NUL, not Latin-1); nothing was
    sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, unsent=True)


class _Connection:
    __slots__ = ("key", "reader", "writer")

    def __init__(
        self, key: tuple[str, str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.key = key
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """Still open, with nothing unread: a closed or chatty idle connection is dropped.
        (The stream's transport reads in the background, so what the server sent while
        the connection was idle, its end included, is already in the reader.)"""
        unread = getattr(self.reader, "_buffer", b"")  # asyncio has no public accessor
        return not (self.writer.is_closing() or self.reader.at_eof() or unread)

    def close(self) -> None:
        self.writer.close()


class Response:
    """A response whose body is read on demand; see :meth:`KeepAliveClient.post`."""

    def __init__(
        self,
        client: KeepAliveClient,
        connection: _Connection,
        status_code: int,
        headers: dict[str, str],
        length: int | None,
        chunked: bool,
        *,
        close: bool,
    ) -> None:
        self._client = client
        self._connection: _Connection | None = connection
        self.status_code = status_code
        #: Header values by lowercase name (a repeated header's values joined by ", ").
        self.headers = headers
        self._left = length  # body bytes still to read (fixed length)
        self._chunked = chunked
        self._chunk_left = 0  # bytes of the current chunk still to read
        self._ended = length == 0
        self._keep = not close and (chunked or length is not None)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        while not self._ended:
            chunk = await self._read_some()
            if chunk:
                yield chunk

    async def aread(self, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        """The whole body; :class:`HTTPFailure` when it is larger than ``max_bytes``."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise HTTPFailure(f"The response body is larger than {max_bytes} bytes.")
            parts.append(chunk)
        return b"".join(parts)

    async def _read_some(self) -> bytes:
        assert self._connection is not None
        reader = self._connection.reader
        try:
            if self._chunked:
                return await self._read_chunk(reader)
            if self._left is None:  # to the end of the connection
                data = await reader.read(_READ)
                self._ended = not data
                return data
            data = await reader.read(min(self._left, _READ))
            if not data:
                raise HTTPFailure("The server closed the connection in the middle of a body.")
            self._left -= len(data)
            self._ended = self._left == 0
            return data
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            raise HTTPFailure(f"Reading the response failed ({type(e).__name__}).") from None

    async def _read_chunk(self, reader: asyncio.StreamReader) -> bytes:
        """The next piece of a chunked body (a chunk is read in pieces of at most
        :data:`_READ` bytes, so a huge chunk size costs no memory up front)."""
        if self._chunk_left == 0:
            line = await reader.readuntil(b"\r\n")
            digits = line.split(b";", 1)[0].strip().decode("latin-1")
            if not _HEX.fullmatch(digits):
                raise HTTPFailure("The server sent a malformed chunk size.")
            self._chunk_left = int(digits, 16)
            if self._chunk_left == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                self._ended = True
                return b""
        data = await reader.read(min(self._chunk_left, _READ))
        if not data:
            raise HTTPFailure("The server closed the connection in the middle of a chunk.")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and await reader.readexactly(2) != b"\r\n":
            raise HTTPFailure("The server sent a malformed chunk.")
        return data

    def discard(self) -> None:
        """Close the connection now, unread body and all."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def aclose(self) -> None:
        """Give the connection back (after draining what is left, briefly) or close it."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if not self._ended and self._keep:
            self._connection = connection
            try:
                drained = 0
                async with asyncio.timeout(guard.SSE_DRAIN_SECONDS):
                    async for chunk in self.aiter_bytes():
                        drained += len(chunk)
                        if drained > guard.SSE_DRAIN_MAX_BYTES:
                            break
            except (TimeoutError, HTTPFailure):
                pass
            finally:
                self._connection = None
        if self._ended and self._keep:
            self._client._release(connection)
        else:
            connection.close()


class KeepAliveClient:
    """POSTs over kept-alive HTTP/1.1 connections, under ``policy``; see the module doc.

    Parameters
    ----------
    policy:
        What may be contacted (the same policy as the session's httpx2 client).
    max_idle:
        Idle connections kept per origin.
    tls:
        The TLS context for https (tests, a private CA); default: the one the guarded
        httpx2 clients use (:func:`~.guard.default_tls`).
    """

    def __init__(
        self, policy: OutboundPolicy, *, max_idle: int = 8, tls: ssl.SSLContext | None = None
    ) -> None:
        self.policy = policy
        self.max_idle = max_idle
        self._tls = tls
        self._pins = PinCache(policy)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._paths: dict[str, str] = {}
        self._closed = False

    @contextlib.asynccontextmanager
    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> AsyncIterator[Response]:
        """POST ``body`` to ``url``; the response, whose body the block may read.

        Raises :class:`~dodo_jupyter.exceptions.OutboundRefused` when the guard refuses
        the URL or its addresses, :class:`HTTPFailure` when the exchange fails.
        """
        pinned = await self._pins.pin(url)
        target = pinned.target
        lines = [f"POST {self._path(url)} HTTP/1.1", f"Host: {target.host_header}"]
        agent = True
        for name, value in headers.items():
            if _UNSAFE.search(name) or _UNSAFE.search(value) or ":" in name or not name:
                raise InvalidHeader(f"The header {name!r} is not a valid HTTP header.")
            lowered = name.lower()
            if lowered in _OWN_HEADERS:  # the pinned Host and the framing are this client's
                continue
            agent = agent and lowered != "user-agent"
            lines.append(f"{name}: {value}")
        if agent:
            lines.append(f"User-Agent: {_USER_AGENT}")
        lines.append(f"Content-Length: {len(body)}")
        try:
            request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        except UnicodeEncodeError:
            raise InvalidHeader("A header has characters HTTP cannot carry.") from None
        key = (target.scheme, target.host, target.port)
        connection = self._idle_connection(key) or await self._connect(key, pinned)
        try:
            connection.writer.write(request)
            response = await self._read_head(connection)
        except BaseException as e:
            connection.close()
            if isinstance(e, OSError | asyncio.IncompleteReadError | asyncio.LimitOverrunError):
                raise HTTPFailure(
                    f"The connection failed before the server answered ({type(e).__name__})."
                ) from None
            raise
        try:
            yield response
        except BaseException:
            response.discard()  # the caller gave up or failed: no drain
            raise
        finally:
            await response.aclose()

    def _path(self, url: str) -> str:
        path = self._paths.get(url)
        if path is None:
            parts = urlsplit(url)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            if len(self._paths) < 256:
                self._paths[url] = path
        return path

    def _idle_connection(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def _connect(self, key: tuple[str, str, int], pinned: Any) -> _Connection:
        target = pinned.target
        tls = None
        if target.scheme == "https":
            tls = self._tls if self._tls is not None else default_tls("httpx2")
        for i, address in enumerate(pinned.addresses):
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        str(address),
                        target.port,
                        ssl=tls,
                        server_hostname=target.host if tls is not None else None,
                        limit=MAX_HEAD_BYTES,
                    ),
                    self.policy.timeout,
                )
            except (OSError, TimeoutError) as e:
                # Nothing was sent; the next judged address may answer.
                if i == len(pinned.addresses) - 1:
                    raise HTTPFailure(
                        f"Cannot connect to {target.display} ({type(e).__name__}: {e}).",
                        unsent=True,
                    ) from None
                continue
            return _Connection(key, reader, writer)
        raise AssertionError("unreachable: pin() returns at least one address")

    async def _read_head(self, connection: _Connection) -> Response:
        reader = connection.reader
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
            version, _, rest = status_line.partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise HTTPFailure("The server's answer is not HTTP/1.x.")
            status = int(code)
            if status >= 200 or status == 101:
                break  # 1xx interim answers are skipped
        headers: dict[str, str] = {}
        for line in header_lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise HTTPFailure("The server sent a malformed header line.")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length: int | None = None
        if not chunked and status not in (204, 304) and "content-length" in headers:
            if not _DIGITS.fullmatch(headers["content-length"]):
                raise HTTPFailure("The server sent a malformed Content-Length.")
            length = int(headers["content-length"])
        elif status in (204, 304):
            length = 0
        options = {o.strip().lower() for o in headers.get("connection", "").split(",")}
        close = "close" in options or (version == "HTTP/1.0" and "keep-alive" not in options)
        return Response(self, connection, status, headers, length, chunked, close=close)

    def _release(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.key, [])
        if self._closed or len(idle) >= self.max_idle or not connection.usable():
            connection.close()
        else:
            idle.append(connection)

    async def aclose(self) -> None:
        """Close every idle connection; later responses close theirs when done."""
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
