"""The demo's authorization server: an in-memory ``OAuthAuthorizationServerProvider``.

The MCP SDK's ``mcp.server.auth`` package owns the HTTP side of OAuth 2.1 (the
``/authorize``, ``/token``, ``/register`` and ``/revoke`` handlers, client
authentication and PKCE S256 verification); a *provider* owns the state. This one
keeps everything in dictionaries, so a restart forgets every client and token.

The grant, step by step::

    client                         demo AS (this provider)              person
      | POST /register  ---------->  register_client()
      | GET /authorize  ---------->  authorize() -> /demo/consent?request=R
      |                              (or, with auto_approve, straight back with a code)
      |                              consent page (client name, scopes) --->  Approve / Deny
      |                              approve(R, csrf) -> redirect_uri?code&state&iss
      | POST /token (code+verifier)  SDK checks PKCE, then exchange_authorization_code()
      | POST /token (refresh_token)  exchange_refresh_token(): ROTATES the refresh token
      | POST /revoke  ------------>  revoke_token(): kills the whole grant

*Grants.* Every code exchange starts a grant: its access tokens and its one live
refresh token share a ``grant_id``. Refreshing retires the old refresh token (a
second use answers ``invalid_grant``) while the old access token lives on until it
expires; revoking any token of a grant revokes all of them (RFC 7009 §2.1 "SHOULD
also invalidate" the related tokens).

*Audience.* Every token is bound to one resource (RFC 8707): the demo's ``/mcp``
URL. The SDK's bearer middleware, with ``validate_token_resource=True``, refuses a
token whose ``resource`` differs.

:class:`DemoStats` counts what happened, for tests and the ``GET /demo/stats``
route. It never holds a token, code or secret.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

__all__ = [
    "CONSENT_PATH",
    "DemoAccessToken",
    "DemoAuthorizationCode",
    "DemoOAuthProvider",
    "DemoRefreshToken",
    "DemoStats",
    "PendingConsent",
]

#: Where :meth:`DemoOAuthProvider.authorize` sends a person to approve or deny.
CONSENT_PATH = "/demo/consent"

#: How long a consent page stays answerable, in seconds.
DEFAULT_CONSENT_TTL = 600

#: How long an authorization code can be exchanged, in seconds (RFC 6749 §4.1.2: short).
DEFAULT_CODE_TTL = 300

#: The person every demo token is issued to (``sub``).
DEMO_SUBJECT = "demo-user"

_SEEN_KINDS = ("authorize", "token", "refresh")


@dataclass
class DemoStats:
    """Counters of what the demo authorization server did; safe to publish.

    ``resources_seen`` and ``scopes_seen`` map ``"authorize"``, ``"token"`` and
    ``"refresh"`` to the raw ``resource`` and ``scope`` values clients sent (``None``
    when a request carried none), in arrival order. Read them with :meth:`snapshot`;
    the server thread updates them under a lock.
    """

    registered_clients: int = 0
    authorize_requests: int = 0
    consents_approved: int = 0
    consents_denied: int = 0
    token_exchanges: int = 0
    refreshes: int = 0
    refresh_reuse_detected: int = 0
    refresh_reuse_in_grace: int = 0
    revocations: int = 0
    step_up_challenges: int = 0
    resources_seen: dict[str, list[str | None]] = field(
        default_factory=lambda: {kind: [] for kind in _SEEN_KINDS}
    )
    scopes_seen: dict[str, list[str | None]] = field(
        default_factory=lambda: {kind: [] for kind in _SEEN_KINDS}
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def bump(self, counter: str, by: int = 1) -> None:
        """Add ``by`` to the integer counter named ``counter``."""
        with self._lock:
            setattr(self, counter, getattr(self, counter) + by)

    def record_request(self, kind: str, *, resource: str | None, scope: str | None) -> None:
        """Remember the ``resource`` and ``scope`` a client sent on a ``kind`` request."""
        with self._lock:
            self.resources_seen.setdefault(kind, []).append(resource)
            self.scopes_seen.setdefault(kind, []).append(scope)

    def snapshot(self) -> dict[str, Any]:
        """A consistent, JSON-ready copy of every counter and list."""
        with self._lock:
            return {
                "registered_clients": self.registered_clients,
                "authorize_requests": self.authorize_requests,
                "consents_approved": self.consents_approved,
                "consents_denied": self.consents_denied,
                "token_exchanges": self.token_exchanges,
                "refreshes": self.refreshes,
                "refresh_reuse_detected": self.refresh_reuse_detected,
                "refresh_reuse_in_grace": self.refresh_reuse_in_grace,
                "revocations": self.revocations,
                "step_up_challenges": self.step_up_challenges,
                "resources_seen": {k: list(v) for k, v in self.resources_seen.items()},
                "scopes_seen": {k: list(v) for k, v in self.scopes_seen.items()},
            }


class DemoAuthorizationCode(AuthorizationCode):
    """An authorization code; the SDK's model is enough, named for symmetry."""


class DemoRefreshToken(RefreshToken):
    """A refresh token and the grant it belongs to."""

    grant_id: str


class DemoAccessToken(AccessToken):
    """An access token, its grant, and its expiry to the sub-second."""

    grant_id: str
    expires_at_precise: float


@dataclass
class PendingConsent:
    """An authorization request waiting for a person to approve or deny it.

    ``request_id`` travels in the consent page URL; ``csrf`` only in the page's form,
    so a POST must come from someone who loaded the page. Both are single-use.
    """

    request_id: str
    csrf: str
    client: OAuthClientInformationFull
    params: AuthorizationParams
    scopes: list[str]
    resource: str
    expires_at: float


@dataclass
class _Grant:
    access_tokens: set[str] = field(default_factory=set)
    refresh_token: str | None = None


@dataclass
class _Retired:
    """A refresh token rotation replaced, kept to detect (or, in grace, allow) reuse."""

    token: DemoRefreshToken
    retired_at: float


def _same_url(a: str, b: str) -> bool:
    """Compare two http(s) URLs as RFC 8707 resources: scheme and host case-insensitively,
    a trailing slash aside."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (
        pa.scheme.lower() == pb.scheme.lower()
        and pa.netloc.lower() == pb.netloc.lower()
        and pa.path.rstrip("/") == pb.path.rstrip("/")
        and pa.query == pb.query
    )


class DemoOAuthProvider(
    OAuthAuthorizationServerProvider[DemoAuthorizationCode, DemoRefreshToken, DemoAccessToken]
):
    """In-memory authorization server state for the demo MCP server.

    Use it through :func:`dodo_jupyter.demo.server.build_demo_server`, which wires it
    into the SDK's handlers. Methods are called on the server's event loop only;
    :class:`DemoStats` is the one part other threads read.

    Parameters
    ----------
    issuer_url:
        The AS issuer (``http://127.0.0.1:<port>``), sent as ``iss`` (RFC 9207).
    resource_url:
        The ``/mcp`` URL every token is bound to (RFC 8707).
    scopes_supported:
        Every scope a client may ask for.
    default_scopes:
        What an authorization request without ``scope`` is granted.
    access_token_ttl:
        Access token lifetime in seconds.
    refresh_token_ttl:
        Refresh token lifetime in seconds, or ``None`` for no expiry.
    issue_refresh_tokens:
        Issue a refresh token with every access token (the default). ``False`` answers
        as the MCP SDK's ``simple-auth`` example does: an access token only, so the
        client must sign in again when it expires.
    auto_approve:
        Skip the consent page and redirect back with a code at once.
    advertise_iss:
        Add ``iss`` to every authorization response.
    require_resource:
        Refuse (``invalid_target``) an authorization request without ``resource``
        instead of binding the token to ``resource_url``.
    refresh_reuse_revokes_grant:
        When a retired refresh token is presented again, also revoke its grant
        (OAuth 2.0 Security BCP §4.14.2 reuse detection).
    refresh_reuse_grace:
        Seconds after its rotation during which a retired refresh token still works,
        as Okta's grace period and Auth0's reuse interval allow: a client that lost the
        rotation's answer (it crashed before saving it) can refresh with the old token.
        Such a use retires the grant's current refresh token and issues a new pair.
        ``0`` (the default): strict rotation.
    withheld_scopes:
        Scopes a request may name and the person may approve, but which the grant
        leaves out (RFC 6749 §3.3 lets a server issue a narrower scope than asked):
        a client that steps up for one never gets it. Default none.
    stats:
        Where to count; a new :class:`DemoStats` if omitted.
    """

    def __init__(
        self,
        *,
        issuer_url: str,
        resource_url: str,
        scopes_supported: list[str],
        default_scopes: list[str],
        access_token_ttl: int = 300,
        refresh_token_ttl: int | None = 86400,
        issue_refresh_tokens: bool = True,
        auto_approve: bool = False,
        advertise_iss: bool = True,
        require_resource: bool = False,
        refresh_reuse_revokes_grant: bool = False,
        refresh_reuse_grace: float = 0.0,
        withheld_scopes: tuple[str, ...] = (),
        stats: DemoStats | None = None,
    ) -> None:
        self.issuer_url = issuer_url.rstrip("/")
        self.resource_url = resource_url
        self.scopes_supported = list(scopes_supported)
        self.default_scopes = list(default_scopes)
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.issue_refresh_tokens = issue_refresh_tokens
        self.auto_approve = auto_approve
        self.advertise_iss = advertise_iss
        self.require_resource = require_resource
        self.refresh_reuse_revokes_grant = refresh_reuse_revokes_grant
        self.refresh_reuse_grace = refresh_reuse_grace
        self.withheld_scopes = tuple(withheld_scopes)
        self.stats = stats if stats is not None else DemoStats()
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self._pending: dict[str, PendingConsent] = {}
        self._codes: dict[str, DemoAuthorizationCode] = {}
        self._access: dict[str, DemoAccessToken] = {}
        self._refresh: dict[str, DemoRefreshToken] = {}
        self._grants: dict[str, _Grant] = {}
        self._retired_refresh: dict[str, _Retired] = {}

    # -- clients -------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        """Store a client the SDK's ``/register`` handler (RFC 7591) validated; tests may
        call it directly to pre-register one."""
        self.clients[client_info.client_id] = client_info
        self.stats.bump("registered_clients")

    # -- authorization -------------------------------------------------------------------

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        """Return where ``/authorize`` redirects: the consent page, or (auto-approve)
        the client's ``redirect_uri`` with a fresh code."""
        self.stats.bump("authorize_requests")
        resource = self._check_resource(params.resource)
        scopes = list(params.scopes) if params.scopes is not None else list(self.default_scopes)
        unknown = [s for s in scopes if s not in self.scopes_supported]
        if unknown:
            raise AuthorizeError("invalid_scope", f"unknown scope(s): {' '.join(unknown)}")
        if self.auto_approve:
            self.stats.bump("consents_approved")
            return self._issue_code(client, params, scopes, resource)
        self._forget_expired()
        pending = PendingConsent(
            request_id=secrets.token_urlsafe(24),
            csrf=secrets.token_urlsafe(24),
            client=client,
            params=params,
            scopes=scopes,
            resource=resource,
            expires_at=time.time() + DEFAULT_CONSENT_TTL,
        )
        self._pending[pending.request_id] = pending
        return f"{self.issuer_url}{CONSENT_PATH}?request={pending.request_id}"

    def pending_consent(self, request_id: str) -> PendingConsent | None:
        """The unanswered, unexpired consent request ``request_id``, if any."""
        pending = self._pending.get(request_id)
        if pending is None or pending.expires_at < time.time():
            return None
        return pending

    def answer_consent(self, request_id: str, csrf: str, *, approve: bool) -> str | None:
        """Approve or deny a pending request; return the client redirect URL.

        Returns ``None`` (and changes nothing) when the request is unknown, expired,
        already answered, or ``csrf`` does not match the one its page carried.
        """
        pending = self.pending_consent(request_id)
        if pending is None or not secrets.compare_digest(pending.csrf, csrf):
            return None
        del self._pending[request_id]
        if approve:
            self.stats.bump("consents_approved")
            return self._issue_code(
                pending.client, pending.params, pending.scopes, pending.resource
            )
        self.stats.bump("consents_denied")
        return self._redirect(
            pending.params,
            error="access_denied",
            error_description="The person denied the request",
        )

    def _check_resource(self, resource: str | None) -> str:
        if resource is None:
            if self.require_resource:
                raise AuthorizeError("invalid_target", "the resource parameter is required")
            return self.resource_url
        if not _same_url(resource, self.resource_url):
            raise AuthorizeError("invalid_target", f"unknown resource {resource!r}")
        return self.resource_url

    def _issue_code(
        self,
        client: OAuthClientInformationFull,
        params: AuthorizationParams,
        scopes: list[str],
        resource: str,
    ) -> str:
        code = DemoAuthorizationCode(
            code=secrets.token_urlsafe(32),
            scopes=[s for s in scopes if s not in self.withheld_scopes],
            expires_at=time.time() + DEFAULT_CODE_TTL,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=resource,
            subject=DEMO_SUBJECT,
        )
        self._codes[code.code] = code
        return self._redirect(params, code=code.code)

    def _redirect(self, params: AuthorizationParams, **query: str | None) -> str:
        iss = self.issuer_url if self.advertise_iss else None
        return construct_redirect_uri(
            str(params.redirect_uri), **query, state=params.state, iss=iss
        )

    def _forget_expired(self) -> None:
        now = time.time()
        for request_id in [r for r, p in self._pending.items() if p.expires_at < now]:
            del self._pending[request_id]
        for code in [c for c, v in self._codes.items() if v.expires_at < now]:
            del self._codes[code]

    # -- tokens --------------------------------------------------------------------------

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> DemoAuthorizationCode | None:
        code = self._codes.get(authorization_code)
        if code is None or code.client_id != client.client_id:
            return None
        return code

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: DemoAuthorizationCode
    ) -> OAuthToken:
        # Single use (RFC 6749 §4.1.2): a second exchange finds nothing.
        if self._codes.pop(authorization_code.code, None) is None:
            raise TokenError("invalid_grant", "authorization code was already used")
        grant_id = secrets.token_hex(8)
        self._grants[grant_id] = _Grant()
        self.stats.bump("token_exchanges")
        return self._issue_tokens(
            grant_id,
            client.client_id,
            authorization_code.scopes,
            authorization_code.scopes,
            authorization_code.resource,
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> DemoRefreshToken | None:
        token = self._refresh.get(refresh_token) or self._in_grace(refresh_token)
        if token is None:
            retired = self._retired_refresh.get(refresh_token)
            if retired is not None:
                self.stats.bump("refresh_reuse_detected")
                if self.refresh_reuse_revokes_grant:
                    self._revoke_grant(retired.token.grant_id)
            return None
        if token.client_id != client.client_id:
            return None
        return token

    def _in_grace(self, refresh_token: str) -> DemoRefreshToken | None:
        """The retired ``refresh_token`` if it is still within the reuse grace."""
        retired = self._retired_refresh.get(refresh_token)
        if retired is None or retired.token.grant_id not in self._grants:
            return None
        if time.time() - retired.retired_at >= self.refresh_reuse_grace:
            return None
        return retired.token

    async def exchange_refresh_token(
        self,
        client: OAuthClientInformationFull,
        refresh_token: DemoRefreshToken,
        scopes: list[str],
    ) -> OAuthToken:
        grant = self._grants.get(refresh_token.grant_id)
        if grant is None:
            raise TokenError("invalid_grant", "refresh token is no longer valid")
        if self._refresh.get(refresh_token.token) is not refresh_token:
            if self._in_grace(refresh_token.token) is None:
                raise TokenError("invalid_grant", "refresh token is no longer valid")
            self.stats.bump("refresh_reuse_in_grace")
        # Rotation: the grant's current refresh token is retired; only the new one works.
        now = time.time()
        for retiring in {refresh_token.token, grant.refresh_token} - {None}:
            current = self._refresh.pop(str(retiring), None)
            if current is not None:
                self._retired_refresh[current.token] = _Retired(current, now)
        grant.refresh_token = None
        self.stats.bump("refreshes")
        return self._issue_tokens(
            refresh_token.grant_id,
            client.client_id,
            scopes,
            refresh_token.scopes,
            refresh_token.resource,
        )

    def _issue_tokens(
        self,
        grant_id: str,
        client_id: str,
        scopes: list[str],
        refresh_scopes: list[str],
        resource: str | None,
    ) -> OAuthToken:
        now = time.time()
        grant = self._grants[grant_id]
        access = DemoAccessToken(
            token=secrets.token_urlsafe(32),
            client_id=client_id,
            scopes=scopes,
            expires_at=int(now) + self.access_token_ttl + 1,
            expires_at_precise=now + self.access_token_ttl,
            resource=resource,
            subject=DEMO_SUBJECT,
            claims={"iss": self.issuer_url},
            grant_id=grant_id,
        )
        refresh = DemoRefreshToken(
            token=secrets.token_urlsafe(32),
            client_id=client_id,
            scopes=refresh_scopes,
            expires_at=int(now) + self.refresh_token_ttl if self.refresh_token_ttl else None,
            resource=resource,
            subject=DEMO_SUBJECT,
            grant_id=grant_id,
        )
        self._access[access.token] = access
        grant.access_tokens.add(access.token)
        if self.issue_refresh_tokens:
            self._refresh[refresh.token] = refresh
            grant.refresh_token = refresh.token
        return OAuthToken(
            access_token=access.token,
            token_type="Bearer",  # noqa: S106 - the RFC 6750 token type, not a secret
            expires_in=self.access_token_ttl,
            scope=" ".join(scopes),
            refresh_token=refresh.token if self.issue_refresh_tokens else None,
        )

    async def load_access_token(self, token: str) -> DemoAccessToken | None:
        """The live access token ``token``; ``None`` once expired (to the sub-second,
        so a 1 s TTL expires after 1 s, not after the next whole second) or revoked."""
        access = self._access.get(token)
        if access is None:
            return None
        if access.expires_at_precise <= time.time():
            del self._access[token]
            grant = self._grants.get(access.grant_id)
            if grant is not None:
                grant.access_tokens.discard(token)
            return None
        return access

    # -- revocation ----------------------------------------------------------------------

    async def revoke_token(self, token: DemoAccessToken | DemoRefreshToken) -> None:
        """Revoke ``token``'s whole grant: every access token and the refresh token."""
        if self._revoke_grant(token.grant_id):
            self.stats.bump("revocations")

    def _revoke_grant(self, grant_id: str) -> bool:
        grant = self._grants.pop(grant_id, None)
        if grant is None:
            return False
        for access in grant.access_tokens:
            self._access.pop(access, None)
        if grant.refresh_token is not None:
            self._refresh.pop(grant.refresh_token, None)
        return True
