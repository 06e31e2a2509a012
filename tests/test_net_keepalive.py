"""The gateway's keep-alive POST client (:mod:`dodo_jupyter.net.keepalive`).

Every test talks to a real server on 127.0.0.1 whose answer it scripts byte by byte
(:class:`ScriptedServer`), so the framing is exact and the accepted connections can be
counted. Nothing is ever sent anywhere but loopback: the names a test uses (``localhost``,
``mcp.test``) reach 127.0.0.1 through a :class:`StaticResolver`, and the addresses the
guard must refuse (10.0.0.1, ...) are refused before any connection is made.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
import pytest_asyncio

from dodo_jupyter.exceptions import OutboundRefused
from dodo_jupyter.net import guard
from dodo_jupyter.net.keepalive import (
    MAX_HEAD_BYTES,
    HTTPFailure,
    InvalidHeader,
    KeepAliveClient,
    Response,
)
from dodo_jupyter.net.policy import OutboundPolicy, StaticResolver

from .test_net_guard import make_certificate, make_policy

pytestmark = pytest.mark.asyncio

#: A test that hangs (a client waiting for bytes that never come) fails after this long.
TEST_SECONDS = 10.0


@pytest_asyncio.fixture(autouse=True)
async def watchdog() -> AsyncIterator[None]:
    """Fail a hung test instead of blocking the run: once its time is up, every task of
    the test's event loop is cancelled (the test's own task included)."""
    loop = asyncio.get_running_loop()
    expired: list[bool] = []

    def expire() -> None:
        expired.append(True)
        for task in asyncio.all_tasks(loop):
            task.cancel()

    timer = loop.call_later(TEST_SECONDS, expire)
    yield
    timer.cancel()
    if expired:
        pytest.fail(f"the test did not finish within {TEST_SECONDS} s")


# -- a server whose every byte the test writes --------------------------------------------


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


class MakeClient(Protocol):
    def __call__(
        self,
        server: ScriptedServer,
        *,
        resolver: StaticResolver | None = None,
        hosts: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> KeepAliveClient: ...


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Clients allowed to reach ``localhost:<port>`` (127.0.0.1), closed after the test."""
    made: list[KeepAliveClient] = []

    def make(
        server: ScriptedServer,
        *,
        resolver: StaticResolver | None = None,
        hosts: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> KeepAliveClient:
        policy = make_policy(
            *(hosts or (f"localhost:{server.port}",)),
            loopback=True,
            resolver=resolver or StaticResolver({"localhost": ["127.0.0.1"]}),
            timeout=kwargs.pop("timeout", 2.0),
        )
        client = KeepAliveClient(policy, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


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


async def until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    """Wait until ``condition()`` holds (what the other side of a socket saw takes a few
    turns of the event loop); fail after ``seconds``."""
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"still not true after {seconds} s: {condition}")


async def post(
    client: KeepAliveClient, url: str, body: bytes = b"{}", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with client.post(url, headers or {}, body) as response:
        return response.status_code, response.headers, await response.aread()


def idle_connections(client: KeepAliveClient) -> list[Any]:
    return [c for pool in client._idle.values() for c in pool]


def chunked(*chunks: bytes) -> bytes:
    """``chunks`` in chunked encoding, with the last (empty) chunk."""
    return b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
EVENT = b'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n'


# -- the request and the response head ----------------------------------------------------


async def test_a_post_sends_one_request_and_reads_the_answer(
    serve: Serve, make_client: MakeClient
) -> None:
    answer = (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nSet-Thing: a\r\n"
        b"X-Mixed-Case:  v  \r\nset-thing: b\r\nContent-Length: 5\r\n\r\nhello"
    )
    server = await serve(answer_each(answer))
    client = make_client(server)
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call"}'
    headers = {"Accept": "application/json, text/event-stream", "Mcp-Session-Id": "s-1"}
    async with client.post(server.url("/mcp?x=1"), headers, body) as response:
        assert isinstance(response, Response)
        assert response.status_code == 201
        assert response.headers == {
            "content-type": "application/json",
            "set-thing": "a, b",
            "x-mixed-case": "v",
            "content-length": "5",
        }
        assert await response.aread() == b"hello"
    (request,) = server.requests
    assert request.line == "POST /mcp?x=1 HTTP/1.1"
    assert request.values("Host") == [f"localhost:{server.port}"]  # the name, not 127.0.0.1
    assert request.values("Accept") == ["application/json, text/event-stream"]
    assert request.values("Mcp-Session-Id") == ["s-1"]
    assert request.values("Content-Length") == [str(len(body))]
    assert request.values("User-Agent")[0].startswith("dodo-jupyter/")
    assert request.body == body
    names = [name.lower() for name, _ in request.headers]
    assert len(names) == len(set(names)) == 5  # nothing else, nothing twice


@pytest.mark.parametrize(
    ("path", "target"),
    [("", "/"), ("/", "/"), ("/a/b", "/a/b"), ("/a?q=1&r=%20", "/a?q=1&r=%20"), ("/f#x", "/f")],
)
async def test_the_request_target_is_the_path_and_query(
    serve: Serve, make_client: MakeClient, path: str, target: str
) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server)
    assert (await post(client, server.url(path)))[0] == 200
    assert server.requests[0].line == f"POST {target} HTTP/1.1"


async def test_interim_1xx_answers_are_skipped(serve: Serve, make_client: MakeClient) -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 102 Processing\r\nX-Interim: 1\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 2\r\n\r\nok"
    )
    server = await serve(answer_each(answer))
    client = make_client(server)
    for _ in range(2):
        status, headers, body = await post(client, server.url())
        assert (status, body) == (200, b"ok")
        assert headers["x-final"] == "1" and "x-interim" not in headers
    assert server.connections == 1


# -- bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "connections"),
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", 1, id="length"),
        pytest.param(
            CHUNKED_HEAD
            + b"5;name=value\r\nhello\r\n6 ; ext\r\n world\r\n0;last\r\nX-Trailer: t\r\n"
            + b"Y: 2\r\n\r\n",
            1,
            id="chunked-extensions-trailers",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n" + chunked(b"hello world"),
            1,
            id="chunked-capitalised",
        ),
        pytest.param(
            CHUNKED_HEAD + b"B\r\nhello world\r\n0\r\n\r\n", 1, id="chunked-uppercase-hex"
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\n\r\nhello world", 2, id="to-eof"),
    ],
)
async def test_body_framing(
    serve: Serve, make_client: MakeClient, answer: bytes, connections: int
) -> None:
    async def script(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(answer[:-8])  # the body comes in two reads
            await asyncio.sleep(0.01)
            await peer.send(answer[-8:])
            if b"Content-Length" not in answer and b"chunked" not in answer.lower():
                return  # the end of the connection is the end of the body

    server = await serve(script)
    client = make_client(server)
    for _ in range(2):
        assert await post(client, server.url()) == (200, headers_of(answer), b"hello world")
    assert server.connections == connections  # a body read to EOF leaves no connection


def headers_of(answer: bytes) -> dict[str, str]:
    """The header dictionary the client should give for ``answer``."""
    head = answer.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head)}


async def test_a_chunked_body_streams_as_it_arrives(serve: Serve, make_client: MakeClient) -> None:
    first_read = asyncio.Event()

    async def script(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(CHUNKED_HEAD + b"5\r\nfirst\r\n")
            await first_read.wait()  # the rest only once the client saw the first part
            await peer.send(b"6\r\nsecond\r\n0\r\n\r\n")

    server = await serve(script)
    client = make_client(server)
    async with client.post(server.url(), {}, b"") as response:
        parts = []
        async for part in response.aiter_bytes():
            parts.append(part)
            first_read.set()
    assert parts == [b"first", b"second"]


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        CHUNKED_HEAD + b"0\r\n\r\n",
    ],
    ids=["204", "304", "length-0", "chunked-empty"],
)
async def test_empty_bodies_keep_the_connection(
    serve: Serve, make_client: MakeClient, answer: bytes
) -> None:
    server = await serve(answer_each(answer))
    client = make_client(server)
    for _ in range(3):
        assert (await post(client, server.url()))[2] == b""
    assert server.connections == 1 and len(server.requests) == 3


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_aread_refuses_a_body_over_its_limit(
    serve: Serve, make_client: MakeClient, framing: str
) -> None:
    body = bytes(range(100))
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + body
        if framing == "length"
        else CHUNKED_HEAD + chunked(body[:60], body[60:])
    )
    server = await serve(answer_each(answer))
    client = make_client(server)
    with pytest.raises(HTTPFailure, match="larger than 99 bytes"):
        async with client.post(server.url(), {}, b"") as response:
            await response.aread(max_bytes=99)
    async with client.post(server.url(), {}, b"") as response:
        assert await response.aread(max_bytes=100) == body
    assert server.connections == 2  # the refused answer's connection was not reused
    assert 1 in server.eof


# -- keep-alive ---------------------------------------------------------------------------


async def test_sequential_posts_reuse_one_connection(serve: Serve, make_client: MakeClient) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server)
    for i in range(4):
        assert await post(client, server.url(), str(i).encode()) == (
            200,
            {"content-length": "2"},
            b"ok",
        )
    assert server.connections == 1
    assert [(r.connection, r.body) for r in server.requests] == [
        (1, b"0"),
        (1, b"1"),
        (1, b"2"),
        (1, b"3"),
    ]


@pytest.mark.parametrize(
    ("answer", "connections"),
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 3),
        pytest.param(b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 2\r\n\r\nok", 3),
        pytest.param(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 3, id="http/1.0"),
        pytest.param(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
            1,
            id="http/1.0-keep-alive",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
            1,
            id="http/1.1-keep-alive",
        ),
    ],
)
async def test_the_server_may_refuse_keep_alive(
    serve: Serve, make_client: MakeClient, answer: bytes, connections: int
) -> None:
    # The server keeps every connection open: only the client's reading of the head may
    # make it connect again.
    server = await serve(answer_each(answer))
    client = make_client(server)
    for _ in range(3):
        assert (await post(client, server.url()))[2] == b"ok"
    assert server.connections == connections
    if connections > 1:
        await until(lambda: server.eof == {1, 2, 3})  # the client closed each one


@pytest.mark.parametrize(
    "connection",
    [b"Connection: keep-alive, close\r\n", b"Connection: keep-alive\r\nConnection: close\r\n"],
)
async def test_close_among_connection_options_is_honoured(
    serve: Serve, make_client: MakeClient, connection: bytes
) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + connection + b"Content-Length: 2\r\n\r\nok"
    server = await serve(answer_each(answer))
    client = make_client(server)
    for _ in range(2):
        assert (await post(client, server.url()))[2] == b"ok"
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_reused(
    serve: Serve, make_client: MakeClient
) -> None:
    async def script(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(OK)  # keep-alive allowed, then the server closes anyway

    server = await serve(script)
    client = make_client(server)
    assert (await post(client, server.url()))[2] == b"ok"
    (idle,) = idle_connections(client)
    await until(idle.reader.at_eof)  # the client's loop saw the server's FIN
    assert (await post(client, server.url()))[2] == b"ok"
    assert server.connections == 2
    assert [r.connection for r in server.requests] == [1, 2]


async def test_an_idle_connection_the_server_wrote_on_is_not_reused(
    serve: Serve, make_client: MakeClient
) -> None:
    unsolicited = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"

    async def script(peer: Peer) -> None:
        if peer.number == 1:
            if await peer.request() is not None:
                await peer.send(OK + unsolicited)  # an answer nobody asked for
                await peer.until_eof()
        else:
            await answer_each(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")(peer)

    server = await serve(script)
    client = make_client(server)
    assert (await post(client, server.url()))[2] == b"ok"
    assert await post(client, server.url()) == (200, {"content-length": "6"}, b"second")
    assert server.connections == 2
    await until(lambda: 1 in server.eof)


async def test_at_most_max_idle_connections_are_kept(serve: Serve, make_client: MakeClient) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server, max_idle=1)
    async with (
        client.post(server.url(), {}, b"1") as one,
        client.post(server.url(), {}, b"2") as two,
    ):
        assert (await one.aread(), await two.aread()) == (b"ok", b"ok")
    assert server.connections == 2
    await until(lambda: len(server.eof) == 1)  # one went back to the pool, one was closed
    for _ in range(2):
        assert (await post(client, server.url()))[2] == b"ok"
    assert server.connections == 2


async def test_aclose_closes_idle_connections(serve: Serve, make_client: MakeClient) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server)
    assert (await post(client, server.url()))[2] == b"ok"
    (idle,) = idle_connections(client)
    assert not server.eof
    await client.aclose()
    assert idle.writer.is_closing() and idle_connections(client) == []
    await until(lambda: server.eof == {1})
    # a later POST still works, but its connection is not kept
    assert (await post(client, server.url()))[2] == b"ok"
    assert idle_connections(client) == []
    await until(lambda: server.eof == {1, 2})


# -- a response closed before its end -------------------------------------------------------


def patch_drain(monkeypatch: pytest.MonkeyPatch, name: str, value: float) -> None:
    """Set a drain limit where the guard keeps it (and the client reads it)."""
    monkeypatch.setattr(guard, name, value)


def sse_answer(*, end_after: float | None, extra: bytes = b"") -> Script:
    """An MCP POST answer: an event, then ``extra`` chunks and the end of the stream
    ``end_after`` seconds later (never when None: then wait for the client to close)."""

    async def script(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(SSE_HEAD + chunked(EVENT)[: -len(b"0\r\n\r\n")] + extra)
            if end_after is None:
                await peer.until_eof()
                return
            await asyncio.sleep(end_after)
            await peer.send(b"0\r\n\r\n")

    return script


async def read_first_event(client: KeepAliveClient, url: str) -> float:
    """POST, stop after the first part of the body (as an MCP client that got its result
    does); the seconds leaving the block took."""
    loop = asyncio.get_running_loop()
    async with client.post(url, {"Accept": "text/event-stream"}, b"{}") as response:
        assert response.headers["content-type"] == "text/event-stream"
        async for part in response.aiter_bytes():
            assert part == EVENT
            break
        started = loop.time()
    return loop.time() - started


async def test_a_stream_left_early_that_ends_soon_is_drained_and_reused(
    serve: Serve, make_client: MakeClient
) -> None:
    server = await serve(sse_answer(end_after=0.02))
    client = make_client(server)
    for _ in range(3):
        assert await read_first_event(client, server.url()) < 0.4
    assert server.connections == 1 and len(server.requests) == 3


async def test_an_unread_body_is_drained_and_the_connection_reused(
    serve: Serve, make_client: MakeClient
) -> None:
    server = await serve(answer_each(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
    client = make_client(server)
    for _ in range(2):
        async with client.post(server.url(), {}, b"") as response:
            assert response.status_code == 200  # the body is never read
    assert server.connections == 1 and len(server.requests) == 2


async def test_a_stream_that_does_not_end_in_time_is_closed(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch_drain(monkeypatch, "SSE_DRAIN_SECONDS", 0.1)
    server = await serve(first_connection(sse_answer(end_after=None), sse_answer(end_after=0)))
    client = make_client(server)
    waited = await read_first_event(client, server.url())
    assert 0.05 < waited < 1.0
    await until(lambda: 1 in server.eof)  # closed, not pooled
    assert idle_connections(client) == []
    await read_first_event(client, server.url())
    assert server.connections == 2


async def test_a_stream_with_too_much_left_is_closed(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch_drain(monkeypatch, "SSE_DRAIN_MAX_BYTES", 1000)
    more = chunked(*[b"x" * 500] * 4)[: -len(b"0\r\n\r\n")]  # 2000 bytes, then the end
    server = await serve(sse_answer(end_after=0.01, extra=more))
    client = make_client(server)
    await read_first_event(client, server.url())
    await until(lambda: 1 in server.eof)
    await read_first_event(client, server.url())
    assert server.connections == 2


async def test_an_error_in_the_block_closes_the_connection(
    serve: Serve, make_client: MakeClient
) -> None:
    server = await serve(answer_each(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
    client = make_client(server)
    with pytest.raises(RuntimeError, match="caller failed"):
        async with client.post(server.url(), {}, b""):
            raise RuntimeError("caller failed")
    await until(lambda: 1 in server.eof)
    assert idle_connections(client) == []
    assert (await post(client, server.url()))[2] == b"hello"
    assert server.connections == 2


async def test_a_cancelled_read_closes_the_connection_without_draining(
    serve: Serve, make_client: MakeClient
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"  # 7 bytes never come
    server = await serve(first_connection(answer_once_then_hold(head), answer_each(OK)))
    client = make_client(server)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1), client.post(server.url(), {}, b"") as response:
            await response.aread()
    assert loop.time() - started < 0.4  # no drain after a cancellation
    await until(lambda: 1 in server.eof)
    assert (await post(client, server.url()))[2] == b"ok"
    assert server.connections == 2


# -- malformed answers --------------------------------------------------------------------


def bad_answer(answer: bytes, *, close: bool) -> Script:
    async def script(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(answer)
            if not close:
                await peer.until_eof()

    return script


@pytest.mark.parametrize(
    ("answer", "close", "match"),
    [
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", False, "not HTTP/1.x", id="not-http"),
        pytest.param(b"HTTP/2 200\r\n\r\n", False, "not HTTP/1.x", id="http/2"),
        pytest.param(b"HTTP/1.1 2x0 OK\r\n\r\n", False, "not HTTP/1.x", id="bad-status"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", False, "malformed header", id="bad-header"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
            False,
            "malformed Content-Length",
            id="bad-content-length",
        ),
        pytest.param(
            CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n",
            False,
            "malformed chunk size",
            id="bad-chunk-size",
        ),
        pytest.param(
            CHUNKED_HEAD + b"-5\r\nhello\r\n0\r\n\r\n",
            False,
            "malformed chunk size",
            id="negative-chunk-size",
        ),
        pytest.param(
            CHUNKED_HEAD + b"5\r\nhelloXX\r\n0\r\n\r\n",
            False,
            r"malformed chunk\.",
            id="chunk-without-crlf",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n",
            False,
            "LimitOverrunError",
            id="head-too-large",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (2 * MAX_HEAD_BYTES),
            False,
            "LimitOverrunError",
            id="head-too-large-unterminated",
        ),
        pytest.param(
            b"", True, "before the server answered .IncompleteReadError", id="closed-at-once"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-", True, "before the server answered", id="closed-in-head"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            True,
            "in the middle of a body",
            id="short-body",
        ),
        pytest.param(CHUNKED_HEAD + b"5\r\nhel", True, "middle of a chunk", id="cut-chunk"),
        pytest.param(
            CHUNKED_HEAD + b"5\r\nhello\r\n", True, "IncompleteReadError", id="no-last-chunk"
        ),
    ],
)
async def test_malformed_answers_are_http_failures(
    serve: Serve, make_client: MakeClient, answer: bytes, close: bool, match: str
) -> None:
    server = await serve(first_connection(bad_answer(answer, close=close), answer_each(OK)))
    client = make_client(server)
    with pytest.raises(HTTPFailure, match=match) as info:
        async with client.post(server.url(), {}, b"{}") as response:
            await response.aread()
    assert info.value.unsent is False  # the request was sent: not safe to send again
    if not close:
        await until(lambda: 1 in server.eof)  # the client closed the broken connection
    assert (await post(client, server.url()))[2] == b"ok"
    assert server.connections == 2


async def test_a_head_just_under_the_limit_is_accepted(
    serve: Serve, make_client: MakeClient
) -> None:
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: "
    end = b"\r\n\r\nok"
    padding = b"a" * (MAX_HEAD_BYTES - len(start) - len(end) + 2)  # head: MAX_HEAD_BYTES
    server = await serve(answer_each(start + padding + end))
    client = make_client(server)
    status, headers, body = await post(client, server.url())
    assert (status, len(headers["x-big"]), body) == (200, len(padding), b"ok")


async def test_a_negative_content_length_is_refused(serve: Serve, make_client: MakeClient) -> None:
    server = await serve(answer_once_then_hold(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"))
    client = make_client(server)
    with pytest.raises(HTTPFailure, match="Content-Length"):
        async with asyncio.timeout(0.3), client.post(server.url(), {}, b"") as response:
            await response.aread()


# -- the guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "answers", "match"),
    [
        pytest.param(("mcp.test",), ["127.0.0.1"], "not an allowed host", id="host-not-allowed"),
        pytest.param((), ["10.0.0.1"], r"resolves to 10\.0\.0\.1 is a private", id="private"),
        pytest.param((), ["127.0.0.1", "10.0.0.1"], "10.0.0.1", id="one-private-answer"),
        pytest.param((), ["169.254.169.254"], "metadata", id="metadata"),
    ],
)
async def test_refused_urls_make_no_connection(
    serve: Serve, make_client: MakeClient, hosts: tuple[str, ...], answers: list[str], match: str
) -> None:
    server = await serve(answer_each(OK))
    refusing = make_client(server, hosts=hosts, resolver=StaticResolver({"localhost": answers}))
    with pytest.raises(OutboundRefused, match=match):
        async with refusing.post(server.url(), {}, b"{}"):
            pytest.fail("the guard let the request through")
    # A later allowed request is the server's first connection (accepts come in order).
    assert (await post(make_client(server), server.url()))[2] == b"ok"
    assert server.connections == 1 and len(server.requests) == 1


async def test_plain_http_needs_the_loopback_flag(serve: Serve) -> None:
    server = await serve(answer_each(OK))
    client = KeepAliveClient(
        OutboundPolicy(
            frozenset({f"localhost:{server.port}"}),
            resolver=StaticResolver({"localhost": ["127.0.0.1"]}),
        )
    )
    with pytest.raises(OutboundRefused, match="allow_insecure_loopback"):
        async with client.post(server.url(), {}, b""):
            pass
    await client.aclose()
    assert server.connections == 0


@pytest.mark.parametrize(
    "answers", [["::1", "127.0.0.1"], ["127.0.0.1", "::1"]], ids=["fallback", "first"]
)
async def test_the_first_judged_address_that_answers_is_used(
    serve: Serve, make_client: MakeClient, answers: list[str]
) -> None:
    server = await serve(answer_each(OK))  # on 127.0.0.1 only: ::1 refuses
    client = make_client(server, resolver=StaticResolver({"localhost": answers}))
    assert (await post(client, server.url()))[2] == b"ok"
    assert server.requests[0].values("Host") == [f"localhost:{server.port}"]
    assert server.connections == 1


async def test_no_address_answering_is_an_unsent_failure(make_client: MakeClient) -> None:
    with socket.socket() as sock:  # a port on 127.0.0.1 that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nobody = ScriptedServer(answer_each(OK), port=port)
    client = make_client(nobody, resolver=StaticResolver({"localhost": ["::1", "127.0.0.1"]}))
    with pytest.raises(
        HTTPFailure,
        match=rf"Cannot connect to http://localhost:{port}/mcp \(ConnectionRefusedError",
    ) as info:
        async with client.post(nobody.url(), {}, b"{}"):
            pytest.fail("no server should have answered")
    assert info.value.unsent is True  # nothing was sent: safe to send again


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Token", "abc\r\nX-Injected: 1"),
        ("X-Token", "abc\nX-Injected: 1"),
        ("X-Token", "abc\rX-Injected: 1"),
        ("X-Token\r\nX-Injected", "1"),
        ("X-Injected: 1\nX-Token", "abc"),
        ("X-Token:", "abc"),
        ("X-Token", "abc\0X-Injected: 1"),
        ("", "abc"),
    ],
)
async def test_header_injection_is_refused_before_sending(
    serve: Serve, make_client: MakeClient, name: str, value: str
) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server)
    assert (await post(client, server.url()))[2] == b"ok"  # a pooled connection is ready
    with pytest.raises(ValueError, match="not a valid HTTP header"):
        async with client.post(server.url(), {"Accept": "*/*", name: value}, b"{}"):
            pytest.fail("the request was sent")
    assert (await post(client, server.url()))[2] == b"ok"
    assert len(server.requests) == 2 and server.connections == 1
    assert not any(r.values("X-Injected") for r in server.requests)


async def test_the_pinned_host_header_is_the_only_one(
    serve: Serve, make_client: MakeClient
) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server)
    await post(client, server.url(), headers={"Host": "evil.test"})
    assert server.requests[0].values("Host") == [f"localhost:{server.port}"]


async def test_the_framing_headers_are_the_clients_own(
    serve: Serve, make_client: MakeClient
) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server)
    framing = {"Content-Length": "999", "Transfer-Encoding": "chunked", "Connection": "close"}
    await post(client, server.url(), headers={**framing, "User-Agent": "agent/1"}, body=b"abc")
    request = server.requests[0]
    assert request.values("Content-Length") == ["3"] and request.body == b"abc"
    assert request.values("Transfer-Encoding") == request.values("Connection") == []
    assert request.values("User-Agent") == ["agent/1"]  # a caller's own agent replaces ours


@pytest.mark.parametrize("value", ["+2", "0x2", "2 2", "1_0"])
async def test_a_content_length_must_be_digits(
    serve: Serve, make_client: MakeClient, value: str
) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\nab".encode()
    server = await serve(answer_once_then_hold(head))
    client = make_client(server)
    with pytest.raises(HTTPFailure, match="Content-Length"):
        async with asyncio.timeout(0.3), client.post(server.url(), {}, b"") as response:
            await response.aread()


# -- TLS ----------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def tls_server(
    serve: Serve, tmp_path: Path
) -> AsyncIterator[tuple[ScriptedServer, ssl.SSLContext]]:
    cert_path, key_path = make_certificate(tmp_path, "mcp.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    server = await serve(answer_each(OK), tls=server_context)
    yield server, ssl.create_default_context(cafile=str(cert_path))


def tls_client(
    make_client: MakeClient, server: ScriptedServer, tls: ssl.SSLContext | None
) -> KeepAliveClient:
    resolver = StaticResolver({"mcp.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    return make_client(server, hosts=("mcp.test", "other.test"), resolver=resolver, tls=tls)


async def test_https_verifies_the_certificate_for_the_host_name(
    tls_server: tuple[ScriptedServer, ssl.SSLContext], make_client: MakeClient
) -> None:
    server, client_context = tls_server
    client = tls_client(make_client, server, client_context)
    url = server.url(host="mcp.test", scheme="https")
    for _ in range(2):
        assert await post(client, url) == (200, {"content-length": "2"}, b"ok")
    assert server.connections == 1  # kept alive over TLS too
    assert server.requests[0].values("Host") == [f"mcp.test:{server.port}"]
    assert server.server_names == ["mcp.test"]  # SNI: the name, not the pinned address
    # The same address under a name the certificate does not cover is refused.
    with pytest.raises(HTTPFailure, match="CERTIFICATE_VERIFY_FAILED") as info:
        await post(client, server.url(host="other.test", scheme="https"))
    assert info.value.unsent is True
    assert len(server.requests) == 2


async def test_https_with_the_default_context_refuses_a_self_signed_server(
    tls_server: tuple[ScriptedServer, ssl.SSLContext], make_client: MakeClient
) -> None:
    server, _ = tls_server
    client = tls_client(make_client, server, None)
    with pytest.raises(HTTPFailure, match="CERTIFICATE_VERIFY_FAILED") as info:
        await post(client, server.url(host="mcp.test", scheme="https"))
    assert info.value.unsent is True
    assert server.requests == []


async def test_a_header_http_cannot_carry_is_refused_before_sending(
    serve: Serve, make_client: MakeClient
) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server)
    with pytest.raises(InvalidHeader, match="cannot carry") as info:
        async with client.post(server.url(), {"X-Name": "Zoë ☃"}, b"{}"):
            pytest.fail("the request was sent")
    assert info.value.unsent and server.requests == []


async def test_a_huge_chunk_is_read_as_it_arrives(serve: Serve, make_client: MakeClient) -> None:
    # A chunk announced as 1 GiB: its first bytes come out at once, nothing waits for
    # (or buffers) the whole chunk.
    server = await serve(answer_once_then_hold(CHUNKED_HEAD + b"40000000\r\n" + b"x" * 10))
    client = make_client(server)
    async with asyncio.timeout(2), client.post(server.url(), {}, b"") as response:
        pieces = response.aiter_bytes()
        assert await anext(pieces) == b"x" * 10
        response.discard()
