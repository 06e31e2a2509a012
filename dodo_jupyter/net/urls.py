"""URL rules every MCP server URL must follow before it is stored or used.

https only; plain http only for a loopback host and only when the administrator turned
on ``DodoApp.allow_insecure_loopback`` (development and tests). Credentials in a URL are
refused: a secret never belongs in a URL. The host must be one the outbound guard would
accept (:func:`dodo_jupyter.net.hosts.canonical_host`), so a URL stored here is never
refused later for how its host is written.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..exceptions import OutboundRefused, ValidationFailed
from .hosts import canonical_host

__all__ = ["MAX_URL_LENGTH", "check_server_url", "is_loopback_host"]

MAX_URL_LENGTH = 2048


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and literal loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: object, *, allow_insecure_loopback: bool, field: str = "url") -> str:
    """Validate an MCP server URL and return it unchanged.

    Raises
    ------
    ValidationFailed
        naming ``field`` and saying what to change.
    """

    def fail(reason: str) -> ValidationFailed:
        return ValidationFailed(f"Invalid {field}: {reason}", fields={field: reason})

    if not isinstance(url, str) or not url:
        raise fail("give an absolute https:// URL")
    if len(url) > MAX_URL_LENGTH:
        raise fail(f"longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise fail("contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise fail(f"cannot be parsed ({e})") from None
    del port
    if parts.scheme not in ("https", "http"):
        raise fail(f"scheme {parts.scheme!r} is not allowed; use https://")
    if not parts.hostname:
        raise fail("has no host")
    try:
        host = canonical_host(parts.hostname)
    except OutboundRefused as e:
        raise fail(f"bad host: {e.message}") from None
    if parts.username is not None or parts.password is not None:
        raise fail("must not contain credentials; configure them as headers or OAuth instead")
    if parts.fragment:
        raise fail("must not contain a #fragment")
    if parts.scheme == "http":
        if not is_loopback_host(host):
            raise fail("plain http is refused; use https://")
        if not allow_insecure_loopback:
            raise fail(
                "plain http to a loopback host needs DodoApp.allow_insecure_loopback=True "
                "(development and tests only)"
            )
    return url
