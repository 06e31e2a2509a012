"""The OAuth engine: authorization code flow with PKCE, callback, refresh, revocation.

A flow is a small persisted state machine::

    begin ──► pending_auth row (hashed state, encrypted PKCE verifier, 10 min)
                 │  browser: consent at the authorization server
                 ▼
    complete ──► token exchange ──► tokens in the connection row (encrypted)
                                       │  before expiry, or after a 401
                                       ▼
                                    refresh (rotation kept atomically) ──► ...
                                       │  disconnect
                                       ▼
                                    revoke (RFC 7009) and delete

Protocol details follow the MCP authorization spec: PKCE S256 only (an authorization
server that does not advertise it is refused); ``state`` random, single use, bound to
the user who started the flow, expiring; RFC 9207 ``iss`` checked; RFC 8707
``resource`` on authorize, token and refresh (or as the catalog entry overrides it);
tokens only ever sent in an ``Authorization`` header, to their own server, and token
requests only to the issuer's own endpoints. authlib does the token endpoint requests
(client authentication, grant bodies); every request passes the outbound guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx2
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from mcp.client.auth.utils import union_scopes
from sqlalchemy import delete
from sqlalchemy.orm import Session

from ..connection_rows import ConnectionRows
from ..exceptions import BadRequest, DodoError, Forbidden, NotFound, UpstreamError
from ..net.outbound import Outbound
from ..store import Store
from ..store.models import MCPConnection, PendingAuth, utcnow
from .discovery import Challenge, discover
from .fresh_tokens import FreshTokens
from .registration import ClientCredentials, ClientRegistry
from .token_endpoint import OAuthError, request_token, revoke_token

__all__ = ["PENDING_TTL", "REFRESH_LEEWAY", "NeedsAuth", "OAuthEngine"]

log = logging.getLogger(__name__)

#: How long a started authorization may take.
PENDING_TTL = timedelta(minutes=10)
#: Refresh an access token this long before it expires.
REFRESH_LEEWAY = timedelta(seconds=60)


class NeedsAuth(DodoError):
    """The stored credentials cannot be used any more: the user must connect again."""

    status = 409
    code = "needs_auth"


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def _safe(text: object, limit: int = 300) -> str:
    """Upstream text made fit for a message: one line, bounded (escaping is the renderer's)."""
    return " ".join(str(text).split())[:limit]


class OAuthEngine:
    """Runs authorization flows and keeps OAuth connections' tokens fresh.

    Parameters
    ----------
    store:
        The opened store (pending flows, the vault).
    rows:
        The connections' rows, whose token columns the engine keeps.
    registry:
        Client registrations.
    outbound:
        Guarded HTTP clients.
    """

    def __init__(
        self, store: Store, rows: ConnectionRows, registry: ClientRegistry, outbound: Outbound
    ) -> None:
        self._store = store
        self._rows = rows
        self.registry = registry
        self.outbound = outbound
        #: Access tokens served from memory while fresh (no database read per call).
        self.fresh = FreshTokens(REFRESH_LEEWAY)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        #: Called with a connection id after the engine changed its state (a refresh
        #: refused: ``needs_auth``); the connection service counts it as a change.
        self.state_changed: Callable[[str], None] | None = None

    # -- begin --------------------------------------------------------------------------

    async def begin(
        self,
        *,
        username: str,
        connection_id: str,
        server_url: str,
        hosts: list[str],
        redirect_uri: str,
        challenge: Challenge,
        policy: Mapping[str, Any] | None = None,
        previous_scope: str | None = None,
        state_prefix: str = "",
    ) -> str:
        """Discover, register, and return the authorization URL to send the user to."""
        policy = dict(policy or {})
        async with self.outbound.client(hosts) as http:
            found = await discover(http, server_url, challenge)
            auth_server = found.auth_server
            if not auth_server.supports_s256:
                raise UpstreamError(
                    f"The authorization server {auth_server.issuer!r} does not advertise PKCE "
                    "S256 (code_challenge_methods_supported): dodo refuses to use it."
                )
            scope = found.scopes_to_request(policy.get("scopes"))
            scope = union_scopes(previous_scope, scope) if previous_scope else scope
            creds = await self.registry.obtain(
                http,
                username=username,
                auth_server=auth_server,
                redirect_uri=redirect_uri,
                policy=policy,
                scope=scope,
            )
        resource = _resource(policy, found.resource)
        verifier = generate_token(64)
        state = state_prefix + secrets.token_urlsafe(32)
        authorize_endpoint = auth_server.endpoint("authorization_endpoint") or ""
        params = {
            "response_type": "code",
            "client_id": creds.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if scope:
            params["scope"] = scope
        if resource:
            params["resource"] = resource
        flow = {
            "server_url": server_url,
            "issuer": auth_server.issuer,
            "token_endpoint": auth_server.endpoint("token_endpoint"),
            "revocation_endpoint": auth_server.endpoint("revocation_endpoint"),
            "iss_supported": auth_server.iss_parameter_supported,
            "hosts": hosts,
            "resource": resource,
            "scope": scope or "",
            "redirect_uri": redirect_uri,
            "policy": policy,
            **creds.for_meta(),
        }
        now = utcnow()
        pending = PendingAuth(
            state_hash=hash_state(state),
            connection_id=connection_id,
            username=username,
            code_verifier_enc=self._store.vault.encrypt(verifier),
            flow=flow,
            created_at=now,
            expires_at=now + PENDING_TTL,
        )

        def save(session: Session) -> None:
            # One flow at a time per connection: a new start replaces the old one.
            session.execute(delete(PendingAuth).where(PendingAuth.connection_id == connection_id))
            session.execute(delete(PendingAuth).where(PendingAuth.expires_at < now))
            session.add(pending)

        await self._store.db.write(save)
        sep = "&" if urlsplit(authorize_endpoint).query else "?"
        return f"{authorize_endpoint}{sep}{urlencode(params)}"

    # -- complete -----------------------------------------------------------------------

    async def complete(
        self,
        *,
        username: str | None,
        state: str | None,
        code: str | None,
        iss: str | None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> str:
        """Finish a flow from the callback's query; returns the connection id.

        Raises
        ------
        BadRequest
            unknown, reused or expired ``state``; a missing ``code``.
        Forbidden
            ``state`` belongs to a flow another user started.
        UpstreamError
            the authorization server refused, answered with a bad ``iss``, or the token
            exchange failed (the connection records why).
        """
        if not state:
            raise BadRequest("The callback has no 'state': start connecting again.")
        now = utcnow()

        def take(session: Session) -> PendingAuth:
            row = session.get(PendingAuth, hash_state(state))
            if row is None:
                raise BadRequest(
                    "This sign-in is unknown or was already used: start connecting again."
                )
            if username is not None and row.username != username:
                raise Forbidden("This sign-in was started by another user.")
            session.delete(row)  # single use, whatever happens next
            if row.expires_at <= now:
                raise BadRequest("This sign-in expired (after 10 minutes): start connecting again.")
            return row

        pending = await self._store.db.write(take)
        flow = pending.flow
        conn_id = pending.connection_id
        if error:
            message = f"The authorization server did not authorize: {_safe(error, 100)}"
            if error_description:
                message += f" ({_safe(error_description)})"
            await self._set_state(conn_id, "needs_auth", message)
            raise UpstreamError(message)
        if (iss is not None and iss != flow["issuer"]) or (iss is None and flow["iss_supported"]):
            message = (
                "The authorization response's issuer (RFC 9207 'iss') does not match the "
                f"authorization server {flow['issuer']!r}: refusing it."
            )
            await self._set_state(conn_id, "error", message)
            raise UpstreamError(message)
        if not code:
            raise BadRequest("The callback has no 'code': start connecting again.")
        verifier = self._store.vault.decrypt(pending.code_verifier_enc)
        creds = await self.registry.load(flow, flow.get("policy"))
        kwargs: dict[str, Any] = {
            "code": code,
            "redirect_uri": flow["redirect_uri"],
            "code_verifier": verifier,
        }
        if flow.get("resource"):
            kwargs["resource"] = flow["resource"]
        token = await self._token_request(conn_id, creds, flow, "authorization_code", kwargs)
        await self._store_tokens(conn_id, token, flow, replace_meta=True)
        return conn_id

    # -- tokens -------------------------------------------------------------------------

    async def access_token(self, connection_id: str, *, stale: str | None = None) -> str:
        """A usable access token: refreshed first when it is about to expire, or when
        ``stale`` (a token the server just rejected with 401) is still the stored one.

        Raises
        ------
        NeedsAuth
            no tokens, or the refresh token was refused: the user must connect again.
        UpstreamError
            the authorization server could not be reached (tokens are kept).
        """
        if stale is None:
            kept = self.fresh.get(connection_id)
            if kept is not None:
                return kept
        else:
            self.fresh.forget(connection_id)
        mark = self.fresh.mark()
        tokens, expires_at, _ = await self._tokens(connection_id)
        if not self._needs_refresh(tokens, expires_at, stale):
            self.fresh.put(connection_id, str(tokens["access_token"]), expires_at, mark)
            return str(tokens["access_token"])
        lock = self._locks.get(connection_id)
        if lock is None:
            lock = self._locks[connection_id] = asyncio.Lock()
        async with lock:
            # Another caller may have refreshed while this one waited.
            tokens, expires_at, meta = await self._tokens(connection_id)
            if not self._needs_refresh(tokens, expires_at, stale):
                return str(tokens["access_token"])
            return await self._refresh(connection_id, tokens, meta)

    def _needs_refresh(
        self, tokens: dict[str, Any], expires_at: datetime | None, stale: str | None
    ) -> bool:
        if stale is not None:
            return tokens.get("access_token") == stale
        return expires_at is not None and expires_at - REFRESH_LEEWAY <= utcnow()

    async def _tokens(self, connection_id: str) -> tuple[dict[str, Any], datetime | None, dict]:
        try:
            stored = await self._rows.tokens(connection_id)
        except LookupError:
            raise NotFound(f"No connection {connection_id!r}.") from None
        if stored is None:
            raise NeedsAuth("This server is not signed in: connect it first.")
        return stored

    async def _refresh(
        self, connection_id: str, tokens: dict[str, Any], meta: dict[str, Any]
    ) -> str:
        refresh_token = tokens.get("refresh_token")
        if not refresh_token:
            message = (
                "The access token expired and the server gave no refresh token: connect again."
            )
            await self._set_state(connection_id, "needs_auth", message)
            raise NeedsAuth(message)
        creds = await self.registry.load(meta, meta.get("policy"))
        kwargs: dict[str, Any] = {"refresh_token": refresh_token}
        if meta.get("resource"):
            kwargs["resource"] = meta["resource"]
        token = await self._token_request(connection_id, creds, meta, "refresh_token", kwargs)
        if not token.get("refresh_token"):
            token["refresh_token"] = refresh_token  # not rotated: keep the old one
        await self._store_tokens(connection_id, token, meta, replace_meta=False)
        return str(token["access_token"])

    async def _token_request(
        self,
        connection_id: str,
        creds: ClientCredentials,
        meta: Mapping[str, Any],
        grant_type: str,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        """The token response to a ``grant_type`` request (``authorization_code`` or
        ``refresh_token``); a refusal or failure is recorded on the connection."""
        endpoint = meta.get("token_endpoint")
        # client_id in the body as well: RFC 6749 allows it, and some servers (the MCP SDK's
        # among them) look for it there even when the client authenticates with Basic.
        kwargs = {"client_id": creds.client_id, **kwargs}
        try:
            async with self.outbound.client(list(meta.get("hosts") or [])) as client:
                token = await request_token(
                    client,
                    creds,
                    str(endpoint),
                    grant_type,
                    kwargs,
                    max_bytes=self.outbound.policy.max_response_bytes,
                )
        except OAuthError as e:
            code = str(e.error or "")
            detail = f"{_safe(code, 80)}" + (f": {_safe(e.description)}" if e.description else "")
            if code == "invalid_client":
                await self.registry.forget(creds.row_id)
                message = (
                    f"The authorization server rejected dodo's client registration ({detail}); "
                    "connect again to register anew."
                )
                await self._set_state(connection_id, "needs_auth", message)
                raise NeedsAuth(message) from None
            if code == "invalid_grant":
                message = (
                    f"The authorization server no longer accepts this sign-in ({detail}): "
                    "connect again."
                )
                await self._set_state(connection_id, "needs_auth", message)
                raise NeedsAuth(message) from None
            message = f"The token request failed ({detail})."
            await self._set_state(connection_id, "error", message)
            raise UpstreamError(message) from None
        except DodoError:
            raise
        except httpx2.HTTPError as e:
            message = (
                f"The authorization server's token endpoint could not be reached "
                f"({type(e).__name__}); dodo keeps the stored sign-in and retries later."
            )
            if grant_type == "authorization_code":
                await self._set_state(connection_id, "error", message)
            raise UpstreamError(message) from None
        except ValueError:
            message = "The authorization server's token endpoint did not answer with JSON."
            await self._set_state(connection_id, "error", message)
            raise UpstreamError(message) from None
        if not isinstance(token, Mapping) or not token.get("access_token"):
            raise UpstreamError("The token response holds no access_token.")
        return dict(token)

    async def _store_tokens(
        self,
        connection_id: str,
        token: dict[str, Any],
        meta: Mapping[str, Any],
        *,
        replace_meta: bool,
    ) -> None:
        kept = {
            k: token[k] for k in ("access_token", "refresh_token", "token_type") if token.get(k)
        }
        expires_in = token.get("expires_in")
        expires_at = None
        if isinstance(expires_in, (int, float)) or (
            isinstance(expires_in, str) and expires_in.isdigit()
        ):
            expires_at = utcnow() + timedelta(seconds=int(expires_in))
        granted = token.get("scope") or meta.get("scope") or ""
        values: dict[str, Any] = {
            "tokens_enc": self._rows.encrypt(kept),
            "expires_at": expires_at,
            "state": "connected",
            "error": "",
        }
        if replace_meta:
            values.update(
                oauth_meta={k: meta.get(k) for k in _META_KEYS},
                issuer=meta.get("issuer"),
                resource=meta.get("resource"),
                oauth_client_id=meta.get("client_row"),
                requested_scopes=meta.get("scope") or "",
                scopes=granted if isinstance(granted, str) else " ".join(granted),
            )
        elif token.get("scope"):
            values["scopes"] = str(token["scope"])
        mark = self.fresh.mark()
        if not await self._rows.update(connection_id, **values):
            raise NotFound(f"No connection {connection_id!r}.")
        self.fresh.put(connection_id, kept["access_token"], expires_at, mark)

    async def _set_state(self, connection_id: str, state: str, error: str) -> None:
        if state == "needs_auth":
            self.fresh.forget(connection_id)
        await self._rows.update(connection_id, state=state, error=error)
        if self.state_changed is not None:
            self.state_changed(connection_id)

    # -- revoke -------------------------------------------------------------------------

    async def revoke(self, row: MCPConnection) -> bool:
        """Revoke a connection's tokens at the authorization server (RFC 7009), best
        effort; True when the server confirmed every revocation it was asked for."""
        meta = dict(row.oauth_meta or {})
        endpoint = meta.get("revocation_endpoint")
        if not endpoint or not row.tokens_enc:
            return False
        try:
            tokens = self._rows.tokens_of(row)
            creds = await self.registry.load(meta, meta.get("policy"))
        except DodoError as e:
            log.warning("dodo: cannot revoke tokens of connection %s: %s", row.id, e.message)
            return False
        confirmed = True
        async with self.outbound.client(list(meta.get("hosts") or [])) as client:
            for hint in ("refresh_token", "access_token"):
                if not tokens.get(hint):
                    continue
                try:
                    revoked = await revoke_token(
                        client,
                        creds,
                        endpoint,
                        tokens[hint],
                        hint,
                        max_bytes=self.outbound.policy.max_response_bytes,
                    )
                    confirmed = confirmed and revoked
                except (httpx2.HTTPError, DodoError) as e:
                    log.warning("dodo: revocation at %s failed: %s", endpoint, type(e).__name__)
                    confirmed = False
        return confirmed


_META_KEYS = (
    "issuer",
    "redirect_uri",
    "token_endpoint",
    "revocation_endpoint",
    "hosts",
    "resource",
    "scope",
    "policy",
    "client_row",
    "client_method",
    "client_id",
    "auth_method",
)


def _resource(policy: Mapping[str, Any], discovered: str) -> str | None:
    """The RFC 8707 resource to send: the entry's override, none, or the discovered one."""
    if policy.get("send_resource") is False:
        return None
    return policy.get("resource") or discovered
