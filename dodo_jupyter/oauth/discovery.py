"""Discovery: from an MCP server's 401 to the authorization server that protects it.

Follows the MCP authorization spec (2025-11-25, with the older revisions' fallbacks):

1. The server's ``401`` carries ``WWW-Authenticate: Bearer resource_metadata="…",
   scope="…"`` (:func:`parse_challenge`).
2. Protected resource metadata (RFC 9728) from ``resource_metadata``, else
   ``/.well-known/oauth-protected-resource/<path>``, else the root well-known URL. Its
   ``resource`` must cover the server URL; its first ``authorization_servers`` entry is
   the issuer.
3. Authorization server metadata (RFC 8414, then OpenID Connect discovery, in the spec's
   order). The document's ``issuer`` must equal the issuer it was fetched for (simple
   string comparison, RFC 8414 §3.3).
4. 2025-03-26 servers without resource metadata: the server's origin is the
   authorization server; without any metadata the default endpoints ``/authorize``,
   ``/token`` and ``/register`` are used.

Every request goes through the outbound guard (an ``httpx2`` client built by
:func:`dodo_jupyter.net.guard.guarded_client`), with bounded size, and each document
(head and body) must arrive within ``DodoApp.outbound_timeout``
(:func:`~dodo_jupyter.net.deadline.exchange_deadline`): a server that trickles its
metadata fails discovery with a message naming the host and the document.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    build_protected_resource_metadata_discovery_urls,
    issuers_match,
)
from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
from mcp.shared.auth_utils import check_resource_allowed, resource_url_from_server_url
from pydantic import ValidationError

from ..exceptions import UpstreamError
from ..net.deadline import exchange_deadline, exchange_seconds
from ..net.failures import describe_failure
from ..net.guard import read_limited

__all__ = [
    "MAX_METADATA_BYTES",
    "AuthServer",
    "Challenge",
    "Discovery",
    "discover",
    "parse_challenge",
]

#: Metadata documents larger than this are refused.
MAX_METADATA_BYTES = 256 * 1024
_PROTOCOL_VERSION = "2025-11-25"
_AUTH_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    """What a ``WWW-Authenticate: Bearer …`` header asked for."""

    resource_metadata: str | None = None
    scope: str | None = None
    error: str | None = None


def parse_challenge(header: str | None) -> Challenge:
    """Parse the Bearer challenge of a ``WWW-Authenticate`` header (RFC 6750 §3)."""
    if not header:
        return Challenge()
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _AUTH_PARAM.finditer(header)
    }
    return Challenge(
        resource_metadata=params.get("resource_metadata") or None,
        scope=params.get("scope") or None,
        error=params.get("error") or None,
    )


@dataclass(frozen=True)
class AuthServer:
    """An authorization server: its issuer (exactly as published) and metadata."""

    issuer: str
    metadata: OAuthMetadata
    raw: dict[str, Any] = field(default_factory=dict)
    #: True when no metadata was published and the 2025-03-26 default endpoints are used.
    defaults: bool = False

    @property
    def supports_s256(self) -> bool:
        if self.defaults:
            # Nothing is published; the 2025-03-26 spec makes PKCE mandatory, so S256 it is.
            return True
        return "S256" in (self.metadata.code_challenge_methods_supported or [])

    @property
    def iss_parameter_supported(self) -> bool:
        return bool(self.metadata.authorization_response_iss_parameter_supported)

    def endpoint(self, name: str) -> str | None:
        """An endpoint URL exactly as published (pydantic may normalise its copy)."""
        value = self.raw.get(name)
        if isinstance(value, str):
            return value
        parsed = getattr(self.metadata, name, None)
        return str(parsed) if parsed is not None else None


@dataclass(frozen=True)
class Discovery:
    """Everything discovery found for one MCP server."""

    server_url: str
    auth_server: AuthServer
    resource_metadata: ProtectedResourceMetadata | None
    #: The RFC 8707 resource indicator for this server (canonical form).
    resource: str
    challenge: Challenge

    def scopes_to_request(self, configured: list[str] | None = None) -> str | None:
        """Scopes for the authorization request: configured by the catalog entry, else the
        challenge's, else the resource's ``scopes_supported``, else none."""
        if configured:
            return " ".join(configured)
        if self.challenge.scope:
            return self.challenge.scope
        prm = self.resource_metadata
        if prm is not None and prm.scopes_supported:
            return " ".join(prm.scopes_supported)
        return None


def _short(url: str) -> str:
    # Never echo query strings: they may carry secrets.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def fetch_json(
    client: httpx2.AsyncClient, url: str, document: str = "metadata"
) -> tuple[int, Any]:
    """GET a JSON document with bounded size and time; (status, parsed body or None).

    Raises
    ------
    UpstreamTimeout
        when the whole answer took longer than the client's deadline; the message names
        the host and ``document``.
    """
    try:
        async with (
            exchange_deadline(url, document, exchange_seconds(client)),
            client.stream(
                "GET",
                url,
                headers={"Accept": "application/json", "MCP-Protocol-Version": _PROTOCOL_VERSION},
            ) as response,
        ):
            if response.status_code != 200:
                return response.status_code, None
            body = await read_limited(response, MAX_METADATA_BYTES)
    except httpx2.HTTPError as e:
        raise UpstreamError(f"Cannot reach {_short(url)}: {describe_failure(e)}.") from None
    try:
        return 200, json.loads(body)
    except ValueError:
        raise UpstreamError(f"{_short(url)} did not return JSON.") from None


async def _resource_metadata(
    client: httpx2.AsyncClient, server_url: str, challenge: Challenge
) -> tuple[ProtectedResourceMetadata, str, str] | None:
    """(metadata, issuer, resource), the strings exactly as published, or None."""
    urls = build_protected_resource_metadata_discovery_urls(challenge.resource_metadata, server_url)
    for url in urls:
        status, data = await fetch_json(client, url, "protected resource metadata")
        if status != 200:
            continue
        try:
            prm = ProtectedResourceMetadata.model_validate(data)
        except ValidationError:
            raise UpstreamError(
                f"The protected resource metadata at {_short(url)} is not valid RFC 9728 JSON."
            ) from None
        first = data["authorization_servers"][0]
        resource = data["resource"]
        return (
            prm,
            first if isinstance(first, str) else str(prm.authorization_servers[0]),
            resource if isinstance(resource, str) else str(prm.resource),
        )
    return None


async def _auth_server(
    client: httpx2.AsyncClient, issuer: str | None, server_url: str
) -> AuthServer:
    expected = issuer or _origin(server_url)
    urls = build_oauth_authorization_server_metadata_discovery_urls(issuer, server_url)
    for url in urls:
        status, data = await fetch_json(client, url, "authorization server metadata")
        if status != 200:
            continue
        try:
            metadata = OAuthMetadata.model_validate(data)
        except ValidationError:
            raise UpstreamError(
                f"The authorization server metadata at {_short(url)} is not valid RFC 8414 JSON."
            ) from None
        published = data.get("issuer")
        if not isinstance(published, str) or not issuers_match(published, expected):
            raise UpstreamError(
                f"The authorization server metadata at {_short(url)} names issuer "
                f"{published!r}, not {expected!r}: refusing it (RFC 8414 §3.3)."
            )
        return AuthServer(issuer=published, metadata=metadata, raw=data)
    if issuer is not None:
        raise UpstreamError(
            f"No authorization server metadata found for {expected!r} "
            f"(tried {', '.join(_short(u) for u in urls)})."
        )
    # 2025-03-26: no metadata anywhere → default endpoints at the server's origin.
    origin = _origin(server_url)
    defaults = {
        "issuer": origin,
        "authorization_endpoint": f"{origin}/authorize",
        "token_endpoint": f"{origin}/token",
        "registration_endpoint": f"{origin}/register",
    }
    return AuthServer(
        issuer=origin,
        metadata=OAuthMetadata.model_validate(defaults),
        raw=defaults,
        defaults=True,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def discover(client: httpx2.AsyncClient, server_url: str, challenge: Challenge) -> Discovery:
    """Find the authorization server for ``server_url`` (see the module docstring).

    Raises
    ------
    UpstreamError
        when metadata is missing, malformed, too large, or names the wrong issuer;
        :class:`~dodo_jupyter.exceptions.UpstreamTimeout` when a document took longer
        than the deadline.
    OutboundRefused
        when a URL on the way is not allowed by the outbound guard.
    """
    found = await _resource_metadata(client, server_url, challenge)
    canonical = resource_url_from_server_url(server_url)
    if found is None:
        prm, issuer = None, None
        resource = canonical
    else:
        prm, issuer, published = found
        resource = published
        if not check_resource_allowed(canonical, published):
            raise UpstreamError(
                f"The protected resource metadata is for {published!r}, which does not cover "
                f"{_short(server_url)!r}: refusing it (RFC 9728 §3.3)."
            )
    auth_server = await _auth_server(client, issuer, server_url)
    return Discovery(
        server_url=server_url,
        auth_server=auth_server,
        resource_metadata=prm,
        resource=resource,
        challenge=challenge,
    )
