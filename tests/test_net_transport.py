"""dodo's HTTP stack under fire (:mod:`dodo_jupyter.net.transport` under the guarded httpx2
client every outbound request uses): keep-alive, draining, and the response side fuzzed
with malformed heads, bad chunk sizes, huge headers, ``Content-Length`` and
``Transfer-Encoding`` together, and truncated SSE events.

Every test talks to a real server on 127.0.0.1 whose answer it scripts byte by byte
(:class:`~.scripted_server.ScriptedServer`). Nothing is ever sent anywhere but loopback:
the names a test uses reach 127.0.0.1 through a :class:`StaticResolver` (the trusted
client, which resolves nothing itself, is given 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import httpx2
import pytest
import pytest_asyncio

from dodo_jupyter.net import transport
from dodo_jupyter.net.guard import guarded_client, read_limited
from dodo_jupyter.net.outbound import trusted_client
from dodo_jupyter.net.policy import StaticResolver
from dodo_jupyter.net.transport import MAX_HEAD_BYTES, PooledTransport
from dodo_jupyter.upstream.messages import RequestFailed
from dodo_jupyter.upstream.wire import StreamableTarget, send_request

from .scripted_server import (
    Peer,
    Script,
    ScriptedServer,
    Serve,
    answer_each,
    answer_once_then_hold,
    chunked,
    first_connection,
    until,
)
from .test_net_guard import make_certificate, make_policy

pytestmark = pytest.mark.asyncio

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
EVENT = b'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n'


class MakeClient(Protocol):
    def __call__(
        self, server: ScriptedServer, *, hosts: tuple[str, ...] = (), **kwargs: Any
    ) -> httpx2.AsyncClient: ...


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Guarded clients allowed to reach ``localhost:<port>`` (127.0.0.1)."""
    made: list[httpx2.AsyncClient] = []

    def make(
        server: ScriptedServer, *, hosts: tuple[str, ...] = (), **kwargs: Any
    ) -> httpx2.AsyncClient:
        policy = make_policy(
            *(hosts or (f"localhost:{server.port}",)),
            loopback=True,
            resolver=kwargs.pop(
                "resolver",
                StaticResolver({"localhost": ["127.0.0.1"], "mcp.test": ["127.0.0.1"]}),
            ),
            timeout=kwargs.pop("timeout", 2.0),
        )
        client = guarded_client(policy, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def post(client: httpx2.AsyncClient, url: str, **kwargs: Any) -> httpx2.Response:
    response = await client.post(url, content=b"{}", **kwargs)
    return response


# -- keep-alive ---------------------------------------------------------------------------


async def test_sequential_posts_reuse_one_connection(serve: Serve, make_client: MakeClient) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server)
    for _ in range(3):
        response = await post(client, server.url())
        assert (response.status_code, response.content) == (200, b"ok")
    assert server.connections == 1 and len(server.requests) == 3
    assert server.requests[0].values("Host") == [f"localhost:{server.port}"]


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\n\r\nok",  # no length: the body ends with the connection
    ],
    ids=["connection-close", "http/1.0", "until-close"],
)
async def test_a_connection_the_server_ends_is_not_reused(
    serve: Serve, make_client: MakeClient, answer: bytes
) -> None:
    async def once(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(answer)

    server = await serve(once)
    client = make_client(server)
    for _ in range(2):
        assert (await post(client, server.url())).content == b"ok"
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_or_wrote_on_is_not_reused(
    serve: Serve, make_client: MakeClient
) -> None:
    async def chatty(peer: Peer) -> None:  # answers, then writes garbage while idle
        if await peer.request() is not None:
            await peer.send(OK + b"garbage")
            await peer.until_eof()

    async def closing(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(OK)

    async def script(peer: Peer) -> None:
        await {1: chatty, 2: closing}.get(peer.number, answer_each(OK))(peer)

    server = await serve(script)
    client = make_client(server)
    for _ in range(3):
        assert (await post(client, server.url())).content == b"ok"
        await asyncio.sleep(0.05)  # the server's bytes or its close arrive while idle
    assert server.connections == 3


async def test_interim_1xx_answers_are_skipped(serve: Serve, make_client: MakeClient) -> None:
    server = await serve(answer_each(b"HTTP/1.1 100 Continue\r\n\r\n" + OK))
    client = make_client(server)
    assert (await post(client, server.url())).content == b"ok"
    assert (await post(client, server.url())).content == b"ok"
    assert server.connections == 1


async def test_a_chunked_body_streams_as_it_arrives(serve: Serve, make_client: MakeClient) -> None:
    # A chunk announced as 1 GiB: its first bytes come out at once, nothing waits for it.
    server = await serve(answer_once_then_hold(CHUNKED_HEAD + b"40000000\r\n" + b"x" * 10))
    client = make_client(server)
    async with asyncio.timeout(2), client.stream("POST", server.url()) as response:
        assert await anext(response.aiter_raw()) == b"x" * 10


async def test_request_bodies_are_sent_whole_small_and_large(
    serve: Serve, make_client: MakeClient
) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server)
    large = b"y" * (3 * 64 * 1024 + 17)  # leaves in several writes
    for body in (b"{}", large):
        assert (await client.post(server.url(), content=body)).content == b"ok"
    assert [r.body for r in server.requests] == [b"{}", large]
    assert server.connections == 1


# -- an event stream left early -----------------------------------------------------------


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


async def read_first_event(client: httpx2.AsyncClient, url: str) -> float:
    """POST, stop after the first event (as an MCP client that got its result does);
    the seconds leaving the block took."""
    loop = asyncio.get_running_loop()
    async with client.stream("POST", url, content=b"{}") as response:
        async for part in response.aiter_raw():
            assert part == EVENT
            break
        started = loop.time()
    return loop.time() - started


async def test_a_stream_left_early_that_ends_soon_keeps_its_connection(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "DRAIN_SECONDS", 5.0)  # ample on a busy machine
    server = await serve(sse_answer(end_after=0.02))
    client = make_client(server)
    for _ in range(3):
        await read_first_event(client, server.url())
    assert server.connections == 1 and len(server.requests) == 3


async def test_a_stream_that_does_not_end_in_time_is_closed(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "DRAIN_SECONDS", 0.1)
    server = await serve(first_connection(sse_answer(end_after=None), sse_answer(end_after=0)))
    client = make_client(server)
    assert await read_first_event(client, server.url()) > 0.05  # it waited for the end
    await until(lambda: 1 in server.eof)  # then closed, not pooled
    await read_first_event(client, server.url())
    assert server.connections == 2


async def test_a_stream_with_too_much_left_is_closed(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "DRAIN_MAX_BYTES", 1000)
    more = chunked(*[b"x" * 500] * 4)[: -len(b"0\r\n\r\n")]  # 2000 bytes, then the end
    server = await serve(sse_answer(end_after=0.01, extra=more))
    client = make_client(server)
    await read_first_event(client, server.url())
    await until(lambda: 1 in server.eof)
    await read_first_event(client, server.url())
    assert server.connections == 2


async def test_a_cancelled_read_closes_the_connection_without_draining(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "DRAIN_SECONDS", 60.0)  # a drain would hold it a minute
    head = SSE_HEAD + b"5\r\nabc"  # the rest never comes
    server = await serve(first_connection(answer_once_then_hold(head), answer_each(OK)))
    client = make_client(server)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1), client.stream("POST", server.url()) as response:
            await response.aread()
    await until(lambda: 1 in server.eof, seconds=10)  # closed at once, not drained
    assert (await post(client, server.url())).content == b"ok"
    assert server.connections == 2


# -- malformed answers (the response side, fuzzed) ---------------------------------------


def bad_answer(answer: bytes, *, close: bool) -> Script:
    async def script(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(answer)
            if not close:
                await peer.until_eof()

    return script


@pytest.mark.parametrize(
    ("answer", "close"),
    [
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", False, id="not-http"),
        pytest.param(b"HTTP/2 200\r\n\r\n", False, id="http/2"),
        pytest.param(b"HTTP/1.1 2x0 OK\r\n\r\n", False, id="bad-status"),
        pytest.param(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", False, id="bad-header"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", False, id="bad-length"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", False, id="neg-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
            False,
            id="two-lengths",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked(b"hello"),
            False,
            id="length-and-chunked",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello", False, id="unknown-te"
        ),
        pytest.param(CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n", False, id="bad-chunk-size"),
        pytest.param(CHUNKED_HEAD + b"-5\r\nhello\r\n0\r\n\r\n", False, id="neg-chunk-size"),
        pytest.param(CHUNKED_HEAD + b"5\r\nhelloXX\r\n0\r\n\r\n", False, id="chunk-no-crlf"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n",
            False,
            id="head-too-large",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (2 * MAX_HEAD_BYTES), False, id="head-endless"
        ),
        pytest.param(b"", True, id="closed-at-once"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-", True, id="closed-in-head"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", True, id="short-body"),
        pytest.param(CHUNKED_HEAD + b"5\r\nhel", True, id="cut-chunk"),
        pytest.param(CHUNKED_HEAD + b"5\r\nhello\r\n", True, id="no-last-chunk"),
    ],
)
async def test_malformed_answers_fail_cleanly_and_the_next_request_works(
    serve: Serve, make_client: MakeClient, answer: bytes, close: bool
) -> None:
    server = await serve(first_connection(bad_answer(answer, close=close), answer_each(OK)))
    client = make_client(server)
    with pytest.raises(httpx2.TransportError) as info:
        await post(client, server.url())
    assert not isinstance(info.value, httpx2.ConnectError)  # it was sent: not safe again
    message = str(info.value)
    assert message and "h11" not in message and "Traceback" not in message
    if not close:
        await until(lambda: 1 in server.eof)  # the broken connection was closed
    assert (await post(client, server.url())).content == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "closed"])
async def test_a_reset_is_never_taken_for_the_end_of_an_answer(
    serve: Serve, make_client: MakeClient, reset: bool
) -> None:
    """A body that ends with its connection (no length given) ends cleanly with a close;
    cut by a reset, it is an error, never a shorter answer."""

    async def script(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npartial")
            await asyncio.sleep(0.05)  # the client has the head and the bytes
            if reset:
                peer.reset()

    server = await serve(script)
    client = make_client(server)
    async with client.stream("POST", server.url(), content=b"{}") as response:
        assert response.status_code == 200
        if reset:
            with pytest.raises(httpx2.ReadError, match="reset"):
                await response.aread()
        else:
            assert await response.aread() == b"partial"


async def test_a_head_just_under_the_limit_is_accepted(
    serve: Serve, make_client: MakeClient
) -> None:
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: "
    padding = b"a" * (MAX_HEAD_BYTES - len(start) - 200)
    server = await serve(answer_each(start + padding + b"\r\n\r\nok"))
    client = make_client(server)
    response = await post(client, server.url())
    assert (len(response.headers["x-big"]), response.content) == (len(padding), b"ok")


async def test_a_silent_server_is_a_read_timeout(serve: Serve, make_client: MakeClient) -> None:
    async def silent(peer: Peer) -> None:
        await peer.request()
        await peer.until_eof()

    server = await serve(silent)
    client = make_client(server, timeout=0.2)
    with pytest.raises(httpx2.ReadTimeout, match="did not answer in time"):
        await post(client, server.url())


async def _drip(peer: Peer, data: bytes) -> None:
    """Send ``data`` one byte every 0.1 s: each read is quick, the whole never ends."""
    for byte in data:
        await peer.send(bytes([byte]))
        await asyncio.sleep(0.1)


async def test_a_head_sent_a_byte_at_a_time_meets_the_total_deadline(
    serve: Serve, make_client: MakeClient
) -> None:
    """Each byte comes well within the read timeout; the head as a whole must still
    arrive within the connect, write and read timeouts added up (0.9 s here)."""

    async def dripping(peer: Peer) -> None:
        await peer.request()
        await _drip(peer, b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n")

    server = await serve(dripping)
    client = make_client(server, timeout=0.3)
    started = asyncio.get_running_loop().time()
    with pytest.raises(httpx2.ReadTimeout, match=r"within 0\.9 s"):
        await post(client, server.url())
    assert asyncio.get_running_loop().time() - started < 3


async def test_a_trusted_client_meets_the_same_total_deadline(serve: Serve) -> None:
    """The client of the hub API and the hub catalog service has no guard, but the same
    deadline: a hub sending its head a byte at a time is given up on within the connect,
    write and read timeouts added up (0.9 s here), not held open forever."""

    async def dripping(peer: Peer) -> None:
        await peer.request()
        await _drip(peer, b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n")

    server = await serve(dripping)
    started = asyncio.get_running_loop().time()
    async with trusted_client(0.3) as client:
        with pytest.raises(httpx2.ReadTimeout, match=r"within 0\.9 s"):
            await client.get(server.url(host="127.0.0.1"))
    assert asyncio.get_running_loop().time() - started < 3


async def test_a_body_sent_a_byte_at_a_time_meets_its_deadline(
    serve: Serve, make_client: MakeClient
) -> None:
    """A body read with a size bound (discovery, registration, tokens) must arrive whole
    within the read timeout."""

    async def dripping(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n")
        await _drip(peer, b"a" * 300)

    server = await serve(dripping)
    client = make_client(server, timeout=0.5)
    async with client.stream("GET", server.url()) as response:
        with pytest.raises(httpx2.ReadTimeout, match=r"body did not arrive within 0\.5 s"):
            await read_limited(response, 10_000)


@pytest.mark.parametrize(
    "value", ["abc\r\nX-Injected: 1", "abc\nX-Injected: 1", "abc\0X-Injected: 1"]
)
async def test_header_injection_is_refused_before_sending(
    serve: Serve, make_client: MakeClient, value: str
) -> None:
    server = await serve(answer_each(OK))
    client = make_client(server)
    with pytest.raises((httpx2.LocalProtocolError, ValueError)):
        await post(client, server.url(), headers={"X-Token": value})
    assert (await post(client, server.url())).content == b"ok"
    assert not any(r.values("X-Injected") for r in server.requests)


async def test_no_address_answering_is_a_connect_error(make_client: MakeClient) -> None:
    with socket.socket() as sock:  # a port on 127.0.0.1 that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nobody = ScriptedServer(answer_each(OK), port=port)
    resolver = StaticResolver({"localhost": ["::1", "127.0.0.1"]})
    client = make_client(nobody, resolver=resolver)
    with pytest.raises(httpx2.ConnectError, match="connect"):
        await post(client, nobody.url())


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


async def test_https_verifies_the_certificate_for_the_host_name(
    tls_server: tuple[ScriptedServer, ssl.SSLContext], make_client: MakeClient
) -> None:
    server, client_context = tls_server
    resolver = StaticResolver({"mcp.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    client = make_client(
        server,
        hosts=("mcp.test", "other.test"),
        resolver=resolver,
        inner=PooledTransport(client_context),
    )
    for _ in range(2):
        response = await post(client, server.url(host="mcp.test", scheme="https"))
        assert response.content == b"ok"
    assert server.connections == 1  # kept alive over TLS too
    assert server.requests[0].values("Host") == [f"mcp.test:{server.port}"]
    assert server.server_names == ["mcp.test"]  # SNI: the name, not the pinned address
    # The same address under a name the certificate does not cover is refused.
    with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await post(client, server.url(host="other.test", scheme="https"))
    assert len(server.requests) == 2


async def test_https_with_the_default_context_refuses_a_self_signed_server(
    tls_server: tuple[ScriptedServer, ssl.SSLContext], make_client: MakeClient
) -> None:
    server, _ = tls_server
    client = make_client(server, hosts=("mcp.test",))
    with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await post(client, server.url(host="mcp.test", scheme="https"))
    assert server.requests == []


# -- MCP answers over the stack: truncated and oversized event streams --------------------


def sse_body(*events: bytes, end: bool = True) -> bytes:
    body = chunked(*events)
    return SSE_HEAD + (body if end else body[: -len(b"0\r\n\r\n")])


async def call(client: httpx2.AsyncClient, url: str) -> dict[str, Any]:
    async def ignore(message: dict[str, Any]) -> None:
        return None

    target = StreamableTarget(url, "s1", "2025-11-25")
    return await send_request(client, target, "tools/call", {}, on_notification=ignore)


def answer_to_request(
    make_body: Any,
) -> Script:
    """Answers each JSON-RPC request with ``make_body(request_id)``."""

    async def script(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            await peer.send(make_body(json.loads(request.body)["id"]))

    return script


def result_event(request_id: str) -> bytes:
    message = {"jsonrpc": "2.0", "id": request_id, "result": {"content": []}}
    return b"event: message\ndata: " + json.dumps(message).encode() + b"\n\n"


async def test_an_answer_on_an_event_stream_keeps_the_connection(
    serve: Serve, make_client: MakeClient
) -> None:
    server = await serve(answer_to_request(lambda rid: sse_body(result_event(rid))))
    client = make_client(server)
    for _ in range(3):
        assert await call(client, server.url()) == {"content": []}
    assert server.connections == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda rid: sse_body(result_event(rid)[:30], end=True), id="cut-event"),
        pytest.param(lambda rid: sse_body(b"event: message\ndata: {", end=True), id="no-blank"),
        pytest.param(lambda rid: SSE_HEAD + b"40\r\n" + result_event(rid)[:20], id="cut-chunk"),
    ],
)
async def test_a_truncated_event_stream_is_a_request_failure(
    serve: Serve, make_client: MakeClient, body: Any
) -> None:
    async def once(peer: Peer) -> None:
        request = await peer.request()
        if request is not None:
            await peer.send(body(json.loads(request.body)["id"]))

    server = await serve(once)
    client = make_client(server)
    with pytest.raises(RequestFailed, match="ended without an answer"):
        await call(client, server.url())


async def test_an_oversized_event_is_refused(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dodo_jupyter.upstream.wire as rpc

    monkeypatch.setattr(rpc, "MAX_EVENT_BYTES", 1024)
    big = b"event: message\ndata: " + b"x" * 4096 + b"\n\n"
    server = await serve(answer_to_request(lambda rid: sse_body(big, result_event(rid))))
    client = make_client(server)
    with pytest.raises(RequestFailed, match=r"event stream failed.*1024"):
        await call(client, server.url())
