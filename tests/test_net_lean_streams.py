"""Requests leave in one write (:mod:`dodo_jupyter.net.lean_streams`), large bodies still
stream, and answers are unchanged: against a real server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpcore2
import httpx2
import pytest

from dodo_jupyter.net.lean_streams import FLUSH_BYTES, lean_streams

from .mcp_peers import INITIALIZE, MCP_HEADERS, RunningServer, running_mcp_server

pytestmark = pytest.mark.asyncio


class CountingStream(httpcore2.AsyncNetworkStream):
    def __init__(self, inner: httpcore2.AsyncNetworkStream, counts: list[int]) -> None:
        self._inner = inner
        self._counts = counts

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._counts.append(len(buffer))
        await self._inner.write(buffer, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._inner.read(max_bytes, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class CountingBackend(httpcore2.AsyncNetworkBackend):
    """Records the size of every write that reaches a socket."""

    def __init__(self) -> None:
        self.inner = httpcore2.AnyIOBackend()
        self.writes: list[int] = []

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        return CountingStream(await self.inner.connect_tcp(*args, **kwargs), self.writes)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with running_mcp_server() as running:
        yield running


def counted_transport() -> tuple[httpx2.AsyncHTTPTransport, CountingBackend]:
    transport = httpx2.AsyncHTTPTransport()
    backend = CountingBackend()
    transport._pool._network_backend = backend  # type: ignore[attr-defined]
    assert lean_streams(transport), "httpx2's transport layout changed: update lean_streams"
    return transport, backend


async def test_a_request_goes_out_in_one_write(server: RunningServer) -> None:
    transport, backend = counted_transport()
    async with httpx2.AsyncClient(transport=transport) as client:
        for _ in range(3):
            response = await client.post(server.url, json=INITIALIZE, headers=MCP_HEADERS)
            assert response.status_code == 200 and "serverInfo" in response.text
    assert len(backend.writes) == 3  # head and body together, once per request


async def test_large_bodies_are_sent_as_they_come(server: RunningServer) -> None:
    transport, backend = counted_transport()
    chunk = b"x" * FLUSH_BYTES

    async def body() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield chunk

    async with httpx2.AsyncClient(transport=transport) as client:
        response = await client.post(server.url, content=body(), headers=MCP_HEADERS)
    assert response.status_code >= 400  # not JSON-RPC: the server read it all and refused
    # Each chunk leaves when it comes (the head with the first), not all at the end.
    assert len(backend.writes) >= 3 and max(backend.writes) < 2 * FLUSH_BYTES


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    """The pool's idle check (a readable socket means the server hung up) still works."""
    connections = 0

    async def answer_once_then_hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()

    server = await asyncio.start_server(answer_once_then_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, backend = counted_transport()
    try:
        async with httpx2.AsyncClient(transport=transport) as client:
            for _ in range(3):
                response = await client.get(f"http://127.0.0.1:{port}/")
                assert response.text == "ok"
                await asyncio.sleep(0.3)  # the server has hung up meanwhile
    finally:
        server.close()
        await server.wait_closed()
    assert connections == 3
