"""Every outbound exchange has a total deadline, head and body (issue 19, item 1).

A trickling server on 127.0.0.1 answers one step of the exchange a byte every 0.25 s
(the head, or the end of the head and then the body): each read is quick (the per-read
timeout never trips), the whole never ends. Each step —
protected resource metadata, authorization server metadata, client registration, token
(code exchange and refresh), revocation, the MCP sign-in probe, MCP ``initialize``,
``tools/list`` and ``tools/call`` — must fail within its deadline (1 s here) plus a small
margin, with a message naming the host and the step and nothing of the URL's path or
query.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx2
import pytest
import pytest_asyncio
from mcp.shared.auth import OAuthMetadata

from dodo_jupyter.exceptions import UpstreamTimeout
from dodo_jupyter.net.deadline import exchange_deadline, host_shown
from dodo_jupyter.net.guard import guarded_client
from dodo_jupyter.net.policy import OutboundPolicy
from dodo_jupyter.oauth.discovery import AuthServer, Challenge, discover
from dodo_jupyter.oauth.registration import ClientCredentials, ClientRegistry
from dodo_jupyter.oauth.token_endpoint import request_token, revoke_token
from dodo_jupyter.upstream import UpstreamSession
from dodo_jupyter.upstream.auth import probe

#: The deadline of every step in these tests, and the margin a failure may take beyond it.
DEADLINE = 1.0
MARGIN = 0.6
#: Seconds between two trickled bytes: far below the per-read timeout.
DRIP = 0.25

#: How the server answers a request: "trickle-head", "trickle-body" or a JSON body.
Answer = str | dict[str, Any]
Route = Callable[[str, str, dict[str, Any] | None], Answer]


@dataclass
class TricklingServer:
    """A raw HTTP/1.1 server on 127.0.0.1: ``route(method, path, json_body)`` picks the
    answer; a trickled answer sends its head (or its body) one byte every :data:`DRIP`."""

    route: Route
    port: int = 0
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            while line := await reader.readline():
                method, target, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                await self._answer(writer, self.route(method, target, body))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, answer: Answer) -> None:
        if answer == "trickle-head":
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 400 + b"\r\n\r\n":
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(DRIP)
            return
        if answer == "trickle-body":
            # The head's last bytes come slowly too: the deadline is on head and body
            # together (a head in 0.75 s, then a body within the read timeout, 1.75 s).
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: 400\r")
            for byte in b"\n\r\n":
                await writer.drain()
                await asyncio.sleep(DRIP)
                writer.write(bytes([byte]))
            await writer.drain()
            for _ in range(399):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(DRIP)
            return
        if answer == "accepted":
            writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        body = json.dumps(answer).encode()
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Mcp-Session-Id: s1\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()


Serve = Callable[[Route], Awaitable[TricklingServer]]


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[TricklingServer] = []

    async def start(route: Route) -> TricklingServer:
        server = TricklingServer(route)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def client_for(server: TricklingServer, **kwargs: Any) -> httpx2.AsyncClient:
    """A guarded client as dodo builds for the OAuth steps, with ``outbound_timeout`` of
    :data:`DEADLINE` (so every per-step timeout is far above :data:`DRIP`)."""
    policy = OutboundPolicy(
        allowed_hosts=frozenset({f"127.0.0.1:{server.port}"}),
        allow_insecure_loopback=True,
        timeout=DEADLINE,
    )
    return guarded_client(policy, **kwargs)


async def late(work: Awaitable[Any], server: TricklingServer, step: str) -> str:
    """Await ``work``, which must fail with :class:`UpstreamTimeout` within the deadline
    plus the margin, naming the server's host and ``step``; the message."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamTimeout) as failed:
        await work
    took = loop.time() - started
    assert took < DEADLINE + MARGIN, f"gave up after {took:.1f} s"
    message = failed.value.message
    assert f"127.0.0.1:{server.port}" in message
    assert step in message
    assert f"{DEADLINE:g} s" in message
    assert "/secret" not in message and "code=" not in message
    assert "httpx" not in message and "Error" not in message
    return message


def metadata(base: str) -> dict[str, Any]:
    return {
        "issuer": f"{base}/as",
        "authorization_endpoint": f"{base}/as/authorize",
        "token_endpoint": f"{base}/as/token",
        "registration_endpoint": f"{base}/as/register",
        "code_challenge_methods_supported": ["S256"],
    }


CREDS = ClientCredentials(
    row_id=None,
    client_id="dodo",
    client_secret="s3cret",
    auth_method="client_secret_post",
    method="dcr",
)


# -- the helper ---------------------------------------------------------------------------


def test_host_shown_keeps_the_host_and_port_only() -> None:
    assert host_shown("https://user:pw@auth.example.com/secret?code=1") == "auth.example.com"
    assert host_shown("https://auth.example.com:8443/x") == "auth.example.com:8443"
    assert host_shown("https://[::1]:9/x") == "[::1]:9"


@pytest.mark.asyncio
async def test_exchange_deadline_leaves_other_timeouts_alone() -> None:
    """Only its own deadline is reported as the step's: an inner timeout is not."""
    with pytest.raises(TimeoutError):
        async with exchange_deadline("https://a.example/", "metadata", 5.0):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)


# -- OAuth steps --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_protected_resource_metadata(serve: Serve) -> None:
    server = await serve(lambda method, path, body: "trickle-body")
    async with client_for(server) as client:
        challenge = Challenge(resource_metadata=f"{server.base}/secret/prm?code=1")
        work = discover(client, f"{server.base}/mcp", challenge)
        message = await late(work, server, "protected resource metadata")
    assert message.startswith(f"127.0.0.1:{server.port} did not send its protected resource")


@pytest.mark.asyncio
async def test_authorization_server_metadata(serve: Serve) -> None:
    def route(method: str, path: str, body: dict[str, Any] | None) -> Answer:
        if path == "/prm":
            base = f"http://127.0.0.1:{server.port}"
            return {"resource": f"{base}/mcp", "authorization_servers": [f"{base}/as"]}
        return "trickle-head"

    server = await serve(route)
    async with client_for(server) as client:
        work = discover(client, f"{server.base}/mcp", Challenge(f"{server.base}/prm"))
        await late(work, server, "did not send its authorization server metadata within 1 s")


@pytest.mark.asyncio
async def test_client_registration(serve: Serve) -> None:
    server = await serve(lambda method, path, body: "trickle-body")
    registry = ClientRegistry(cast(Any, None))  # the timeout comes before any store use
    raw = {**metadata(server.base), "registration_endpoint": f"{server.base}/secret/reg"}
    auth_server = AuthServer(
        issuer=raw["issuer"], metadata=OAuthMetadata.model_validate(raw), raw=raw
    )
    async with client_for(server) as client:
        work = registry._register(client, "ada", auth_server, "https://jupyter/cb", None)
        await late(work, server, "did not send its client registration within 1 s")


@pytest.mark.parametrize(
    ("grant", "step"),
    [
        ("authorization_code", "token (authorization code exchange)"),
        ("refresh_token", "token (refresh)"),
    ],
)
@pytest.mark.asyncio
async def test_token(serve: Serve, grant: str, step: str) -> None:
    server = await serve(lambda method, path, body: "trickle-body")
    params = {"code": "c0de", "redirect_uri": "https://j/cb"}
    if grant == "refresh_token":
        params = {"refresh_token": "r3fresh"}
    async with client_for(server) as client:
        work = request_token(
            client, CREDS, f"{server.base}/secret/token", grant, params, max_bytes=10_000
        )
        message = await late(work, server, step)
    assert "c0de" not in message and "r3fresh" not in message and "s3cret" not in message


@pytest.mark.asyncio
async def test_revocation(serve: Serve) -> None:
    server = await serve(lambda method, path, body: "trickle-head")
    async with client_for(server) as client:
        work = revoke_token(
            client,
            CREDS,
            f"{server.base}/secret/revoke",
            "t0ken",
            "access_token",
            max_bytes=10_000,
        )
        message = await late(work, server, "token revocation answer")
    assert "t0ken" not in message


@pytest.mark.asyncio
async def test_sign_in_probe(serve: Serve) -> None:
    server = await serve(lambda method, path, body: "trickle-head")
    async with client_for(server) as client:
        work = probe(client, f"{server.base}/secret/mcp")
        await late(work, server, "answer to initialize")


# -- MCP session --------------------------------------------------------------------------


def mcp_route(slow: str) -> Route:
    """An MCP server that answers every method at once except ``slow``, trickled."""

    def route(method: str, path: str, body: dict[str, Any] | None) -> Answer:
        name = (body or {}).get("method")
        if name == slow:
            return "trickle-body"
        if name == "initialize":
            result = {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "slow", "version": "1"},
            }
            return {"jsonrpc": "2.0", "id": (body or {}).get("id"), "result": result}
        if name == "tools/list":
            tools = [{"name": "echo", "inputSchema": {"type": "object"}}]
            return {"jsonrpc": "2.0", "id": (body or {}).get("id"), "result": {"tools": tools}}
        return "accepted"

    return route


@pytest.mark.parametrize(
    ("slow", "step"),
    [
        ("initialize", "(initialize, opening the MCP session)"),
        ("tools/list", "(tools/list)"),
        ("tools/call", "(tools/call)"),
    ],
)
@pytest.mark.asyncio
async def test_mcp_session(serve: Serve, slow: str, step: str) -> None:
    """The session's own deadline (``upstream_call_timeout`` in the gateway) bounds each
    request, head and body; the client's per-step timeouts are far longer."""
    server = await serve(mcp_route(slow))

    async def no_headers(stale: str | None) -> dict[str, str]:
        return {}

    session = UpstreamSession(
        "test",
        f"{server.base}/secret/mcp",
        lambda **kw: client_for(server, timeout=30.0, **kw),
        no_headers,
        timeout=DEADLINE,
        listen=False,
    )
    try:
        if slow == "tools/call":
            await session.list_tools()
            work: Awaitable[Any] = session.call_tool("echo", {})
        else:
            work = session.list_tools()
        message = await late(work, server, step)
    finally:
        await session.close()
    assert message.startswith(f"127.0.0.1:{server.port} did not answer within 1 s")
