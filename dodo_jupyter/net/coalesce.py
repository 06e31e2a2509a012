"""Send each HTTP request in one write.

``httpcore2`` writes a request's head and its body with separate ``send`` calls. On
loopback and on busy hosts every ``send`` wakes the server and costs the sender the
receive path too; the gateway's upstream leg paid that twice per ``tools/call``
(``bench/gateway_overhead.py``, profiled). :class:`CoalescingBackend` wraps the
connection pool's network backend so that writes are held until the connection next
reads (the request is complete then: HTTP/1.1 clients send, then read) or until
:data:`FLUSH_BYTES` are pending, so large uploads still stream.
"""

# The ``timeout`` parameters are httpcore2's network interface, not a choice made here.
# ruff: noqa: ASYNC109

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2

__all__ = ["FLUSH_BYTES", "CoalescingBackend", "coalesce_writes"]

#: Pending bytes that are sent at once, without waiting for a read.
FLUSH_BYTES = 64 * 1024


class _CoalescingStream(httpcore2.AsyncNetworkStream):
    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._pending = bytearray()
        self._write_timeout: float | None = None
        #: Writes that reached the socket (tests count them).
        self.sends = 0

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
            self.sends += 1
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
        return _CoalescingStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class CoalescingBackend(httpcore2.AsyncNetworkBackend):
    """A network backend whose streams hold writes until the next read (see above)."""

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
        return _CoalescingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _CoalescingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def coalesce_writes(transport: Any) -> bool:
    """Make an ``httpx2.AsyncHTTPTransport`` send each request in one write; False (and
    nothing changed) when its connection pool is not laid out as expected."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(pool, httpcore2.AsyncConnectionPool) or backend is None:
        return False
    if not isinstance(backend, CoalescingBackend):
        pool._network_backend = CoalescingBackend(backend)
    return True
