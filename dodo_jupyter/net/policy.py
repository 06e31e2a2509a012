"""The outbound policy: which URLs dodo_jupyter may fetch, and how host names are resolved.

Every outbound request is judged twice. First the URL, without any network
(:func:`check_url`):

1. the scheme is ``https``; plain ``http`` only to this machine (``localhost``,
   ``*.localhost``, 127.0.0.0/8, ::1) and only with ``allow_insecure_loopback``;
2. no credentials (``user:password@``) in the URL;
3. the host, as typed (lowercased, IDNA-encoded), is in ``OutboundPolicy.allowed_hosts``.
   An entry is an exact name (``auth.example.com``), a wildcard that matches subdomains
   but not the apex (``*.example.com`` matches ``a.example.com`` and ``a.b.example.com``,
   not ``example.com``), or a literal IP; any entry may carry a port
   (``auth.example.com:8443``), which the URL's port (explicit or the scheme's default)
   must then equal. The matcher is :mod:`dodo_jupyter.net.hosts`, the one every host
   check of dodo uses;
4. a literal IP host must be written canonically: ``0x7f000001``, ``2130706433`` or
   ``127.1`` are refused even when 127.0.0.1 is allowed (see
   :func:`dodo_jupyter.net.addresses.parse_host_ip`).

Then the addresses, at connect time: :mod:`dodo_jupyter.net.guard` resolves the name
through ``OutboundPolicy.resolver``, refuses if *any* address is private, loopback,
link-local or metadata (:func:`~dodo_jupyter.net.addresses.refusal_reason`), and pins the
connection to the address it judged, so a DNS answer cannot change in between.

Messages never show a query string or credentials: URLs appear as scheme://host/path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from ..exceptions import OutboundRefused, UpstreamError, ValidationFailed
from .addresses import IPAddress, parse_host_ip
from .hosts import DEFAULT_PORTS, canonical_host, host_allowed, parse_host_rule
from .urls import MAX_URL_LENGTH, is_loopback_host

__all__ = [
    "DEFAULT_PORTS",
    "OutboundPolicy",
    "Resolver",
    "StaticResolver",
    "SystemResolver",
    "Target",
    "check_url",
    "parse_target",
    "safe_url",
]


class Resolver(Protocol):
    """Turns a host name into IP address strings. Swap it in tests; never trust it blindly:
    the guard judges every address it returns."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` for a TCP connection to ``port``, best first."""
        ...


class SystemResolver:
    """Resolves with the operating system (``getaddrinfo``, TCP), without blocking the loop."""

    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (socket.gaierror, UnicodeError) as e:
            reason = e.strerror if isinstance(e, socket.gaierror) else str(e)
            raise UpstreamError(
                f"Cannot resolve host {host!r} ({reason}); check the host name and the "
                "DNS settings of the machine running Jupyter"
            ) from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def __repr__(self) -> str:
        return "SystemResolver()"


class StaticResolver:
    """Answers from a fixed mapping of host name to addresses (tests and demos).

    Names are matched case-insensitively. A name that is not in the mapping is refused;
    nothing falls through to the real DNS.
    """

    def __init__(self, mapping: Mapping[str, Sequence[str]]) -> None:
        self.mapping = {host.lower(): list(addresses) for host, addresses in mapping.items()}

    async def resolve(self, host: str, port: int) -> list[str]:
        try:
            return list(self.mapping[host.lower()])
        except KeyError:
            raise OutboundRefused(
                f"Host {host!r} is not known to the StaticResolver; add it to the mapping "
                f"(known: {sorted(self.mapping)!r})"
            ) from None

    def __repr__(self) -> str:
        return f"StaticResolver({self.mapping!r})"


@dataclass(frozen=True)
class OutboundPolicy:
    """What dodo_jupyter may fetch. Build one per purpose (a catalog entry's hosts plus
    ``DodoApp.allowed_hosts``) and hand it to :func:`~dodo_jupyter.net.guard.guarded_client`.

    ``allowed_hosts`` entries are rules of :mod:`dodo_jupyter.net.hosts`, made canonical
    on construction (lowercase, IDNA, canonical IP); an entry that cannot be understood
    raises :class:`ValidationFailed`.
    """

    allowed_hosts: frozenset[str] = frozenset()
    allow_insecure_loopback: bool = False
    resolver: Resolver = field(default_factory=SystemResolver)
    max_response_bytes: int = 1_000_000
    timeout: float = 10.0
    max_redirects: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.allowed_hosts, str):
            raise ValidationFailed(
                f"allowed_hosts must be a set of host names, not the string {self.allowed_hosts!r}",
                fields={"allowed_hosts": "give a set of host names"},
            )
        hosts = frozenset(parse_host_rule(entry) for entry in self.allowed_hosts)
        object.__setattr__(self, "allowed_hosts", hosts)
        if self.max_response_bytes <= 0:
            raise ValueError(
                f"max_response_bytes must be positive, not {self.max_response_bytes!r}"
            )
        if self.timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be 0 or more, not {self.max_redirects!r}")

    def with_hosts(self, *hosts: str) -> OutboundPolicy:
        """A copy that also allows ``hosts`` (same syntax as ``allowed_hosts``)."""
        return dataclasses.replace(self, allowed_hosts=self.allowed_hosts | frozenset(hosts))

    def allows(self, host: str, port: int) -> bool:
        """True when ``host`` (normalised, as :func:`parse_target` gives it) and ``port``
        match an entry of ``allowed_hosts`` (:func:`~dodo_jupyter.net.hosts.host_allowed`)."""
        return host_allowed(self.allowed_hosts, host, port)


@dataclass(frozen=True)
class Target:
    """A URL that passed :func:`check_url`, taken apart for connecting."""

    scheme: str
    #: lowercase ASCII host without brackets (IDNA-encoded name or canonical IP)
    host: str
    #: the port to connect to (explicit, or the scheme's default)
    port: int
    #: the literal IP when the URL names one, else None (the host must be resolved)
    ip: IPAddress | None
    #: the ``Host`` header value: host, bracketed if IPv6, with the port when not default
    host_header: str
    #: scheme://host/path, safe to show (no credentials, query or fragment)
    display: str


def safe_url(url: str) -> str:
    """``scheme://host[:port]/path`` of ``url``: no credentials, query string or fragment,
    the path cut at 200 characters. Use it for every URL put in a message or a log line."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        path = parts.path if len(parts.path) <= 200 else parts.path[:200] + "…"
        return f"{parts.scheme}://{netloc}{path}" if parts.scheme else "(not a URL)"
    except ValueError:
        return "(not a URL)"


def check_url(url: str, policy: OutboundPolicy) -> str:
    """Apply the URL rules of ``policy`` (no network) and return ``url`` unchanged.

    Raises
    ------
    OutboundRefused
        saying which rule failed and what to change.
    """
    parse_target(url, policy)
    return url


def parse_target(url: str, policy: OutboundPolicy) -> Target:
    """Like :func:`check_url`, but return the parts the guard connects with."""
    shown = safe_url(url) if isinstance(url, str) else "(not a URL)"

    def refuse(reason: str) -> OutboundRefused:
        return OutboundRefused(f"Outbound request to {shown!r} refused: {reason}", url=shown)

    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise refuse(f"give an https:// URL of at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in url):
        raise refuse("the URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError as e:
        raise refuse(f"the URL cannot be parsed ({e})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise refuse(f"scheme {parts.scheme!r} is not allowed; use https://")
    if "@" in parts.netloc:
        raise refuse(
            "the URL contains credentials (user:password@); a secret never belongs in a "
            "URL: configure it as a header or use OAuth"
        )
    try:
        host = canonical_host(parts.hostname or "")
    except OutboundRefused as e:
        raise refuse(e.message) from None
    ip = parse_host_ip(host)
    port = explicit_port if explicit_port is not None else DEFAULT_PORTS[scheme]
    if scheme == "http":
        if not is_loopback_host(host):
            raise refuse(
                "plain http is only allowed to this machine (localhost, 127.0.0.1, ::1) "
                "for development; use https://"
            )
        if not policy.allow_insecure_loopback:
            raise refuse(
                "plain http to a loopback host needs DodoApp.allow_insecure_loopback=True "
                "(development and tests only)"
            )
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == DEFAULT_PORTS[scheme] else f"{bracketed}:{port}"
    if not policy.allows(host, port):
        entry = host_header if explicit_port is not None else host
        raise refuse(
            f"host {entry!r} is not an allowed host; add {entry!r} to the catalog entry's "
            "known_hosts or to DodoApp.allowed_hosts"
        )
    return Target(scheme, host, port, ip, host_header, shown)
