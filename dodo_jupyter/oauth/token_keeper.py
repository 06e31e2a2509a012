"""The token keeper: an OAuth connection's tokens from the code exchange to revocation.

Once a flow (:mod:`dodo_jupyter.oauth.flow`) has a code, its tokens live here::

    exchange ──► tokens in the connection row (encrypted), the access token in memory
                    │  before expiry, or after a 401
                    ▼
                 refresh (one at a time per connection; rotation kept atomically) ──► ...
                    │  disconnect
                    ▼
                 revoke (RFC 7009)

An access token is served from memory while it is fresh (:class:`FreshTokens`), else
read from the row, refreshed :data:`REFRESH_LEEWAY` before it expires. A refused
refresh leaves the connection ``needs_auth`` with a message; an unreachable token
endpoint keeps the stored sign-in. Token requests go only to the issuer's own endpoints
recorded with the flow (``oauth_meta``), with RFC 8707 ``resource`` when the flow sent
one, through the outbound guard.

An authorization server may issue no refresh token (the MCP SDK's ``simple-auth``
example issues none): the access token is then used to its last second, the row's
``oauth_meta["refreshable"]`` is False so the owner is warned of the sign-in that will
be needed, and the connection turns ``needs_auth`` only once the token has expired or
the server rejected it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx2

from ..connection_rows import ConnectionRows
from ..exceptions import DodoError, NotFound, UpstreamError, UpstreamTimeout
from ..governance.metrics import OAUTH_REFRESHES
from ..net.deadline import host_shown
from ..net.failures import describe_failure
from ..net.outbound import Outbound
from ..store.models import MCPConnection, utcnow
from .fresh_tokens import FreshTokens
from .registration import ClientCredentials, ClientRegistry
from .token_endpoint import OAuthError, request_token, revoke_token

__all__ = ["REFRESH_LEEWAY", "NeedsAuth", "TokenKeeper", "expired_message", "server_text"]

log = logging.getLogger(__name__)

#: Refresh an access token this long before it expires.
REFRESH_LEEWAY = timedelta(seconds=60)

#: What of a finished flow the connection row keeps (``oauth_meta``): enough to refresh
#: and revoke after a restart, nothing secret.
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


class NeedsAuth(DodoError):
    """The stored credentials cannot be used any more: the user must connect again."""

    status = 409
    code = "needs_auth"


def server_text(text: object, limit: int = 300) -> str:
    """An authorization server's text made fit for a message: one line, bounded
    (escaping is the renderer's)."""
    return " ".join(str(text).split())[:limit]


def expired_message(expires_at: datetime | None) -> str:
    """Why a connection whose server gave no refresh token needs a new sign-in."""
    when = f" at {expires_at:%H:%M:%S} UTC" if expires_at is not None else ""
    return f"The access token expired{when} and the server gave no refresh token: connect again."


class TokenKeeper:
    """Keeps OAuth connections' tokens: stores, serves, refreshes and revokes them.

    Parameters
    ----------
    rows:
        The connections' rows, whose token columns the keeper keeps.
    registry:
        Client registrations (the client a token request authenticates as).
    outbound:
        Guarded HTTP clients.
    """

    def __init__(self, rows: ConnectionRows, registry: ClientRegistry, outbound: Outbound) -> None:
        self._rows = rows
        self._registry = registry
        self._outbound = outbound
        #: Access tokens served from memory while fresh (no database read per call).
        self.fresh = FreshTokens(REFRESH_LEEWAY)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        #: Called with a connection id after the keeper changed its state (a refresh
        #: refused: ``needs_auth``); the connection service counts it as a change.
        self.state_changed: Callable[[str], None] | None = None

    # -- exchange -----------------------------------------------------------------------

    async def exchange(
        self,
        connection_id: str,
        creds: ClientCredentials,
        flow: Mapping[str, Any],
        grant: dict[str, Any],
    ) -> None:
        """Trade an authorization code for tokens and keep them, with the ``flow``'s
        non-secret parts as the connection's ``oauth_meta``.

        ``grant`` holds the ``authorization_code`` request's parameters (``code``,
        ``redirect_uri``, ``code_verifier``, ``resource``).

        Raises
        ------
        NeedsAuth
            the authorization server refused the client or the code.
        UpstreamError
            the token endpoint failed or could not be reached (the connection records why).
        """
        token = await self._token_request(connection_id, creds, flow, "authorization_code", grant)
        await self._store_tokens(connection_id, token, flow, replace_meta=True)

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
            try:
                token = await self._refresh(connection_id, tokens, meta, expires_at, stale)
            except NeedsAuth:
                OAUTH_REFRESHES.labels("needs_auth").inc()
                raise
            except DodoError:
                OAUTH_REFRESHES.labels("error").inc()
                raise
            OAUTH_REFRESHES.labels("ok").inc()
            return token

    async def refresh(self, connection_id: str) -> None:
        """Refresh now when the connection holds a refresh token (``refresh-state``);
        without one, only check that the access token is still valid: a token that
        cannot be renewed is used until it expires.

        Raises
        ------
        NeedsAuth
            no tokens, a refused refresh, or an expired token that cannot be renewed.
        UpstreamError
            the authorization server could not be reached (tokens are kept).
        """
        tokens, _, _ = await self._tokens(connection_id)
        if tokens.get("refresh_token"):
            await self.access_token(connection_id, stale=str(tokens.get("access_token")))
        else:
            await self.access_token(connection_id)

    def _needs_refresh(
        self, tokens: dict[str, Any], expires_at: datetime | None, stale: str | None
    ) -> bool:
        if stale is not None:
            return tokens.get("access_token") == stale
        # Refresh ahead of expiry when a refresh token can renew it; a token that cannot
        # be renewed stays usable to its last second.
        leeway = REFRESH_LEEWAY if tokens.get("refresh_token") else timedelta(0)
        return expires_at is not None and expires_at - leeway <= utcnow()

    async def _tokens(self, connection_id: str) -> tuple[dict[str, Any], datetime | None, dict]:
        try:
            stored = await self._rows.tokens(connection_id)
        except LookupError:
            raise NotFound(f"No connection {connection_id!r}.") from None
        if stored is None:
            raise NeedsAuth("This server is not signed in: connect it first.")
        return stored

    async def _refresh(
        self,
        connection_id: str,
        tokens: dict[str, Any],
        meta: dict[str, Any],
        expires_at: datetime | None,
        stale: str | None,
    ) -> str:
        refresh_token = tokens.get("refresh_token")
        if not refresh_token:
            if stale is not None:
                message = (
                    "The server rejected the access token and gave no refresh token: connect again."
                )
            else:
                message = expired_message(expires_at)
            await self.set_state(connection_id, "needs_auth", message)
            raise NeedsAuth(message)
        creds = await self._registry.load(meta, meta.get("policy"))
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
            async with self._outbound.client(list(meta.get("hosts") or [])) as client:
                token = await request_token(
                    client,
                    creds,
                    str(endpoint),
                    grant_type,
                    kwargs,
                    max_bytes=self._outbound.policy.max_response_bytes,
                )
        except OAuthError as e:
            code = str(e.error or "")
            detail = server_text(code, 80) + (
                f": {server_text(e.description)}" if e.description else ""
            )
            if code == "invalid_client":
                await self._registry.forget(creds.row_id)
                message = (
                    f"The authorization server rejected dodo's client registration ({detail}); "
                    "connect again to register anew."
                )
                await self.set_state(connection_id, "needs_auth", message)
                raise NeedsAuth(message) from None
            if code == "invalid_grant":
                message = (
                    f"The authorization server no longer accepts this sign-in ({detail}): "
                    "connect again."
                )
                await self.set_state(connection_id, "needs_auth", message)
                raise NeedsAuth(message) from None
            message = f"The token request failed ({detail})."
            await self.set_state(connection_id, "error", message)
            raise UpstreamError(message) from None
        except UpstreamTimeout as e:  # names the host and the step
            if grant_type == "authorization_code":
                await self.set_state(connection_id, "error", e.message)
            raise
        except DodoError:
            raise
        except httpx2.HTTPError as e:
            message = (
                f"The token endpoint at {host_shown(str(endpoint))} could not be reached: "
                f"{describe_failure(e)}; dodo keeps the stored sign-in and retries later."
            )
            if grant_type == "authorization_code":
                await self.set_state(connection_id, "error", message)
            raise UpstreamError(message) from None
        except ValueError:
            message = "The authorization server's token endpoint did not answer with JSON."
            await self.set_state(connection_id, "error", message)
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
        # Whether the sign-in renews itself: without a refresh token the owner is warned
        # of the new sign-in due at expires_at (connection_rows.sign_in_needed_at).
        refreshable = bool(kept.get("refresh_token"))
        if replace_meta:
            values.update(
                oauth_meta={**{k: meta.get(k) for k in _META_KEYS}, "refreshable": refreshable},
                issuer=meta.get("issuer"),
                resource=meta.get("resource"),
                oauth_client_id=meta.get("client_row"),
                requested_scopes=meta.get("scope") or "",
                scopes=granted if isinstance(granted, str) else " ".join(granted),
            )
        else:
            values["oauth_meta"] = {**meta, "refreshable": refreshable}
            if token.get("scope"):
                values["scopes"] = str(token["scope"])
        mark = self.fresh.mark()
        if not await self._rows.update(connection_id, **values):
            raise NotFound(f"No connection {connection_id!r}.")
        self.fresh.put(connection_id, kept["access_token"], expires_at, mark)

    async def set_state(self, connection_id: str, state: str, error: str) -> None:
        """Record a connection's ``state`` and why (``error``, never a secret); a
        ``needs_auth`` also drops its access token from memory."""
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
            creds = await self._registry.load(meta, meta.get("policy"))
        except DodoError as e:
            log.warning("dodo: cannot revoke tokens of connection %s: %s", row.id, e.message)
            return False
        confirmed = True
        async with self._outbound.client(list(meta.get("hosts") or [])) as client:
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
                        max_bytes=self._outbound.policy.max_response_bytes,
                    )
                    confirmed = confirmed and revoked
                except (httpx2.HTTPError, DodoError) as e:
                    why = describe_failure(e)
                    log.warning("dodo: revocation at %s failed: %s", endpoint, why)
                    confirmed = False
        return confirmed
