"""A failed exchange reaches a person as what happened at which host ("the connection
was refused", "the connection was reset", "the TLS certificate was not accepted
(self-signed certificate)"), never as an exception class, an HTTP library's wording or
a validation dump (:func:`dodo_jupyter.net.failures.describe_failure`).

Every failure is real, on 127.0.0.1: a port nobody listens on, a server that resets or
closes the connection, a TLS server with a self-signed certificate, a plain-HTTP server
behind an https URL. They are driven through the REST API (``start-auth`` answers 502),
an MCP session and the guarded client. REST tests run on pytest-jupyter's loop (not
marked), with their servers started on that loop.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from dodo_jupyter.exceptions import UpstreamError
from dodo_jupyter.net.failures import UNEXPECTED, describe_failure
from dodo_jupyter.net.guard import OutboundPolicy, get_json, guarded_client
from dodo_jupyter.oauth.discovery import fetch_json
from dodo_jupyter.upstream.short import Upstream

from .conftest import Api
from .scripted_server import Peer, ScriptedServer, Serve
from .test_net_guard import make_certificate

START = "dodo/api/mcp/start-auth"
ADMIN = "dodo/api/admin/approved-mcps"

#: What no message to a person may carry.
INTERNALS = re.compile(
    r"[A-Z][a-z]+(Error|Exception)\b|httpx|httpcore|pydantic|errors\.pydantic\.dev"
    r"|Traceback|_ssl\.c|\[SSL|Errno"
)


def assert_plain(message: str) -> None:
    assert not INTERNALS.search(message), message


async def resets(peer: Peer) -> None:
    """Read the request, then reset the connection (RST, not a clean close)."""
    await peer.request()
    peer.reset()


async def hangs_up(peer: Peer) -> None:
    """Read the request and close the connection without a word."""
    await peer.request()


async def speaks_plain_http(peer: Peer) -> None:
    """Answer whatever arrives (a TLS ClientHello) with plain HTTP."""
    await peer.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def closed_port() -> int:
    with socket.socket() as sock:  # a port on 127.0.0.1 that nobody listens on
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    cert_path, key_path = make_certificate(tmp_path, "mcp.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


def loopback_policy(port: int) -> OutboundPolicy:
    return OutboundPolicy(
        allowed_hosts=frozenset({f"127.0.0.1:{port}"}), allow_insecure_loopback=True, timeout=5.0
    )


# -- an MCP session and the guarded client ------------------------------------------------

REFUSED = "the connection was refused (is the server running on that port?)"
CASES = {
    "reset": (resets, None, "http", "the connection was reset"),
    "hangs up": (
        hangs_up,
        None,
        "http",
        "the server closed the connection before its answer was complete",
    ),
    "self-signed": (
        hangs_up,
        "tls",
        "https",
        "the TLS certificate was not accepted (self-signed certificate)",
    ),
    "not TLS": (speaks_plain_http, None, "https", "the TLS handshake failed (does the port"),
}


async def url_for(case: str, serve: Serve, tmp_path: Path) -> tuple[str, str, str]:
    """(URL, host:port shown, expected phrase) of a server that fails as ``case`` says."""
    if case == "refused":
        port = closed_port()
        return f"http://127.0.0.1:{port}/mcp", f"127.0.0.1:{port}", REFUSED
    script, tls, scheme, phrase = CASES[case]
    server = await serve(script, tls=self_signed(tmp_path) if tls else None)
    return server.url(host="127.0.0.1", scheme=scheme), f"127.0.0.1:{server.port}", phrase


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["refused", *CASES])
async def test_an_mcp_session_names_the_host_and_what_happened(
    case: str, serve: Serve, tmp_path: Path
) -> None:
    url, host, phrase = await url_for(case, serve, tmp_path)
    port = int(host.rsplit(":", 1)[1])
    upstream = Upstream(
        lambda **kwargs: guarded_client(loopback_policy(port), **kwargs), url, {}, timeout=5.0
    )
    with pytest.raises(UpstreamError) as failed:
        await upstream.list_tools()
    message = failed.value.message
    assert message.startswith(f"Cannot open an MCP session: The MCP server at {host} "), message
    assert phrase in message
    assert_plain(message)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["refused", *CASES])
async def test_the_guarded_client_names_the_url_and_what_happened(
    case: str, serve: Serve, tmp_path: Path
) -> None:
    url, host, phrase = await url_for(case, serve, tmp_path)
    port = int(host.rsplit(":", 1)[1])
    async with guarded_client(loopback_policy(port)) as client:
        with pytest.raises(UpstreamError) as failed:
            await get_json(client, url + "?code=SECRET", max_bytes=1000)
    message = failed.value.message
    assert message.startswith(f"Cannot reach {url!r}: {phrase}"), message
    assert "SECRET" not in message
    assert_plain(message)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["refused", "reset"])
async def test_oauth_discovery_names_the_url_and_what_happened(
    case: str, serve: Serve, tmp_path: Path
) -> None:
    url, host, phrase = await url_for(case, serve, tmp_path)
    port = int(host.rsplit(":", 1)[1])
    async with guarded_client(loopback_policy(port)) as client:
        with pytest.raises(UpstreamError) as failed:
            await fetch_json(client, url + "?state=SECRET", "authorization server metadata")
    assert failed.value.message == f"Cannot reach {url}: {phrase}."
    assert_plain(failed.value.message)


def test_a_failure_dodo_does_not_know_is_not_described_by_its_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = KeyError("token_endpoint")
    assert describe_failure(error) == UNEXPECTED
    assert "KeyError" in caplog.text  # the details are in the log
    group = ExceptionGroup("two", [httpx2.ReadTimeout("slow"), error])
    assert describe_failure(group) == f"no answer in time; {UNEXPECTED}"


# -- the REST API -------------------------------------------------------------------------


@pytest.fixture
def failing(
    jp_asyncio_loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> Iterator[dict[str, tuple[str, str]]]:
    """Failing servers on the Jupyter server's loop: case → (URL, expected phrase)."""
    servers: list[ScriptedServer] = []
    urls = {}
    port = closed_port()
    urls["refused"] = (f"http://127.0.0.1:{port}/mcp", REFUSED)
    for case in ("reset", "self-signed"):
        script, tls, scheme, phrase = CASES[case]
        server = ScriptedServer(script)
        jp_asyncio_loop.run_until_complete(server.start(self_signed(tmp_path) if tls else None))
        servers.append(server)
        urls[case] = (server.url(host="127.0.0.1", scheme=scheme), phrase)
    yield urls
    for server in servers:
        jp_asyncio_loop.run_until_complete(server.stop())


@pytest.mark.parametrize("case", ["refused", "reset", "self-signed"])
async def test_start_auth_answers_502_naming_the_host_and_what_happened(
    api: Api, failing: dict[str, tuple[str, str]], case: str
) -> None:
    url, phrase = failing[case]
    host = url.split("/")[2]
    assert (await api("POST", ADMIN, {"id": "broken", "url": url}))[0] == 201
    status, body = await api("POST", START, {"catalog_id": "broken"})
    assert status == 502 and body["error"] == "upstream_error", body
    assert body["message"] == f"The MCP server at {host} did not answer: {phrase}.", body
    assert_plain(json_text(body))


def json_text(body: Any) -> str:
    import json

    return json.dumps(body)
