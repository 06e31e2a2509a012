"""Network streams for dodo's ``httpx2`` pools that make fewer system calls.

Profiling the gateway (``bench/gateway_overhead.py``, ``bench/fanout.py``) showed two
per-request costs in ``httpcore2``'s streams, both system calls, which are dear on
small virtual machines:

* a request's head and body leave in separate ``send`` calls, and on loopback each one
  wakes the server and makes the sender run the receive path too. :class:`LeanBackend`'s
  streams hold writes until the connection next reads (the request is complete then:
  HTTP/1.1 clients send, then read) or until :data:`FLUSH_BYTES` are pending, so large
  uploads still stream;
* before each request the pool asks every idle connection whether its socket is
  readable (closed by the server), and anyio answers that by building all the socket's
  attributes, ``getpeername`` included. These streams keep the socket and only poll it.
"""

# The ``timeout`` parameters are httpcore2's network interface, not a choice made here.
# ruff: noqa: ASYNC109

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2

__all__ = ["FLUSH_BYTES", "LeanBackend", "lean_streams"]

#: Pending bytes that are sent at once, without waiting for a read.
FLUSH_BYTES = 64 * 1024


class _LeanStream(httpcore2.AsyncNetworkStream):
    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")
        self._pending = bytearray()
        self._write_timeout: float | None = None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        self._pending += buffer
        self._write_timeout = timeout
        if len(self._pending) >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            await self._inner.write(data, self._write_timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._flush()
        return await self._inner.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._pending.clear()
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        await self._flush()
        tls = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _LeanStream(tls)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


def _readable(sock: socket.socket) -> bool:
    """Whether a read would return at once (data, or the end of a closed connection); a
    socket without a descriptor counts as readable, as in httpcore."""
    fd = sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class LeanBackend(httpcore2.AsyncNetworkBackend):
    """A network backend whose streams make fewer system calls (see above)."""

    def __init__(self, inner: httpcore2.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _LeanStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _LeanStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def lean_streams(transport: Any) -> bool:
    """Give an ``httpx2.AsyncHTTPTransport``'s pool :class:`LeanBackend` streams; False
    (and nothing changed) when the pool is not laid out as expected."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(pool, httpcore2.AsyncConnectionPool) or backend is None:
        return False
    if not isinstance(backend, LeanBackend):
        pool._network_backend = LeanBackend(backend)
    return True
