"""A TCP (or TLS) server on 127.0.0.1 whose every byte a test writes: exact HTTP framing,
good or broken, and a count of the connections it accepted (:class:`ScriptedServer`)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
import pytest_asyncio


@dataclass
class Received:
    """One request as the server read it."""

    connection: int
    line: str
    headers: list[tuple[str, str]]
    body: bytes

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class Peer:
    """One accepted connection, as a server script sees it."""

    def __init__(
        self,
        server: ScriptedServer,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.number = number
        self.reader = reader
        self.writer = writer

    async def request(self) -> Received | None:
        """The next request on this connection; None once the client closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.server.eof.add(self.number)
            return None
        line, *lines = head[:-4].decode("latin-1").split("\r\n")
        headers = [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in lines)]
        lengths = [v for k, v in headers if k.lower() == "content-length"]
        body = await self.reader.readexactly(int(lengths[-1]) if lengths else 0)
        received = Received(self.number, line, headers, body)
        self.server.requests.append(received)
        return received

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def reset(self) -> None:
        """End the connection with a reset (RST), not a clean close."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def until_eof(self) -> None:
        """Wait (ignoring what comes) until the client closes this connection."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.server.eof.add(self.number)


Script = Callable[[Peer], Awaitable[None]]


@dataclass
class ScriptedServer:
    """A TCP (or TLS) server on 127.0.0.1 running ``script`` on every connection; the
    connection is closed when the script returns."""

    script: Script
    port: int = 0
    #: connections accepted so far (numbered from 1, in order)
    connections: int = 0
    requests: list[Received] = field(default_factory=list)
    #: the connections the client closed (as far as the scripts saw)
    eof: set[int] = field(default_factory=set)
    #: the TLS server names (SNI) clients asked for
    server_names: list[str | None] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str = "/mcp", *, host: str = "localhost", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self.script(Peer(self, self.connections, reader, writer))
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass  # (a cancelled script ends quietly: the server is stopping)
        finally:
            self._tasks.discard(task)
            writer.close()


class Serve(Protocol):
    async def __call__(
        self, script: Script, *, tls: ssl.SSLContext | None = None
    ) -> ScriptedServer: ...


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[ScriptedServer] = []

    async def start(script: Script, *, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        server = ScriptedServer(script)
        await server.start(tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def answer_each(answer: bytes) -> Script:
    """A script answering every request of a connection with ``answer``."""

    async def script(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(answer)

    return script


def answer_once_then_hold(answer: bytes) -> Script:
    """Answer the first request, then keep the connection open until the client closes."""

    async def script(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(answer)
            await peer.until_eof()

    return script


def first_connection(special: Script, then: Script) -> Script:
    """``special`` on the first connection, ``then`` on the others."""

    async def script(peer: Peer) -> None:
        await (special if peer.number == 1 else then)(peer)

    return script


def chunked(*chunks: bytes) -> bytes:
    """``chunks`` in chunked encoding, with the last (empty) chunk."""
    return b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"


async def until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    """Wait until ``condition()`` holds (what the other side of a socket saw takes a few
    turns of the event loop); fail after ``seconds``."""
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"still not true after {seconds} s: {condition}")
