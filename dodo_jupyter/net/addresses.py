"""Which IP addresses dodo_jupyter may connect to, and how to recognise an IP in a URL.

These are the pure rules behind the SSRF guard (:mod:`dodo_jupyter.net.guard`); no I/O.

An MCP server URL comes from a catalog entry or a discovery document, so somebody other
than the server's owner chooses it. Without a guard such a URL could make the Jupyter
server fetch its own cloud credentials (``http://169.254.169.254/…``), call services on
the private network, or talk to itself on ``localhost``. The guard therefore refuses:

* private ranges: 10/8, 172.16/12, 192.168/16, fc00::/7 (unique local), fec0::/10
  (deprecated site-local), 100.64/10 (carrier-grade NAT);
* loopback (127/8, ::1), unless loopback is explicitly allowed for development;
* link-local (169.254/16, fe80::/10), multicast, broadcast, unspecified (0.0.0.0, ::),
  "this network" 0/8, reserved 240/4, benchmarking 198.18/15 and the documentation
  ranges;
* cloud metadata endpoints by name (AWS, ECS, Azure, Alibaba), even where a range rule
  would already catch them, so the message says what the address is;
* IPv6 addresses that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``): the embedded IPv4 address is judged by the same
  rules. IPv4-compatible ``::a.b.c.d`` (deprecated), local-use NAT64 ``64:ff9b:1::/48``
  and Teredo ``2001::/32`` are refused outright;
* anything else the IANA special-purpose registries do not mark as globally reachable.

Attackers spell addresses oddly to slip past naive checks: ``http://2130706433/``,
``http://0x7f000001/``, ``http://0177.0.0.1/`` and ``http://127.1/`` all reach
127.0.0.1 through ``inet_aton``/``getaddrinfo``. :func:`parse_host_ip` reads a URL host
the way those functions do, so the guard judges the address that would really be used.
"""

from __future__ import annotations

import ipaddress
import re

from ..exceptions import OutboundRefused

__all__ = ["METADATA_ADDRESSES", "IPAddress", "parse_host_ip", "refusal_reason"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud instance metadata endpoints, named so a refusal says what was being reached.
METADATA_ADDRESSES: dict[IPAddress, str] = {
    ipaddress.ip_address("169.254.169.254"): "the cloud instance metadata endpoint",
    ipaddress.ip_address("169.254.170.2"): "the AWS ECS task metadata endpoint",
    ipaddress.ip_address("fd00:ec2::254"): "the AWS instance metadata endpoint (IPv6)",
    ipaddress.ip_address("100.100.100.200"): "the Alibaba Cloud metadata endpoint",
    ipaddress.ip_address("168.63.129.16"): "the Azure platform (WireServer) endpoint",
}

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*pairs: tuple[str, str]) -> list[tuple[_Net, str]]:
    return [(ipaddress.ip_network(net), what) for net, what in pairs]


# Checked in order; the first match names the reason. Loopback is handled separately
# because it may be allowed.
_REFUSED_V4 = _nets(
    ("0.0.0.0/8", "an unspecified / 'this network' address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT (shared) address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignment address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
)
_REFUSED_V6 = _nets(
    ("::/128", "the unspecified address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001::/32", "a Teredo tunnel address"),
    ("2001:db8::/32", "a documentation address"),
    ("fc00::/7", "a private (unique local) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_6TO4 = ipaddress.ip_network("2002::/16")


def refusal_reason(ip: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why dodo_jupyter must not connect to ``ip``, or None when it may.

    Parameters
    ----------
    ip
        The address a request would be sent to.
    allow_loopback
        Accept 127.0.0.0/8 and ::1 (``DodoApp.allow_insecure_loopback``, development).

    Returns
    -------
    str | None
        A short phrase such as ``"a private address (10.0.0.0/8)"``, to be put in an
        error message after "is"; None for an address that may be used.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return f"a scoped address (zone {ip.scope_id!r})"
        embedded, how = _embedded_ipv4(ip)
        if how == "refuse":
            return "an IPv4-compatible IPv6 address (deprecated)"
        if embedded is not None:
            inner = refusal_reason(embedded, allow_loopback=allow_loopback)
            return None if inner is None else f"{how} embedding {embedded}, {inner}"
    if ip in METADATA_ADDRESSES:
        return METADATA_ADDRESSES[ip]
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address (this machine)"
    table = _REFUSED_V4 if isinstance(ip, ipaddress.IPv4Address) else _REFUSED_V6
    for net, what in table:
        if ip in net:
            return f"{what} ({net})"
    if not ip.is_global:
        return "not a globally reachable address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    """The IPv4 address an IPv6 address carries, with how it carries it."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "an IPv4-mapped address"
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are not IPv4-compatible
        return None, "refuse"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "a NAT64 address"
    if ip.sixtofour is not None:
        return ip.sixtofour, "a 6to4 address"
    return None, ""


_NUMERIC_LABEL = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)$")


def parse_host_ip(host: str) -> IPAddress | None:
    """The IP address a URL host denotes, or None when it is a name to be resolved.

    IPv4 is read the way ``inet_aton`` (and so ``getaddrinfo``) reads it: one to four
    parts separated by dots, each decimal, hexadecimal (``0x7f``) or octal (``0177``),
    the last part filling the remaining bytes. So ``2130706433``, ``0x7f000001``,
    ``0177.0.0.1``, ``127.1``, ``127.0.1`` and ``0x7f.1`` all give 127.0.0.1. A trailing
    dot is ignored, as browsers do. IPv6 may be bracketed (``[::1]``).

    Raises
    ------
    OutboundRefused
        for an IPv6 zone id (``fe80::1%eth0``: it names a local interface) and for a
        host whose last label is a number but which is not a valid IPv4 address
        (``256.1.1.1``, ``08.1.1.1``): the name would never be looked up in DNS the way
        it reads.
    """
    host = host.strip()
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if "%" in host:
        raise OutboundRefused(
            f"IPv6 zone ids are refused in URLs ({host!r}): they name a network interface "
            "of this machine; use the server's public host name"
        )
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    if bracketed:
        return None
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if not labels or not _NUMERIC_LABEL.match(labels[-1]):
        return None  # an ordinary host name
    ip = _inet_aton(labels)
    if ip is None:
        raise OutboundRefused(
            f"Host {host!r} looks like an IPv4 address but is not a valid one; "
            "write the address as four decimal numbers (a.b.c.d) or use a host name"
        )
    return ip


def _inet_aton(labels: list[str]) -> ipaddress.IPv4Address | None:
    if not 1 <= len(labels) <= 4:
        return None
    numbers: list[int] = []
    for label in labels:
        if not _NUMERIC_LABEL.match(label):
            return None
        try:
            if label[:2].lower() == "0x":
                numbers.append(int(label[2:], 16))
            elif len(label) > 1 and label.startswith("0"):
                numbers.append(int(label, 8))
            else:
                numbers.append(int(label, 10))
        except ValueError:  # "08" is not octal, "0x" has no digits
            return None
    *head, last = numbers
    if any(n > 0xFF for n in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)
