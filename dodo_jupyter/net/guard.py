"""The SSRF guard: every outbound HTTP request of dodo_jupyter goes through it.

Use :func:`guarded_client` (an ``httpx2`` client, the HTTP client the MCP SDK uses)
instead of building clients by hand::

    policy = OutboundPolicy(allowed_hosts=frozenset({"mcp.example.com"}))
    async with guarded_client(policy) as client:
        response, metadata = await get_json(client, url, max_bytes=policy.max_response_bytes)

For each request, including every redirect hop the client follows, the guarded transport:

1. checks the URL against the policy (:func:`~dodo_jupyter.net.policy.check_url`:
   https, no credentials, an allowed host);
2. resolves the host through ``policy.resolver`` (a literal IP is not resolved);
3. judges *every* address (:func:`~dodo_jupyter.net.addresses.refusal_reason`) and
   refuses if any one is private, loopback, link-local or metadata, so a DNS answer that
   mixes a public and a private address cannot win a race; a plain-http request must
   resolve to loopback addresses only;
4. pins the connection: the request is sent to the first judged address (the next ones
   only if connecting fails, when nothing has been sent yet), with the ``Host`` header
   kept as the original ``host[:port]`` and the ``sni_hostname`` extension set to the
   host, so TLS still verifies the certificate against the name. A second DNS lookup
   (DNS rebinding) never happens.

A transport remembers each URL's pin for :data:`PIN_SECONDS` (so a session's next POST
neither resolves the name again, a thread hop and often a DNS query, nor judges the
same addresses again); a refusal is never remembered.

Without an explicit ``inner`` transport the guard keeps one connection pool per
(scheme, host, port): a TLS connection verified for one host name is never reused for
another name that happens to resolve to the same address. Those pools share one default
TLS context (:func:`default_tls`, built at first use), which verifies exactly as httpx2's
own would: loading the CA bundle costs about 20 ms, once
per process instead of once per pool (an MCP session opens a pool). The httpx2 pools
are dodo's own (:class:`~.transport.PooledTransport`), which also keep MCP connections
alive.

The clients ignore proxy environment variables (``trust_env=False``): a proxy would make
the connection to an address the guard never judged. Bodies are read with a size bound
(:func:`read_limited`, :func:`get_json`).

Every exchange also has a total deadline, on top of httpx2's timeouts per step (which a
server that sends one byte at a time never trips): the guarded client puts a
:class:`~.deadline.DeadlineTransport` over the guard, so the answer's head, name
resolution included, must arrive within the request's connect, write and read timeouts
added up; a body read by :func:`read_limited` must arrive within its read timeout.
Streams a caller reads itself (an MCP session's event streams) are bounded by that
caller's own deadline. The OAuth steps put each whole exchange, head and body, under one
deadline that names the host and the step (:func:`~.deadline.exchange_deadline`).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import ssl
import time
from typing import Any

import httpx2

from ..exceptions import OutboundRefused, ResponseTooLarge, UpstreamError
from .addresses import IPAddress, refusal_reason
from .deadline import DeadlineTransport
from .failures import describe_failure
from .policy import (
    OutboundPolicy,
    Resolver,
    StaticResolver,
    SystemResolver,
    Target,
    check_url,
    parse_target,
    safe_url,
)
from .transport import CONNECT_TO, PooledTransport, request_timeouts

__all__ = [
    "MAX_PINS",
    "PIN_SECONDS",
    "GuardedTransport",
    "OutboundPolicy",
    "Pin",
    "PinCache",
    "Resolver",
    "StaticResolver",
    "SystemResolver",
    "check_url",
    "default_tls",
    "get_json",
    "guarded_client",
    "pin",
    "read_limited",
]

#: Client arguments that would let a request bypass the guard or be silently ignored.
_REFUSED_CLIENT_ARGS = frozenset(
    {"transport", "mounts", "proxy", "trust_env", "app", "verify", "cert", "http1", "http2"}
)


class Pin:
    """Where a guarded request really goes: the checked target and its judged addresses."""

    __slots__ = ("address", "addresses", "target")

    def __init__(self, target: Target, addresses: tuple[IPAddress, ...]) -> None:
        self.target = target
        self.addresses = addresses
        #: the address the connection is made to (the first one)
        self.address = addresses[0]

    def __repr__(self) -> str:
        return f"Pin({self.target.display!r} -> {self.address})"


async def pin(url: str, policy: OutboundPolicy) -> Pin:
    """Check ``url``, resolve its host and judge every address; no connection is made.

    Raises
    ------
    OutboundRefused
        when the URL breaks a rule or any address may not be contacted.
    UpstreamError
        when the host name cannot be resolved.
    """
    target = parse_target(url, policy)
    if target.ip is not None:
        answers: list[str] = [str(target.ip)]
    else:
        answers = await policy.resolver.resolve(target.host, target.port)
    shown = target.display

    def refuse(reason: str) -> OutboundRefused:
        return OutboundRefused(f"Outbound request to {shown!r} refused: {reason}", url=shown)

    if not answers:
        raise refuse(f"host {target.host!r} resolved to no address")
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            ip = ipaddress.ip_address(answer)
        except ValueError:
            raise refuse(f"the resolver returned {answer!r}, which is not an IP address") from None
        why = refusal_reason(ip, allow_loopback=policy.allow_insecure_loopback)
        if why is not None:
            hint = (
                "set DodoApp.allow_insecure_loopback=True (development only)"
                if _is_loopback(ip)
                else "dodo_jupyter only connects to public addresses"
            )
            named = "" if target.ip is not None else f"{target.host!r} resolves to "
            raise refuse(f"{named}{ip} is {why}; {hint}")
        if target.scheme == "http" and not _is_loopback(ip):
            raise refuse(
                f"{target.host!r} resolves to {ip}, which is not this machine; "
                "plain http is only for loopback, use https://"
            )
        addresses.append(ip)
    return Pin(target, tuple(addresses))


def _is_loopback(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


@functools.cache
def default_tls() -> ssl.SSLContext:
    """The TLS context httpx2 builds for ``verify=True`` (certificates and host names
    verified against the default CA bundle), built once and shared."""
    return httpx2.create_ssl_context()


def _default_inner() -> PooledTransport:
    return PooledTransport(default_tls())


#: How long a transport reuses a URL's pin (its judged addresses), in seconds.
PIN_SECONDS = 30.0
#: The most pins a transport remembers; it forgets them all when full.
MAX_PINS = 256


class PinCache:
    """:func:`pin` under one policy, each URL's pin remembered for :data:`PIN_SECONDS`
    (a refusal is never remembered)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self._pins: dict[str, tuple[float, Pin]] = {}

    async def pin(self, url: str) -> Pin:
        now = time.monotonic()
        known = self._pins.get(url)
        if known is not None and now - known[0] < PIN_SECONDS:
            return known[1]
        pinned = await pin(url, self.policy)
        if len(self._pins) >= MAX_PINS:
            self._pins.clear()
        self._pins[url] = (now, pinned)
        return pinned


class GuardedTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport that applies ``policy`` to every request (see the module doc).

    Parameters
    ----------
    policy
        What may be contacted.
    inner
        The pool that really sends (tests, custom TLS); the guard owns and closes it.
        Default: one :class:`~.transport.PooledTransport` per (scheme, host, port). It is
        always dodo's pool: only that one connects where the guard says
        (:data:`~.transport.CONNECT_TO`), so no other transport can skip the pin.
    """

    def __init__(self, policy: OutboundPolicy, *, inner: PooledTransport | None = None) -> None:
        self.policy = policy
        self._inner = inner
        self._pools: dict[tuple[str, str, int], PooledTransport] = {}
        self._pins = PinCache(policy)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        pinned = await self._pins.pin(str(request.url))
        target = pinned.target
        transport = self._transport_for(target)
        for i, address in enumerate(pinned.addresses):
            try:
                return await transport.handle_async_request(self._pinned(request, target, address))
            except httpx2.ConnectError:
                # Nothing was sent; the next judged address may answer ("localhost" often
                # gives ::1 first while a development server listens on 127.0.0.1 only).
                if i == len(pinned.addresses) - 1:
                    raise
        raise AssertionError("unreachable: pin() returns at least one address")

    @staticmethod
    def _pinned(request: httpx2.Request, target: Target, address: IPAddress) -> httpx2.Request:
        """``request`` pinned to ``address``: the pool is told where to connect
        (:data:`~.transport.CONNECT_TO`); the ``Host`` header and the TLS name stay the
        original host."""
        request.headers["Host"] = target.host_header
        request.extensions["sni_hostname"] = target.host
        request.extensions[CONNECT_TO] = str(address)
        return request

    def _transport_for(self, target: Target) -> PooledTransport:
        if self._inner is not None:
            return self._inner
        key = (target.scheme, target.host, target.port)
        if key not in self._pools:
            self._pools[key] = _default_inner()
        return self._pools[key]

    async def aclose(self) -> None:
        transports = [self._inner, *self._pools.values()]
        self._pools.clear()
        for transport in transports:
            if transport is not None:
                await transport.aclose()


def _client_kwargs(policy: OutboundPolicy, kwargs: dict[str, Any]) -> dict[str, Any]:
    refused = sorted(_REFUSED_CLIENT_ARGS & kwargs.keys())
    if refused:
        raise TypeError(
            f"guarded clients do not take {refused!r}: every request must go through the "
            "SSRF guard without a proxy; for custom TLS or connection settings pass "
            "inner=PooledTransport(<an ssl.SSLContext>)"
        )
    if kwargs.get("timeout") is None:  # None means "the policy's"; never unbounded
        kwargs["timeout"] = policy.timeout
    kwargs.setdefault("follow_redirects", True)
    kwargs.setdefault("max_redirects", policy.max_redirects)
    return kwargs


def guarded_client(
    policy: OutboundPolicy, *, inner: PooledTransport | None = None, **kwargs: Any
) -> httpx2.AsyncClient:
    """An ``httpx2.AsyncClient`` whose every request goes through :class:`GuardedTransport`,
    within a total deadline on the answer's head (:class:`~.deadline.DeadlineTransport`).

    Timeout (``timeout=None`` also means the policy's), redirect following and the
    redirect limit come from ``policy`` unless given; other ``kwargs`` (``headers``,
    ``auth``, ``base_url``…) go to the client. ``trust_env`` is always False. Wrapped as
    ``lambda headers=None, timeout=None, auth=None: guarded_client(policy, headers=headers,
    timeout=timeout, auth=auth)`` it fits the MCP SDK's ``httpx_client_factory``.

    Raises
    ------
    TypeError
        for arguments that would bypass the guard (``transport``, ``mounts``, ``proxy``…).
    """
    kwargs = _client_kwargs(policy, kwargs)
    transport = DeadlineTransport(GuardedTransport(policy, inner=inner))
    return httpx2.AsyncClient(transport=transport, trust_env=False, **kwargs)


def _request_of(response: httpx2.Response) -> httpx2.Request | None:
    try:
        return response.request
    except RuntimeError:  # a response built by hand has no request
        return None


def _shown(response: httpx2.Response) -> str:
    request = _request_of(response)
    return safe_url(str(request.url)) if request is not None else "(unknown URL)"


async def read_limited(response: httpx2.Response, max_bytes: int) -> bytes:
    """Read a streamed response body, refusing more than ``max_bytes`` (decoded), within
    the request's read timeout for the whole body.

    A ``Content-Length`` over the limit is refused before reading anything. Over the
    limit or the deadline the response is closed.

    Raises
    ------
    ResponseTooLarge
        naming the URL (without query) and the limit.
    httpx2.ReadTimeout
        when the whole body took longer than the read timeout.
    """
    request = _request_of(response)
    seconds = request_timeouts(request).get("read") if request is not None else None
    try:
        async with asyncio.timeout(seconds) as deadline:
            return await _read_bounded(response, max_bytes)
    except TimeoutError:
        if not deadline.expired():
            raise
        await response.aclose()
        raise httpx2.ReadTimeout(
            f"the answer's body did not arrive within {seconds:g} s", request=request
        ) from None


async def _read_bounded(response: httpx2.Response, max_bytes: int) -> bytes:

    async def too_large(size: str) -> ResponseTooLarge:
        await response.aclose()
        return ResponseTooLarge(
            f"{_shown(response)!r} answered with {size}, more than the limit of "
            f"{max_bytes} bytes; if this answer is legitimate, raise max_response_bytes",
            limit=max_bytes,
        )

    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise await too_large(f"{int(declared)} bytes (Content-Length)")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise await too_large(f"more than {max_bytes} bytes")
    return bytes(body)


async def get_json(
    client: httpx2.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    headers: dict[str, str] | None = None,
) -> tuple[httpx2.Response, Any]:
    """GET ``url`` and parse its JSON body, read with a size bound.

    The response is returned whatever its status (OAuth errors are JSON with a 4xx), so
    check ``response.status_code``; its body is already read.

    Raises
    ------
    OutboundRefused
        when the guard refuses the URL or a redirect.
    ResponseTooLarge
        when the body is larger than ``max_bytes``.
    UpstreamError
        on a timeout, a connection failure, too many redirects or a body that is not JSON;
        the message is short and never contains the query string or the body.
    """
    where = safe_url(url)
    try:
        async with client.stream("GET", url, headers=headers) as response:
            body = await read_limited(response, max_bytes)
    except httpx2.TimeoutException:
        seconds = client.timeout.read
        raise UpstreamError(
            f"{where!r} did not answer within {seconds} s; the server may be down or "
            "overloaded, try again later"
        ) from None
    except httpx2.TooManyRedirects:
        raise UpstreamError(
            f"{where!r} redirected more than {client.max_redirects} times; check the URL"
        ) from None
    except httpx2.InvalidURL:
        raise UpstreamError(f"{where!r} is not a usable URL; check it") from None
    except (httpx2.HTTPError, httpx2.StreamError) as e:
        raise UpstreamError(
            f"Cannot reach {where!r}: {describe_failure(e)}; check that the server is up "
            "and reachable from the machine running Jupyter"
        ) from None
    try:
        data = json.loads(body)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        reason = e.msg if isinstance(e, json.JSONDecodeError) else "not valid UTF-8"
        raise UpstreamError(
            f"{where!r} answered HTTP {response.status_code} with a body that is not JSON "
            f"({reason}); check that the URL points at the API, not a web page"
        ) from None
    return response, data
