"""Host rules: which hosts (and ports) an allowlist entry admits.

This is the one matcher behind every host check, so that they cannot disagree:

* the outbound guard, on every request (:meth:`OutboundPolicy.allows
  <dodo_jupyter.net.policy.OutboundPolicy.allows>`);
* whether a user may connect a URL that no catalog entry names
  (``DodoApp.allowed_hosts``, in :mod:`dodo_jupyter.connections`);
* what a catalog entry's ``known_hosts`` and ``DodoApp.allowed_hosts`` may contain
  (:func:`parse_host_rule`, at validation and at start-up).

A **rule** is one of

``auth.example.com``    that name exactly (not its subdomains), on any port;
``*.example.com``       any subdomain (``a.example.com``, ``a.b.example.com``), not the apex;
``127.0.0.1``, ``::1``  that literal IP (a wildcard cannot precede an IP);

each optionally with a port (``auth.example.com:8443``, ``[::1]:8080``), which the URL's
port (explicit, or the scheme's default) must then equal.

Rules and hosts are compared in one canonical form: lowercase, without the DNS root's
trailing dot (``example.com.`` is ``example.com``), international names IDNA-encoded
(``bücher.example`` is ``xn--bcher-kva.example``), IPv6 compressed (``2606:4700:0::1``
is ``2606:4700::1``) and written in brackets only next to a port. A rule may spell an
IPv4 address oddly (``0x7f.1`` is 127.0.0.1: the administrator meant that address); a
URL may not (see :func:`canonical_host`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit

import idna

from ..exceptions import OutboundRefused, ValidationFailed
from .addresses import parse_host_ip

__all__ = [
    "DEFAULT_PORTS",
    "canonical_host",
    "host_allowed",
    "parse_host_rule",
    "parse_host_rules",
    "rule_for_url",
    "url_allowed",
    "url_host_port",
]

DEFAULT_PORTS = {"https": 443, "http": 80}

_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")


def canonical_host(host: str) -> str:
    """The canonical form of a URL's host (as ``urlsplit(url).hostname`` gives it).

    Raises
    ------
    OutboundRefused
        carrying the reason: no host, not a valid (international) name, an IPv6 zone id,
        or an IPv4 address spelt unusually (``0x7f000001``, ``2130706433``, ``127.1``
        reach 127.0.0.1 through ``getaddrinfo``, so they are refused rather than
        compared as names).
    """
    name = _canonical_name(host)
    ip = parse_host_ip(name)
    if ip is None:
        if ":" in name:
            raise OutboundRefused(f"{name!r} is not a valid IPv6 address")
        return name
    if isinstance(ip, ipaddress.IPv4Address) and str(ip) != name:
        raise OutboundRefused(
            f"{name!r} is an unusual spelling of the IPv4 address {ip}; write it as {str(ip)!r}"
        )
    return str(ip)


def url_host_port(url: str) -> tuple[str, int]:
    """(canonical host, port) of an ``http(s)://`` URL; the port is the explicit one or
    the scheme's default.

    Raises
    ------
    OutboundRefused
        carrying the reason, when the URL cannot be parsed, its scheme is not http(s) or
        its host is not valid (:func:`canonical_host`).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise OutboundRefused(f"the URL cannot be parsed ({e})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise OutboundRefused(f"scheme {parts.scheme!r} is not allowed; use https://")
    return canonical_host(parts.hostname or ""), port if port is not None else DEFAULT_PORTS[scheme]


def rule_for_url(url: str) -> str:
    """The rule that admits ``url``'s host: the host alone (any port), or ``host:port``
    when the URL names a port. Raises :class:`OutboundRefused` like :func:`url_host_port`."""
    host, port = url_host_port(url)
    if urlsplit(url).port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_host_rule(entry: object) -> str:
    """The canonical form of a rule (see the module docstring).

    Raises
    ------
    ValidationFailed
        naming the entry, the reason and the accepted forms (field ``allowed_hosts``).
    """

    def bad(reason: str) -> ValidationFailed:
        return ValidationFailed(
            f"Invalid allowed host {entry!r}: {reason}; write a host name "
            "('auth.example.com'), a wildcard ('*.example.com') or 'host:port'",
            fields={"allowed_hosts": reason},
        )

    if not isinstance(entry, str):
        raise bad("not a string")
    text = entry.strip().lower()
    port: int | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise bad("unbalanced brackets")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise bad(f"port {port_text!r} is not a number from 1 to 65535")
        port = int(port_text)
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    if "*" in name or "/" in name or "@" in name:
        raise bad("only a leading '*.' wildcard is allowed, and no scheme, path or user")
    try:
        ip = parse_host_ip(name)
        if ip is not None:
            if wildcard:
                raise bad("a wildcard cannot precede an IP address")
            name = str(ip)
        else:
            name = _canonical_name(name)
    except OutboundRefused as e:
        raise bad(e.message) from None
    host = f"*.{name}" if wildcard else name
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_host_rules(entries: Iterable[object]) -> list[str]:
    """:func:`parse_host_rule` of each entry, in order, without duplicates."""
    return list(dict.fromkeys(parse_host_rule(entry) for entry in entries))


def host_allowed(rules: Iterable[str], host: str, port: int) -> bool:
    """True when a canonical ``host`` (from :func:`canonical_host` or
    :func:`url_host_port`) on ``port`` matches one of the canonical ``rules``."""
    is_ip = ":" in host or parse_host_ip(host) is not None
    for rule in rules:
        pattern, rule_port = _split_rule(rule)
        if rule_port is not None and rule_port != port:
            continue
        if pattern.startswith("*."):
            if not is_ip and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif pattern == host:
            return True
    return False


def url_allowed(rules: Iterable[str], url: str) -> bool:
    """True when ``url``'s host and port match one of the canonical ``rules``; False
    also when the URL has no valid host."""
    try:
        host, port = url_host_port(url)
    except OutboundRefused:
        return False
    return host_allowed(rules, host, port)


def _canonical_name(host: str) -> str:
    """Lowercase, drop the root's dot, IDNA-encode and sanity-check a host name (IPv6
    literals pass through for :func:`parse_host_ip`)."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]  # the DNS root: "example.com." is "example.com"
    if not host:
        raise OutboundRefused("the URL has no host")
    if ":" in host or "%" in host:
        return host  # IPv6 (zone ids are refused by parse_host_ip)
    if not host.isascii():
        try:
            host = idna.encode(host).decode("ascii")
        except idna.IDNAError as e:
            raise OutboundRefused(
                f"the host is not a valid international domain name ({e})"
            ) from None
    if not _HOST_NAME.match(host) or ".." in host:
        raise OutboundRefused(f"{host!r} is not a valid host name")
    return host


@lru_cache(maxsize=1024)
def _split_rule(rule: str) -> tuple[str, int | None]:
    """(host pattern, port or None) of a canonical rule."""
    if rule.startswith("["):
        host, _, port = rule[1:].partition("]:")
        return host, int(port)
    if rule.count(":") == 1:
        host, _, port = rule.partition(":")
        return host, int(port)
    return rule, None
