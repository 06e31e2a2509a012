"""The OAuth engine: the authorization code flow with PKCE, up to its callback.

A flow is a small persisted state machine::

    begin ──► pending_auth row (hashed state, encrypted PKCE verifier, 10 min)
                 │  browser: consent at the authorization server
                 ▼
    complete ──► callback checked (single-use state, same user, not expired, iss)
                 │  code and verifier
                 ▼
    TokenKeeper.exchange ──► tokens in the connection row ──► refresh, revoke
                             (:mod:`dodo_jupyter.oauth.token_keeper`)

Protocol details follow the MCP authorization spec: PKCE S256 only (an authorization
server that does not advertise it is refused); ``state`` random, single use, bound to
the user who started the flow, expiring; RFC 9207 ``iss`` checked; RFC 8707
``resource`` on authorize, token and refresh (or as the catalog entry overrides it);
tokens only ever sent in an ``Authorization`` header, to their own server, and token
requests only to the issuer's own endpoints (the token keeper sends them, authlib builds
their bodies and client authentication); every request passes the outbound guard.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from mcp.client.auth.utils import union_scopes
from sqlalchemy import delete
from sqlalchemy.orm import Session

from ..exceptions import BadRequest, Forbidden, UpstreamError
from ..net.outbound import Outbound
from ..store import Store
from ..store.models import PendingAuth, utcnow
from .discovery import Challenge, discover
from .registration import ClientRegistry
from .token_keeper import TokenKeeper, server_text

__all__ = ["PENDING_TTL", "OAuthEngine", "flow_id_of", "hash_state", "scope_of"]

#: How long a started authorization may take.
PENDING_TTL = timedelta(minutes=10)


def hash_state(state: str) -> str:
    """The key a flow's ``state`` is stored under (SHA-256, hex): the state itself is not."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def flow_id_of(authorize_url: str) -> str:
    """The id a flow is stored under (:func:`hash_state`), from its authorization URL."""
    return hash_state(parse_qs(urlsplit(authorize_url).query).get("state", [""])[0])


def scope_of(authorize_url: str) -> str:
    """The ``scope`` an authorization URL asks for (empty when none)."""
    return parse_qs(urlsplit(authorize_url).query).get("scope", [""])[0]


class OAuthEngine:
    """Runs authorization flows: from the authorization URL to the first tokens.

    Parameters
    ----------
    store:
        The opened store (pending flows, the vault).
    registry:
        Client registrations.
    outbound:
        Guarded HTTP clients.
    keeper:
        The token keeper, handed each finished flow's tokens; it records the states a
        failed callback leaves the connection in.
    """

    def __init__(
        self, store: Store, registry: ClientRegistry, outbound: Outbound, keeper: TokenKeeper
    ) -> None:
        self._store = store
        self.registry = registry
        self.outbound = outbound
        self._keeper = keeper

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
        step_up: bool = False,
    ) -> str:
        """Discover, register, and return the authorization URL to send the user to.

        A ``step_up`` flow asks a connection that works for more scopes: when the user
        denies it, the connection keeps its sign-in (see :meth:`complete`).
        """
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
            "step_up": step_up,
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
            exchange failed (the connection records why; a refused step-up leaves the
            connection as it was: its sign-in still works for what it was granted).
        NeedsAuth
            the token endpoint refused the client or the code.
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
            message = f"The authorization server did not authorize: {server_text(error, 100)}"
            if error_description:
                message += f" ({server_text(error_description)})"
            if not flow.get("step_up"):
                await self._keeper.set_state(conn_id, "needs_auth", message)
            raise UpstreamError(message)
        if (iss is not None and iss != flow["issuer"]) or (iss is None and flow["iss_supported"]):
            message = (
                "The authorization response's issuer (RFC 9207 'iss') does not match the "
                f"authorization server {flow['issuer']!r}: refusing it."
            )
            await self._keeper.set_state(conn_id, "error", message)
            raise UpstreamError(message)
        if not code:
            raise BadRequest("The callback has no 'code': start connecting again.")
        verifier = self._store.vault.decrypt(pending.code_verifier_enc)
        creds = await self.registry.load(flow, flow.get("policy"))
        grant: dict[str, Any] = {
            "code": code,
            "redirect_uri": flow["redirect_uri"],
            "code_verifier": verifier,
        }
        if flow.get("resource"):
            grant["resource"] = flow["resource"]
        await self._keeper.exchange(conn_id, creds, flow, grant)
        return conn_id

    async def is_pending(self, flow_id: str) -> bool:
        """Whether the flow stored under ``flow_id`` (:func:`hash_state` of its
        ``state``) still waits for its callback: not used, replaced or expired."""
        now = utcnow()

        def query(session: Session) -> bool:
            row = session.get(PendingAuth, flow_id)
            return row is not None and row.expires_at > now

        return await self._store.db.read(query)


def _resource(policy: Mapping[str, Any], discovered: str) -> str | None:
    """The RFC 8707 resource to send: the entry's override, none, or the discovered one."""
    if policy.get("send_resource") is False:
        return None
    return policy.get("resource") or discovered
