"""The SSRF guard (dodo_jupyter.net.addresses, .policy, .guard).

No test sends a packet anywhere but 127.0.0.1. Private and metadata addresses are tested
through the pure decision functions, and end to end only through a StaticResolver whose
answers the guard must refuse *before* connecting: those tests use an inner transport
that fails the test if it is ever asked to send. Real servers bind 127.0.0.1 only;
127.0.0.2 is used as "a loopback address that is not allowed" and is never contacted.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import pytest_asyncio

from dodo_jupyter.exceptions import (
    Forbidden,
    OutboundRefused,
    ResponseTooLarge,
    UpstreamError,
    ValidationFailed,
)
from dodo_jupyter.net import addresses, guard, policy, transport
from dodo_jupyter.net.addresses import parse_host_ip, refusal_reason
from dodo_jupyter.net.guard import (
    GuardedTransport,
    OutboundPolicy,
    StaticResolver,
    SystemResolver,
    check_url,
    default_tls,
    get_json,
    guarded_client,
    pin,
    read_limited,
)
from dodo_jupyter.net.policy import parse_target, safe_url
from dodo_jupyter.net.transport import CONNECT_TO, PooledTransport

# -- pure address rules -------------------------------------------------------------------

REFUSED = [
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.1", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("2001:db8::1", "documentation"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "ECS task metadata"),
    ("fd00:ec2::254", "AWS instance metadata"),
    ("100.100.100.200", "Alibaba Cloud metadata"),
    ("168.63.129.16", "Azure"),
    ("fec0::1", "site-local"),
    ("::ffff:10.0.0.1", "IPv4-mapped address embedding 10.0.0.1, a private"),
    ("::ffff:169.254.169.254", "IPv4-mapped address embedding 169.254.169.254, the cloud"),
    ("::ffff:127.0.0.1", "IPv4-mapped address embedding 127.0.0.1, a loopback"),
    ("::10.0.0.1", "IPv4-compatible"),
    ("::8.8.8.8", "IPv4-compatible"),
    ("64:ff9b::a00:1", "NAT64 address embedding 10.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 address embedding 169.254.169.254, the cloud"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("2002:a00:1::1", "6to4 address embedding 10.0.0.1"),
    ("2002:a9fe:a9fe::", "6to4 address embedding 169.254.169.254"),
    ("2001::1", "Teredo"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
]


@pytest.mark.parametrize(("address", "expected"), REFUSED)
def test_refusal_reason_refuses(address: str, expected: str) -> None:
    reason = refusal_reason(ipaddress.ip_address(address), allow_loopback=False)
    assert reason is not None and expected in reason, reason


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700::1111", "64:ff9b::808:808"]
)
def test_refusal_reason_allows_public_addresses(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_loopback=False) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_loopback_only_with_the_flag(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert refusal_reason(ip, allow_loopback=False) is not None
    assert refusal_reason(ip, allow_loopback=True) is None


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "::ffff:192.168.0.1"])
def test_allow_loopback_does_not_open_private_ranges(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_loopback=True) is not None


def test_scoped_ipv6_address_is_refused() -> None:
    assert "scoped" in (
        refusal_reason(ipaddress.ip_address("2606:4700::1%eth0"), allow_loopback=True) or ""
    )


ODD_SPELLINGS = [
    ("2130706433", "127.0.0.1"),  # decimal
    ("0x7f000001", "127.0.0.1"),  # hex
    ("0X7F000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),  # octal
    ("0177.0000.0000.0001", "127.0.0.1"),
    ("127.1", "127.0.0.1"),  # short
    ("127.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),  # mixed
    ("0x7f.0.0.0x1", "127.0.0.1"),
    ("167772161", "10.0.0.1"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("0251.0376.0251.0376", "169.254.169.254"),
    ("10.1", "10.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),  # trailing dot
    ("0", "0.0.0.0"),  # noqa: S104
]


@pytest.mark.parametrize(("spelling", "address"), ODD_SPELLINGS)
def test_parse_host_ip_reads_like_inet_aton(spelling: str, address: str) -> None:
    assert parse_host_ip(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:10.0.0.1]", "::ffff:a00:1"),
        ("8.8.8.8", "8.8.8.8"),
    ],
)
def test_parse_host_ip_plain_and_ipv6(host: str, address: str) -> None:
    assert parse_host_ip(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "localhost", "a1.b2", "0x7f.example", "[x]"])
def test_parse_host_ip_names(host: str) -> None:
    assert parse_host_ip(host) is None


@pytest.mark.parametrize("host", ["fe80::1%eth0", "[fe80::1%25eth0]", "[::1%lo]"])
def test_parse_host_ip_refuses_zone_ids(host: str) -> None:
    with pytest.raises(OutboundRefused, match="zone ids"):
        parse_host_ip(host)


@pytest.mark.parametrize(
    "host", ["256.1.1.1", "08.0.0.1", "1.2.3.4.5", "0x", "1.2.0x100.1", "4294967296"]
)
def test_parse_host_ip_refuses_invalid_numeric_hosts(host: str) -> None:
    with pytest.raises(OutboundRefused, match="not a valid one"):
        parse_host_ip(host)


# -- URL rules ----------------------------------------------------------------------------


def make_policy(*hosts: str, loopback: bool = False, **kwargs: Any) -> OutboundPolicy:
    return OutboundPolicy(
        allowed_hosts=frozenset(hosts),
        allow_insecure_loopback=loopback,
        resolver=kwargs.pop("resolver", StaticResolver({})),
        **kwargs,
    )


def refused(url: str, pol: OutboundPolicy, match: str) -> OutboundRefused:
    with pytest.raises(OutboundRefused, match=match) as info:
        check_url(url, pol)
    assert isinstance(info.value, Forbidden)
    assert info.value.status == 403 and info.value.code == "outbound_refused"
    return info.value


def test_allowed_https_url_passes_unchanged() -> None:
    url = "https://Auth.Example.com/oauth/token?x=1"
    assert check_url(url, make_policy("auth.example.com")) == url


@pytest.mark.parametrize(
    ("spelling", "address"), [pair for pair in ODD_SPELLINGS if not pair[0].endswith(".")]
)
def test_odd_ipv4_spellings_refused_even_when_the_address_is_allowed(
    spelling: str, address: str
) -> None:
    pol = make_policy(address, loopback=True)
    refused(f"http://{spelling}/", pol, f"unusual spelling of the IPv4 address {address}")
    refused(f"https://{spelling}/", pol, f"write it as '{address}'")


def test_trailing_dot_is_the_same_host() -> None:
    pol = make_policy("127.0.0.1", "example.com", loopback=True)
    assert parse_target("http://127.0.0.1./", pol).host == "127.0.0.1"
    assert parse_target("https://example.com./", pol).host_header == "example.com"


def test_zone_id_in_url_refused() -> None:
    refused("https://[fe80::1%25eth0]/", make_policy("fe80::1"), "zone ids")


def test_credentials_in_url_refused_without_showing_them() -> None:
    error = refused(
        "https://alice:s3cret@auth.example.com/x", make_policy("auth.example.com"), "credentials"
    )
    assert "s3cret" not in error.message and "alice" not in error.message
    refused("https://token@auth.example.com/", make_policy("auth.example.com"), "credentials")


@pytest.mark.parametrize(
    "url", ["ftp://a.example/", "file:///etc/passwd", "gopher://a.example/", "a.example/x"]
)
def test_non_http_schemes_refused(url: str) -> None:
    refused(url, make_policy("a.example"), "scheme .* is not allowed; use https://")


@pytest.mark.parametrize("url", ["http://a.example/", "http://8.8.8.8/", "http://10.0.0.1/"])
def test_http_to_non_loopback_refused(url: str) -> None:
    refused(url, make_policy("a.example", "8.8.8.8", "10.0.0.1", loopback=True), "plain http")


@pytest.mark.parametrize("url", ["http://localhost:8888/", "http://127.0.0.1/", "http://[::1]:9/"])
def test_http_to_loopback_needs_the_flag(url: str) -> None:
    hosts = ("localhost", "127.0.0.1", "::1")
    refused(url, make_policy(*hosts), "allow_insecure_loopback=True")
    assert check_url(url, make_policy(*hosts, loopback=True)) == url


def test_disallowed_host_says_what_to_add() -> None:
    error = refused(
        "https://auth.example.com/token", make_policy("mcp.example.com"), "not an allowed"
    )
    assert "add 'auth.example.com' to the catalog entry's known_hosts" in error.message
    assert "DodoApp.allowed_hosts" in error.message
    error = refused("https://auth.example.com:8443/", make_policy(), "not an allowed")
    assert "add 'auth.example.com:8443'" in error.message


def test_messages_never_show_query_or_fragment() -> None:
    error = refused("https://evil.example/path?code=SECRET#frag", make_policy(), "not an allowed")
    assert "SECRET" not in error.message and "frag" not in error.message
    assert "'https://evil.example/path'" in error.message
    assert error.to_json()["url"] == "https://evil.example/path"
    assert safe_url("https://u:p@h.example:1/a?b=c#d") == "https://h.example:1/a"


def test_literal_ip_host_must_itself_be_listed() -> None:
    refused(
        "https://93.184.215.14/", make_policy("example.com"), "'93.184.215.14' is not an allowed"
    )
    assert check_url("https://93.184.215.14/", make_policy("93.184.215.14"))
    refused("https://[2606:4700::1]/", make_policy("example.com"), "not an allowed")
    assert check_url("https://[2606:4700:0::1]/", make_policy("2606:4700::1"))


def test_wildcards_match_subdomains_only() -> None:
    pol = make_policy("*.example.com")
    assert check_url("https://a.example.com/", pol)
    assert check_url("https://a.b.example.com/", pol)
    refused("https://example.com/", pol, "not an allowed")
    refused("https://badexample.com/", pol, "not an allowed")
    refused("https://example.com.evil.test/", pol, "not an allowed")
    refused("https://a.example.co/", pol, "not an allowed")


def test_exact_entries_do_not_match_subdomains() -> None:
    pol = make_policy("example.com")
    assert check_url("https://EXAMPLE.com./", pol)
    refused("https://a.example.com/", pol, "not an allowed")


def test_port_specific_entries() -> None:
    pol = make_policy(
        "api.example.com:8443", "auth.example.com:443", "any.example.com", "[2606:4700::1]:8443"
    )
    assert check_url("https://api.example.com:8443/", pol)
    refused("https://api.example.com/", pol, "not an allowed")
    refused("https://api.example.com:9443/", pol, "not an allowed")
    assert check_url("https://auth.example.com/", pol)  # 443 is https's default
    assert check_url("https://auth.example.com:443/", pol)
    refused("https://auth.example.com:8443/", pol, "not an allowed")
    assert check_url("https://any.example.com:1234/", pol)  # no port: any port
    assert check_url("https://[2606:4700::1]:8443/", pol)
    refused("https://[2606:4700::1]/", pol, "not an allowed")


def test_international_names_are_compared_idna_encoded() -> None:
    pol = make_policy("bücher.example")
    assert pol.allowed_hosts == frozenset({"xn--bcher-kva.example"})
    assert parse_target("https://BÜCHER.example/", pol).host == "xn--bcher-kva.example"
    assert check_url("https://xn--bcher-kva.example/", pol)


@pytest.mark.parametrize(
    "url",
    [
        "https://a b.example/",
        "https://a.example\\@b.example/",
        "https://exa%6dple.com/",
        "https://:443/",
    ],
)
def test_malformed_hosts_refused(url: str) -> None:
    with pytest.raises(OutboundRefused):
        check_url(url, make_policy("a.example", "example.com", "b.example"))


def test_target_parts() -> None:
    target = parse_target("https://API.example.com:8443/v1?q=1", make_policy("api.example.com"))
    assert (target.scheme, target.host, target.port, target.ip) == (
        "https",
        "api.example.com",
        8443,
        None,
    )
    assert target.host_header == "api.example.com:8443"
    assert target.display == "https://API.example.com:8443/v1"
    target = parse_target("http://[::1]/", make_policy("::1", loopback=True))
    assert target.host_header == "[::1]" and target.ip == ipaddress.ip_address("::1")


# -- the policy object --------------------------------------------------------------------


def test_policy_normalises_entries_and_with_hosts_copies() -> None:
    pol = make_policy("Auth.Example.COM", "[::1]:8080", "0x7f.1", "*.Example.org:443")
    assert pol.allowed_hosts == frozenset(
        {"auth.example.com", "[::1]:8080", "127.0.0.1", "*.example.org:443"}
    )
    more = pol.with_hosts("mcp.example.net")
    assert "mcp.example.net" in more.allowed_hosts and "mcp.example.net" not in pol.allowed_hosts
    assert more.resolver is pol.resolver
    defaults = OutboundPolicy()
    assert isinstance(defaults.resolver, SystemResolver)
    assert (defaults.max_response_bytes, defaults.timeout, defaults.max_redirects) == (
        1_000_000,
        10.0,
        5,
    )


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "*.",
        "https://a.example",
        "a.example/x",
        "a.*.example",
        "a.example:0",
        "a.example:x",
        "[::1",
        "u@a.example",
        "*.10.0.0.1",
        "",
    ],
)
def test_policy_refuses_bad_entries(entry: str) -> None:
    with pytest.raises(ValidationFailed, match="Invalid allowed host"):
        make_policy(entry)


def test_policy_refuses_a_string_and_bad_limits() -> None:
    with pytest.raises(ValidationFailed, match="not the string"):
        OutboundPolicy(allowed_hosts="a.example")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        OutboundPolicy(timeout=0)
    with pytest.raises(ValueError, match="max_response_bytes"):
        OutboundPolicy(max_response_bytes=0)


# -- resolution and pinning decisions (no connection) -----------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("answers", "match"),
    [
        (["10.1.2.3"], "resolves to 10.1.2.3 is a private address"),
        (["169.254.169.254"], "metadata"),
        (["::ffff:10.0.0.1"], "IPv4-mapped address embedding 10.0.0.1"),
        (["127.0.0.1", "10.0.0.1"], "10.0.0.1 is a private"),
        (["93.184.215.14", "169.254.169.254"], "metadata"),
        (["64:ff9b::a9fe:a9fe"], "NAT64"),
        (["2002:a00:1::1"], "6to4"),
        (["::10.0.0.1"], "IPv4-compatible"),
        (["not-an-ip"], "not an IP address"),
        ([], "no address"),
    ],
)
async def test_pin_refuses_bad_answers(answers: list[str], match: str) -> None:
    pol = make_policy("mcp.test", loopback=True, resolver=StaticResolver({"mcp.test": answers}))
    with pytest.raises(OutboundRefused, match=match):
        await pin("https://mcp.test/mcp", pol)


@pytest.mark.asyncio
async def test_pin_judges_listed_literal_ips_without_resolving() -> None:
    pol = make_policy("10.0.0.1", "169.254.169.254", "8.8.8.8")  # empty StaticResolver
    with pytest.raises(OutboundRefused, match=r"10\.0\.0\.1 is a private address"):
        await pin("https://10.0.0.1/", pol)
    with pytest.raises(OutboundRefused, match="metadata"):
        await pin("https://169.254.169.254/latest/meta-data/", pol)
    assert (await pin("https://8.8.8.8/", pol)).address == ipaddress.ip_address("8.8.8.8")


@pytest.mark.asyncio
async def test_pin_picks_the_first_address_and_keeps_all() -> None:
    resolver = StaticResolver({"MCP.test": ["93.184.215.14", "2606:4700::1111"]})
    pinned = await pin("https://mcp.test/", make_policy("mcp.test", resolver=resolver))
    assert pinned.address == ipaddress.ip_address("93.184.215.14")
    assert [str(a) for a in pinned.addresses] == ["93.184.215.14", "2606:4700::1111"]


@pytest.mark.asyncio
async def test_loopback_answers_need_the_flag_and_plain_http_needs_loopback() -> None:
    resolver = StaticResolver({"mcp.test": ["127.0.0.1"], "localhost": ["93.184.215.14"]})
    with pytest.raises(OutboundRefused, match="allow_insecure_loopback"):
        await pin("https://mcp.test/", make_policy("mcp.test", resolver=resolver))
    with pytest.raises(OutboundRefused, match="not this machine"):
        await pin("http://localhost/", make_policy("localhost", loopback=True, resolver=resolver))


@pytest.mark.asyncio
async def test_static_resolver_refuses_unknown_names() -> None:
    with pytest.raises(OutboundRefused, match="not known to the StaticResolver"):
        await StaticResolver({"a.test": ["8.8.8.8"]}).resolve("b.test", 443)


@pytest.mark.asyncio
async def test_system_resolver_resolves_localhost_to_loopback() -> None:
    answers = await SystemResolver().resolve("localhost", 80)
    assert answers and all(ipaddress.ip_address(a).is_loopback for a in answers)
    assert len(answers) == len(set(answers))
    assert await SystemResolver().resolve("127.0.0.1", 80) == ["127.0.0.1"]


# -- end to end against a real server on 127.0.0.1 ----------------------------------------


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LoopbackServer:
    """A tiny HTTP/1.1 server on 127.0.0.1 with a few routes for the guard tests."""

    requests: list[Seen] = field(default_factory=list)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    port: int = 0
    server: asyncio.Server | None = None
    #: TCP connections accepted so far.
    connections: int = 0

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
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
        self.connections += 1
        try:
            while line := await reader.readline():
                method, target, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Seen(method, target, headers, body))
                await self._answer(writer, target, headers, body)
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()

    async def _answer(
        self, writer: asyncio.StreamWriter, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        path = urlsplit(target).path
        query = parse_qs(urlsplit(target).query)

        def send(status: str, body: bytes, *extra: str, length: bool = True) -> None:
            lines = [f"HTTP/1.1 {status}", *extra]
            if length:
                lines.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

        if path == "/echo":
            send("200 OK", body, "Content-Type: application/json")
        elif path == "/ok":
            body = json.dumps({"host": headers.get("host"), "path": path}).encode()
            send("200 OK", body, "Content-Type: application/json")
        elif path == "/redirect":
            send("302 Found", b"", f"Location: {query['to'][0]}")
        elif path == "/big":
            send("200 OK", b"x" * 5000)
        elif path == "/chunked":
            send("200 OK", b"", "Transfer-Encoding: chunked", length=False)
            for _ in range(10):
                writer.write(b"3e8\r\n" + b"y" * 1000 + b"\r\n")
            writer.write(b"0\r\n\r\n")
        elif path in ("/sse", "/sse-open"):
            # An MCP server's POST answer: the result event, then (a moment later) the end.
            send(
                "200 OK",
                b"",
                "Content-Type: text/event-stream",
                "Transfer-Encoding: chunked",
                length=False,
            )
            event = b"event: message\r\ndata: {}\r\n\r\n"
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.02 if path == "/sse" else 5)
            writer.write(b"0\r\n\r\n")
        elif path == "/slow":
            await asyncio.sleep(5)
            send("200 OK", b"{}")
        elif path == "/notjson":
            send("200 OK", b"<html>secret page</html>", "Content-Type: text/html")
        else:
            send("404 Not Found", b"{}")
        await writer.drain()


@pytest_asyncio.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    srv = LoopbackServer()
    await srv.start()
    yield srv
    await srv.stop()


@dataclass
class Sent:
    """A request as the guard handed it to the pool."""

    address: str
    url: httpx2.URL
    headers: httpx2.Headers
    extensions: dict[str, Any]


class Spy(PooledTransport):
    """dodo's pool, recording what the guard hands it before it sends."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(tls or default_tls())
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        address = str(request.extensions.get(CONNECT_TO))
        self.sent.append(
            Sent(address, request.url, request.headers.copy(), dict(request.extensions))
        )
        return await super().handle_async_request(request)


class Loud(PooledTransport):
    """Fails the test if the guard ever lets a request through to the network."""

    def __init__(self) -> None:
        super().__init__(default_tls())

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        pytest.fail(f"the guard let a request through to {request.url}")


def local_policy(server: LoopbackServer, *hosts: str, **kwargs: Any) -> OutboundPolicy:
    resolver = kwargs.pop("resolver", StaticResolver({"localhost": ["127.0.0.1"]}))
    return make_policy(
        f"localhost:{server.port}", *hosts, loopback=True, resolver=resolver, **kwargs
    )


@pytest.mark.asyncio
async def test_allowed_request_is_pinned_with_host_header_and_sni(server: LoopbackServer) -> None:
    spy = Spy()
    async with guarded_client(local_policy(server), inner=spy) as client:
        response = await client.get(f"http://localhost:{server.port}/ok?token=abc")
    assert response.status_code == 200
    assert response.json() == {"host": f"localhost:{server.port}", "path": "/ok"}
    (sent,) = spy.sent
    assert sent.address == "127.0.0.1" and sent.url.port == server.port  # pinned
    assert sent.url.query == b"token=abc"
    assert sent.headers["host"] == f"localhost:{server.port}"
    assert sent.extensions["sni_hostname"] == "localhost"
    assert "timeout" in sent.extensions
    assert str(response.request.url).startswith("http://localhost:")  # caller sees its URL
    assert server.requests[0].headers["host"] == f"localhost:{server.port}"


@pytest.mark.asyncio
async def test_request_bodies_pass_through_the_pin(server: LoopbackServer) -> None:
    async with guarded_client(local_policy(server)) as client:
        first = await client.post(f"http://localhost:{server.port}/echo", json={"a": 1})
        second = await client.put(f"http://localhost:{server.port}/echo", content=b"[2]")
    assert first.json() == {"a": 1} and second.json() == [2]
    assert [r.method for r in server.requests] == ["POST", "PUT"]
    assert server.requests[0].headers["content-type"] == "application/json"


class CountingResolver:
    """Answers from a list that the test may change, counting the lookups."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.lookups = 0

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups += 1
        return list(self.answers)


@pytest.mark.asyncio
async def test_a_pin_is_reused_for_a_while_and_a_refusal_is_not(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = CountingResolver(["10.0.0.1"])  # private: refused
    url = f"http://localhost:{server.port}/ok"
    async with guarded_client(local_policy(server, resolver=resolver)) as client:
        with pytest.raises(OutboundRefused, match="private"):
            await client.get(url)
        resolver.answers = ["127.0.0.1"]
        for _ in range(3):
            assert (await client.get(url)).status_code == 200
        assert resolver.lookups == 2  # the refusal was not remembered; the pin was
        # The name now points elsewhere: the remembered, judged address is still used.
        resolver.answers = ["10.0.0.2"]
        assert (await client.get(url)).status_code == 200
        assert resolver.lookups == 2
        # Once the pin expired, the name is resolved and judged again.
        monkeypatch.setattr(guard, "PIN_SECONDS", 0.0)
        with pytest.raises(OutboundRefused, match="private"):
            await client.get(url)
    assert resolver.lookups == 3
    assert len(server.requests) == 4


@pytest.mark.asyncio
async def test_falls_back_to_the_next_judged_address_when_connecting_fails(
    server: LoopbackServer,
) -> None:
    spy = Spy()
    resolver = StaticResolver({"localhost": ["::1", "127.0.0.1"]})  # the server is on v4 only
    async with guarded_client(local_policy(server, resolver=resolver), inner=spy) as client:
        response = await client.get(f"http://localhost:{server.port}/ok")
    assert response.status_code == 200
    assert [r.address for r in spy.sent] == ["::1", "127.0.0.1"]
    assert {r.headers["host"] for r in spy.sent} == {f"localhost:{server.port}"}


@pytest.mark.asyncio
async def test_literal_loopback_ip_is_not_resolved(server: LoopbackServer) -> None:
    pol = make_policy(f"127.0.0.1:{server.port}", loopback=True)  # empty resolver
    async with guarded_client(pol) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/ok")
    assert response.json()["host"] == f"127.0.0.1:{server.port}"


@pytest.mark.asyncio
async def test_loopback_address_outside_the_allowlist_is_refused_before_connecting(
    server: LoopbackServer,
) -> None:
    async with guarded_client(local_policy(server), inner=Loud()) as client:
        with pytest.raises(OutboundRefused, match=r"'127\.0\.0\.2:\d+' is not an allowed host"):
            await client.get(f"http://127.0.0.2:{server.port}/ok")
    async with guarded_client(make_policy(f"127.0.0.1:{server.port}"), inner=Loud()) as client:
        with pytest.raises(OutboundRefused, match="allow_insecure_loopback"):
            await client.get(f"http://127.0.0.1:{server.port}/ok")
    assert server.requests == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "answers",
    [
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["::ffff:10.0.0.1"],
        ["127.0.0.1", "10.0.0.1"],
        ["fd00:ec2::254"],
    ],
)
async def test_resolver_answers_are_refused_before_connecting(answers: list[str]) -> None:
    pol = make_policy("mcp.test", loopback=True, resolver=StaticResolver({"mcp.test": answers}))
    async with guarded_client(pol, inner=Loud()) as client:
        with pytest.raises(OutboundRefused, match=r"refused: 'mcp\.test' resolves to"):
            await client.get("https://mcp.test/mcp")
        with pytest.raises(OutboundRefused, match=r"refused: 'mcp\.test' resolves to"):
            await client.post("https://mcp.test/mcp", json={"jsonrpc": "2.0"})


@pytest.mark.asyncio
async def test_redirects_are_followed_through_the_guard(server: LoopbackServer) -> None:
    spy = Spy()
    base = f"http://localhost:{server.port}"
    async with guarded_client(local_policy(server), inner=spy) as client:
        response = await client.get(f"{base}/redirect", params={"to": f"{base}/ok"})
    assert response.status_code == 200 and len(response.history) == 1
    assert [r.address for r in spy.sent] == ["127.0.0.1", "127.0.0.1"]


@pytest.mark.asyncio
async def test_redirect_to_a_host_outside_the_allowlist_is_refused(server: LoopbackServer) -> None:
    spy = Spy()
    base = f"http://localhost:{server.port}"
    async with guarded_client(local_policy(server), inner=spy) as client:
        with pytest.raises(OutboundRefused, match=r"'127\.0\.0\.2:\d+' is not an allowed host"):
            await client.get(
                f"{base}/redirect", params={"to": f"http://127.0.0.2:{server.port}/ok"}
            )
        with pytest.raises(OutboundRefused, match="plain http"):
            await client.get(f"{base}/redirect", params={"to": "http://169.254.169.254/latest"})
    # even when an administrator lists the address, the address rule still refuses it
    pol = local_policy(server, "169.254.169.254")
    async with guarded_client(pol, inner=spy) as client:
        with pytest.raises(OutboundRefused, match="the cloud instance metadata endpoint"):
            await client.get(f"{base}/redirect", params={"to": "https://169.254.169.254/latest"})
    assert [r.target.split("?")[0] for r in server.requests] == ["/redirect"] * 3
    assert len(spy.sent) == 3


@pytest.mark.asyncio
async def test_redirect_limit_comes_from_the_policy(server: LoopbackServer) -> None:
    base = f"http://localhost:{server.port}"
    loop_url = f"{base}/redirect?to={base}/ok"
    async with guarded_client(local_policy(server, max_redirects=0)) as client:
        assert client.max_redirects == 0 and client.follow_redirects and not client.trust_env
        with pytest.raises(UpstreamError, match="redirected more than 0 times"):
            await get_json(client, loop_url, max_bytes=1000)


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/big", "/chunked"])
async def test_oversized_bodies_are_refused(server: LoopbackServer, path: str) -> None:
    async with guarded_client(local_policy(server)) as client:
        with pytest.raises(ResponseTooLarge, match="more than the limit of 1000 bytes") as info:
            await get_json(client, f"http://localhost:{server.port}{path}?k=SECRET", max_bytes=1000)
        async with client.stream("GET", f"http://localhost:{server.port}{path}") as response:
            assert len(await read_limited(response, 10_000)) in (5000, 10_000)
    assert info.value.status == 502 and info.value.code == "upstream_too_large"
    assert "SECRET" not in info.value.message
    if path == "/big":
        assert "5000 bytes (Content-Length)" in info.value.message


@pytest.mark.asyncio
async def test_slow_server_times_out_with_a_clear_message(server: LoopbackServer) -> None:
    async with guarded_client(local_policy(server, timeout=0.3)) as client:
        with pytest.raises(UpstreamError, match=r"did not answer within 0\.3 s; ") as info:
            await get_json(
                client, f"http://localhost:{server.port}/slow?code=SECRET", max_bytes=1000
            )
    assert info.value.status == 502 and "SECRET" not in info.value.message


@pytest.mark.asyncio
async def test_bad_json_is_an_upstream_error_without_the_body(server: LoopbackServer) -> None:
    async with guarded_client(local_policy(server)) as client:
        with pytest.raises(UpstreamError, match="HTTP 200 with a body that is not JSON") as info:
            await get_json(client, f"http://localhost:{server.port}/notjson", max_bytes=1000)
        response, data = await get_json(
            client, f"http://localhost:{server.port}/ok", max_bytes=1000
        )
    assert "secret page" not in info.value.message and info.value.code == "upstream_error"
    assert response.status_code == 200 and data["path"] == "/ok"


@pytest.mark.asyncio
async def test_connection_failure_is_an_upstream_error() -> None:
    with socket.socket() as sock:  # a port on 127.0.0.1 that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pol = make_policy(f"127.0.0.1:{port}", loopback=True)
    async with guarded_client(pol) as client:
        with pytest.raises(
            UpstreamError,
            match=r"Cannot reach 'http://127.0.0.1:\d+/x': the connection was refused",
        ):
            await get_json(client, f"http://127.0.0.1:{port}/x?t=SECRET", max_bytes=10)


@pytest.mark.asyncio
async def test_get_json_redirects_and_bounds_through_the_guard(server: LoopbackServer) -> None:
    async with guarded_client(local_policy(server)) as client:
        response, data = await get_json(
            client, f"http://localhost:{server.port}/ok", max_bytes=1000
        )
        assert isinstance(response, httpx2.Response) and data["host"] == f"localhost:{server.port}"
        with pytest.raises(OutboundRefused, match="not an allowed host"):
            await client.get(f"{'http'}://localhost:{server.port}/redirect?to=http://127.0.0.2/")
        with pytest.raises(UpstreamError, match="not JSON"):
            await get_json(client, f"http://localhost:{server.port}/notjson", max_bytes=1000)
        with pytest.raises(ResponseTooLarge):
            await get_json(client, f"http://localhost:{server.port}/chunked", max_bytes=1000)


async def _first_chunk_then_close(client: httpx2.AsyncClient, url: str) -> float:
    """POST, read up to the first event, close (as the MCP SDK does); seconds to close."""
    async with client.stream("POST", url, json={}) as response:
        assert response.headers["content-type"] == "text/event-stream"
        async for chunk in response.aiter_bytes():
            assert chunk.startswith(b"event: message")
            break
        started = asyncio.get_running_loop().time()
        await response.aclose()
        return asyncio.get_running_loop().time() - started


@pytest.mark.asyncio
async def test_sse_post_closed_after_its_result_keeps_the_connection(
    server: LoopbackServer,
) -> None:
    async with guarded_client(local_policy(server)) as client:
        for _ in range(3):
            await _first_chunk_then_close(client, f"http://localhost:{server.port}/sse")
    assert [r.target for r in server.requests] == ["/sse"] * 3
    assert server.connections == 1


@pytest.mark.asyncio
async def test_sse_post_that_does_not_end_is_closed_after_the_drain_limit(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "DRAIN_SECONDS", 0.1)
    async with guarded_client(local_policy(server)) as client:
        waited = await _first_chunk_then_close(client, f"http://localhost:{server.port}/sse-open")
        assert 0.05 < waited < 2
        await _first_chunk_then_close(client, f"http://localhost:{server.port}/sse")
    assert server.connections == 2


@pytest.mark.asyncio
async def test_clients_ignore_proxy_environment(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # would fail if it were used
    async with guarded_client(local_policy(server)) as client:
        assert (await client.get(f"http://localhost:{server.port}/ok")).status_code == 200


def test_clients_refuse_arguments_that_bypass_the_guard() -> None:
    pol = make_policy("a.example")
    arguments: list[dict[str, Any]] = [
        {"transport": Loud()},
        {"mounts": {}},
        {"proxy": "http://127.0.0.1:9"},
        {"verify": False},
        {"trust_env": True},
    ]
    for kwargs in arguments:
        with pytest.raises(TypeError, match="SSRF guard"):
            guarded_client(pol, **kwargs)


def test_client_timeout_defaults_to_the_policy() -> None:
    pol = make_policy("a.example", timeout=2.5)
    assert guarded_client(pol).timeout.read == 2.5
    assert guarded_client(pol, timeout=None).timeout.read == 2.5  # never unbounded
    assert guarded_client(pol, timeout=1.0).timeout.read == 1.0


# -- TLS: pinning keeps certificate verification on the host name -------------------------


def make_certificate(directory: Path, hostname: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest_asyncio.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[LoopbackServer, ssl.SSLContext]]:
    cert_path, key_path = make_certificate(tmp_path, "mcp.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    srv = LoopbackServer()
    await srv.start(server_context)
    yield srv, ssl.create_default_context(cafile=str(cert_path))
    await srv.stop()


@pytest.mark.asyncio
async def test_https_pinned_to_loopback_verifies_the_certificate_for_the_name(
    tls_server: tuple[LoopbackServer, ssl.SSLContext],
) -> None:
    srv, client_context = tls_server
    resolver = StaticResolver({"mcp.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    pol = make_policy("mcp.test", "other.test", loopback=True, resolver=resolver)
    spy = Spy(client_context)
    async with guarded_client(pol, inner=spy) as client:
        _, data = await get_json(client, f"https://mcp.test:{srv.port}/ok", max_bytes=1000)
    assert data["host"] == f"mcp.test:{srv.port}"
    assert (
        spy.sent[0].address == "127.0.0.1" and spy.sent[0].extensions["sni_hostname"] == "mcp.test"
    )
    # the same address under another name: the certificate does not cover it
    async with guarded_client(pol, inner=PooledTransport(client_context)) as client:
        with pytest.raises(
            UpstreamError,
            match=r"Cannot reach 'https://other\.test:\d+/ok': the TLS certificate was not "
            r"accepted \(Hostname mismatch",
        ):
            await get_json(client, f"https://other.test:{srv.port}/ok", max_bytes=1000)


@pytest.mark.asyncio
async def test_default_transport_keeps_one_pool_per_host() -> None:
    resolver = StaticResolver({"mcp.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    pol = make_policy("mcp.test", "other.test", loopback=True, resolver=resolver)
    transport = GuardedTransport(pol)
    for host in ("mcp.test", "other.test", "mcp.test"):
        transport._transport_for(parse_target(f"https://{host}:8443/", pol))
    assert sorted(transport._pools) == [("https", "mcp.test", 8443), ("https", "other.test", 8443)]
    await transport.aclose()
    assert transport._pools == {}


# -- exports --------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [addresses, policy, guard])
def test_exported_members(module: Any) -> None:
    for name in module.__all__:
        assert hasattr(module, name), name
