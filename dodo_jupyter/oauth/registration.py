"""Client registration: who dodo is at an authorization server.

In order of preference (MCP authorization spec 2025-11-25, "Client Registration"):

1. **Pre-registered**: the catalog entry's ``oauth.client_id``; the secret is read from
   the environment variable ``oauth.client_secret_env`` names, at each use, and never
   stored. For servers without dynamic registration (GitHub, …).
2. **Client ID Metadata Document**: when the authorization server advertises
   ``client_id_metadata_document_supported`` and dodo has a public https URL for its own
   metadata document, that URL is the client id (no secret).
3. **Dynamic registration** (RFC 7591) at ``registration_endpoint``, as a ``web``
   application whose redirect URI is this server's callback.

Registrations are stored per user, issuer and redirect URI, so credentials stay bound to
the authorization server that issued them, and a changed redirect URI (a new public URL,
a new base_url) leads to a fresh registration instead of a failing flow. A registration
the server rejects (``invalid_client``) is forgotten and made again once.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..exceptions import UpstreamError, ValidationFailed
from ..net.deadline import exchange_deadline, exchange_seconds, host_shown
from ..net.failures import describe_failure
from ..net.guard import read_limited
from ..store import Store
from ..store.models import OAuthClient, utcnow
from .discovery import AuthServer

__all__ = ["ClientCredentials", "ClientRegistry", "choose_auth_method"]

_MAX_REGISTRATION_BYTES = 64 * 1024
# client_secret_post first: RFC 6749 prefers Basic, but servers built on the MCP SDK
# (2.3) reject Basic at their revocation endpoint, and every server we met accepts post.
_PREFERRED_METHODS = ("client_secret_post", "client_secret_basic", "none")


@dataclass(frozen=True)
class ClientCredentials:
    """A client id (and maybe secret) to use at one authorization server."""

    row_id: str | None
    client_id: str
    client_secret: str | None
    auth_method: str
    method: str

    def for_meta(self) -> dict[str, Any]:
        """Non-secret facts to keep with a connection (enough to find the secret again)."""
        return {
            "client_row": self.row_id,
            "client_method": self.method,
            "client_id": self.client_id,
            "auth_method": self.auth_method,
        }


def choose_auth_method(auth_server: AuthServer, *, has_secret: bool = True) -> str:
    """The token endpoint authentication method to use or ask for."""
    supported = auth_server.metadata.token_endpoint_auth_methods_supported
    if supported is None:
        # RFC 8414 §2: absent means client_secret_basic.
        return "client_secret_basic" if has_secret else "none"
    for method in _PREFERRED_METHODS:
        if method in supported and (has_secret or method == "none"):
            return method
    raise UpstreamError(
        "The authorization server supports none of the token endpoint authentication methods "
        f"dodo uses ({', '.join(_PREFERRED_METHODS)}); it advertises {supported!r}."
    )


class ClientRegistry:
    """Finds or makes the client registration for a user at an authorization server.

    Parameters
    ----------
    store:
        The opened store (registrations are kept there, secrets encrypted).
    client_name:
        ``client_name`` sent with dynamic registrations.
    client_metadata_url:
        dodo's own Client ID Metadata Document URL, when it is publicly reachable over https.
    environ:
        Where pre-registered client secrets are read from (``os.environ`` by default).
    """

    def __init__(
        self,
        store: Store,
        *,
        client_name: str = "Jupyter (dodo)",
        client_metadata_url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._store = store
        self.client_name = client_name
        self.client_metadata_url = client_metadata_url
        self._environ = environ

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _secret_from_env(self, policy: Mapping[str, Any]) -> str | None:
        env_name = policy.get("client_secret_env")
        if not env_name:
            return None
        secret = self._env().get(env_name)
        if not secret:
            raise ValidationFailed(
                f"The catalog entry's client secret comes from the environment variable "
                f"{env_name!r}, which is not set on this server: set it and restart."
            )
        return secret

    def preregistered(
        self, policy: Mapping[str, Any] | None, auth_server: AuthServer
    ) -> ClientCredentials | None:
        """Credentials from the catalog entry's OAuth policy, if it names a client."""
        policy = policy or {}
        client_id = policy.get("client_id")
        if not client_id:
            return None
        secret = self._secret_from_env(policy)
        method = choose_auth_method(auth_server, has_secret=secret is not None)
        return ClientCredentials(None, client_id, secret, method, "preregistered")

    async def obtain(
        self,
        http: httpx2.AsyncClient,
        *,
        username: str,
        auth_server: AuthServer,
        redirect_uri: str,
        policy: Mapping[str, Any] | None = None,
        scope: str | None = None,
    ) -> ClientCredentials:
        """Credentials for this flow: pre-registered, stored, CIMD or newly registered."""
        pre = self.preregistered(policy, auth_server)
        if pre is not None:
            return pre
        stored = await self._store.db.read(_find, username, auth_server.issuer, redirect_uri)
        if stored is not None and _covers(stored, scope):
            return self._credentials(stored)
        if self.client_metadata_url and auth_server.metadata.client_id_metadata_document_supported:
            row = _new_row(
                username, auth_server.issuer, redirect_uri, "cimd", self.client_metadata_url, "none"
            )
            await self._store.db.write(_add, row)
            return self._credentials(row)
        fresh = await self._register(http, username, auth_server, redirect_uri, scope)
        if stored is not None:
            # Registered anew for a wider scope (a step-up): the narrower one is done.
            await self.forget(stored.id)
        return fresh

    async def _register(
        self,
        http: httpx2.AsyncClient,
        username: str,
        auth_server: AuthServer,
        redirect_uri: str,
        scope: str | None,
    ) -> ClientCredentials:
        endpoint = auth_server.endpoint("registration_endpoint")
        if not endpoint:
            raise UpstreamError(
                "The authorization server offers no dynamic client registration: an "
                "administrator must register a client with it and set oauth.client_id "
                "(and oauth.client_secret_env) on the catalog entry."
            )
        method = choose_auth_method(auth_server)
        request = OAuthClientMetadata(
            redirect_uris=[redirect_uri],  # type: ignore[list-item]
            token_endpoint_auth_method=method,  # type: ignore[arg-type]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            client_name=self.client_name,
            scope=scope,
            application_type="web",
        )
        body = request.model_dump(mode="json", exclude_none=True)
        try:
            async with (
                exchange_deadline(endpoint, "client registration", exchange_seconds(http)),
                http.stream("POST", endpoint, json=body) as response,
            ):
                payload = await read_limited(response, _MAX_REGISTRATION_BYTES)
                status = response.status_code
        except httpx2.HTTPError as e:
            raise UpstreamError(
                f"Client registration at {host_shown(endpoint)} failed: {describe_failure(e)}."
            ) from None
        if status not in (200, 201):
            raise UpstreamError(
                f"Client registration was refused (HTTP {status}): {_error_text(payload)}"
            )
        try:
            data = json.loads(payload)
            if isinstance(data, dict):
                data.pop("issuer", None)
            info = OAuthClientInformationFull.model_validate(data)
        except (ValueError, ValidationError):
            raise UpstreamError("The client registration response is not valid JSON.") from None
        auth_method = info.token_endpoint_auth_method or method
        row = _new_row(
            username, auth_server.issuer, redirect_uri, "dynamic", info.client_id, auth_method
        )
        row.scope = info.scope or scope or ""
        vault = self._store.vault
        if info.client_secret:
            row.client_secret_enc = vault.encrypt(info.client_secret)
        row.registration_enc = vault.encrypt(payload.decode("utf-8", "replace"))
        await self._store.db.write(_add, row)
        return self._credentials(row)

    def _credentials(self, row: OAuthClient) -> ClientCredentials:
        secret = self._store.vault.decrypt(row.client_secret_enc) if row.client_secret_enc else None
        return ClientCredentials(
            row.id, row.client_id, secret, row.token_endpoint_auth_method, row.method
        )

    async def load(
        self, meta: Mapping[str, Any], policy: Mapping[str, Any] | None
    ) -> ClientCredentials:
        """The credentials a flow or connection was made with (``meta`` from
        :meth:`ClientCredentials.for_meta`), for the token exchange, refresh and revocation."""
        if meta.get("client_method") == "preregistered":
            policy = policy or {}
            client_id = policy.get("client_id") or meta.get("client_id")
            if not client_id:
                raise ValidationFailed(
                    "The catalog entry no longer names a pre-registered client: connect again."
                )
            return ClientCredentials(
                None,
                client_id,
                self._secret_from_env(policy),
                str(meta.get("auth_method")),
                "preregistered",
            )
        row = await self._store.db.read(lambda s: s.get(OAuthClient, meta.get("client_row")))
        if row is None:
            raise ValidationFailed("The client registration is gone: connect again.")
        return self._credentials(row)

    async def forget(self, row_id: str | None) -> None:
        """Drop a registration the server rejected, so the next flow registers again."""
        if row_id:
            await self._store.db.write(_delete, row_id)


def _error_text(payload: bytes) -> str:
    try:
        data = json.loads(payload)
    except ValueError:
        return "(no JSON error)"
    if isinstance(data, dict):
        parts = [str(data.get("error", "")), str(data.get("error_description", ""))]
        return " ".join(p for p in parts if p)[:300] or "(no error given)"
    return "(no error given)"


def _new_row(
    username: str, issuer: str, redirect_uri: str, method: str, client_id: str, auth_method: str
) -> OAuthClient:
    return OAuthClient(
        id=secrets.token_hex(8),
        username=username,
        issuer=issuer,
        redirect_uri=redirect_uri,
        method=method,
        client_id=client_id,
        token_endpoint_auth_method=auth_method,
        scope="",
        created_at=utcnow(),
    )


def _covers(row: OAuthClient, scope: str | None) -> bool:
    """True when a registration may ask for ``scope`` (no registered scope: no limit known)."""
    if not row.scope or not scope or row.method != "dynamic":
        return True
    return set(scope.split()) <= set(row.scope.split())


def _find(session: Session, username: str, issuer: str, redirect_uri: str) -> OAuthClient | None:
    stmt = (
        select(OAuthClient)
        .where(
            OAuthClient.username == username,
            OAuthClient.issuer == issuer,
            OAuthClient.redirect_uri == redirect_uri,
        )
        .order_by(OAuthClient.created_at.desc())
    )
    return session.scalars(stmt).first()


def _add(session: Session, row: OAuthClient) -> None:
    session.add(row)


def _delete(session: Session, row_id: str) -> None:
    row = session.get(OAuthClient, row_id)
    if row is not None:
        session.delete(row)
