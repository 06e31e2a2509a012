"""A user's connections to MCP servers: start, finish, refresh, configure, disconnect.

A connection is one user's link to one server URL (usually a catalog entry). Its
``state`` is one of:

``authenticating``  an OAuth flow was started; waiting for the callback
``connected``       credentials work (or none are needed); ``tool_count`` is known
``needs_auth``      the stored sign-in no longer works: the user must connect again
``error``           the last attempt failed; ``error`` says why (never a secret)

A connection whose server gave no refresh token stays ``connected`` while its access
token is valid; its row announces the new sign-in due then (``sign_in_needed_at``,
``warning``), and it turns ``needs_auth`` once the token has expired: the next time its
rows are read (:meth:`ConnectionService.usable`, :meth:`~ConnectionService.for_user`),
and the gateway's cached listing ends at that moment (:meth:`ConnectionService.tick`).

A ``403 insufficient_scope`` leads to a *step-up* (:meth:`ConnectionService.step_up`,
shown to the user by :mod:`dodo_jupyter.gateway.step_up`): a new flow for more scopes,
while the connection keeps working with what it was granted.

OAuth specifics live in :mod:`dodo_jupyter.oauth`; this service decides when to use
stored credentials, when to refresh and when to start a new flow, and keeps the row.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx2

from .catalog import CatalogService
from .catalog.entry import check_header_values
from .connection_rows import USABLE_STATES, ConnectionRows, public_json
from .connection_targets import resolve_target
from .exceptions import (
    BadRequest,
    Conflict,
    DodoError,
    Forbidden,
    NotFound,
    UpstreamError,
    ValidationFailed,
)
from .governance.tool_policy import parse_policy
from .net.hosts import parse_host_rules, rule_for_url
from .net.outbound import Outbound
from .oauth.discovery import Challenge
from .oauth.flow import OAuthEngine, hash_state, scope_of
from .oauth.token_keeper import NeedsAuth, TokenKeeper
from .sign_in_ends import SignInEnds
from .store.models import MCPConnection
from .upstream import AuthRejected, Upstream, probe

__all__ = ["MAX_STEP_UPS", "USABLE_STATES", "ConnectionService"]

log = logging.getLogger(__name__)

#: Scope step-ups allowed in a row before the connection reports an error: step-ups that
#: ask for no scope not asked for already (the last consent did not satisfy the server).
#: A step-up asking for a new scope, and connecting anew, start the count again.
MAX_STEP_UPS = 2


class ConnectionService:
    """Starts and keeps users' connections.

    Parameters
    ----------
    rows, catalog:
        The connections' rows (the table's one owner) and the catalog.
    engine, keeper:
        The OAuth engine (authorization flows) and the token keeper (the rows' token
        columns: access tokens, refresh, revocation).
    outbound:
        Guarded HTTP clients.
    allowed_hosts:
        ``DodoApp.allowed_hosts``: extra hosts any flow may reach, and the hosts whose
        URLs users may connect without a catalog entry; rules of
        :mod:`dodo_jupyter.net.hosts`, matched as the outbound guard matches them.
    allow_insecure_loopback:
        Accept http:// URLs on loopback hosts (development and tests only).
    """

    def __init__(
        self,
        rows: ConnectionRows,
        catalog: CatalogService,
        engine: OAuthEngine,
        keeper: TokenKeeper,
        outbound: Outbound,
        *,
        allowed_hosts: list[str] | None = None,
        allow_insecure_loopback: bool = False,
        check_timeout: float = 10.0,
    ) -> None:
        self.rows = rows
        self.catalog = catalog
        self.engine = engine
        self.keeper = keeper
        self.outbound = outbound
        self.allowed_hosts = parse_host_rules(allowed_hosts or [])
        self.allow_insecure_loopback = allow_insecure_loopback
        #: Total seconds of each request of a connection's checks (initialize, tools/list).
        self.check_timeout = check_timeout
        #: Called with a connection id whenever its credentials change or it is deleted
        #: (the gateway closes that connection's upstream session).
        self.listeners: list[Callable[[str], Awaitable[None]]] = []
        #: Called with a flow's id (``hash_state``) once its callback was handled, either way.
        self.flow_listeners: list[Callable[[str], Awaitable[None]]] = []
        #: Counts this process's writes to connections (rows created or changed,
        #: credentials changed, deletions, states the token keeper set): the gateway's
        #: listing cache compares it to see that the rows it was built from may have
        #: changed.
        self.generation = 0
        #: When sign-ins without a refresh token run out (:mod:`.sign_in_ends`).
        self.sign_in_ends = SignInEnds(keeper, self.rows, self._bump)
        keeper.state_changed = self._keeper_changed

    def _keeper_changed(self, connection_id: str) -> None:
        self.generation += 1

    async def _changed(self, connection_id: str) -> None:
        self.generation += 1
        self.keeper.fresh.forget(connection_id)
        for listener in self.listeners:
            await listener(connection_id)

    def _bump(self) -> None:
        self.generation += 1

    def tick(self) -> None:
        """See :meth:`SignInEnds.tick` (the gateway calls it before each listing)."""
        self.sign_in_ends.tick()

    # -- reads --------------------------------------------------------------------------

    async def for_user(self, username: str) -> list[dict[str, Any]]:
        rows = await self.sign_in_ends.settled(await self.rows.of_user(username))
        return [public_json(row) for row in rows]

    async def usable(self, username: str) -> list[MCPConnection]:
        """The user's connections whose credentials the gateway tries (connected, or in
        error, with a sign-in that has not run out), oldest first."""
        rows = await self.sign_in_ends.settled(await self.rows.of_user(username, usable=True))
        return [row for row in rows if row.state in USABLE_STATES]

    async def unusable(self, username: str) -> list[MCPConnection]:
        """The user's connections that need the user (signing in, sign-in expired…)."""
        await self.sign_in_ends.settled(await self.rows.of_user(username, usable=True))
        return await self.rows.of_user(username, usable=False)

    async def get(self, username: str, connection_id: str) -> MCPConnection:
        """One of ``username``'s connections; :class:`NotFound` for anyone else's."""
        row = await self.rows.get(connection_id)
        if row is None or row.username != username:
            raise NotFound(f"No connection {connection_id!r}.")
        return row

    # -- targets ------------------------------------------------------------------------

    async def _row_for(
        self, username: str, entry: Mapping[str, Any] | None, url: str
    ) -> MCPConnection:
        try:
            return await self.rows.find_or_create(
                username,
                url,
                catalog_id=entry["id"] if entry else None,
                auth_type=entry["auth_type"] if entry else "oauth",
                transport=entry["transport"] if entry else "streamable-http",
            )
        finally:
            self.generation += 1

    # -- start --------------------------------------------------------------------------

    async def start_auth(
        self, username: str, *, catalog_id: object = None, url: object = None, redirect_uri: str
    ) -> dict[str, Any]:
        """Use stored credentials when they work, else start an OAuth flow (always a new
        flow for a connection in ``needs_auth``: its stored sign-in is known to be over).

        Returns ``{"state": "connected", "connection_id"}`` or
        ``{"state": "authenticating", "connection_id", "authorize_url"}``.
        """
        entry, server_url, hosts = await resolve_target(
            self.catalog, catalog_id, url, self.allowed_hosts, self.allow_insecure_loopback
        )
        if entry is not None and entry["auth_type"] == "static_headers":
            raise BadRequest(
                f"{entry['id']!r} authenticates with headers, not OAuth: send them to "
                "POST /dodo/api/mcp/configs."
            )
        row = await self._row_for(username, entry, server_url)
        policy = (entry or {}).get("oauth") or {}
        challenge = Challenge()
        if row.tokens_enc and row.state != "needs_auth":
            try:
                # Connecting anew: step-ups in a row start again from zero.
                await self._check_with_token(row, step_ups=0)
                return {"state": "connected", "connection_id": row.id}
            except NeedsAuth:
                pass
            except AuthRejected as e:
                challenge = e.challenge
        else:
            async with self.outbound.client(hosts) as http:
                result = await probe(http, server_url)
            legacy_sse = row.transport == "sse" and result.status in (404, 405)
            if result.ok or legacy_sse:
                protected = await self._connect_without_auth(row, hosts)
                if protected is None:
                    return {"state": "connected", "connection_id": row.id}
                challenge = protected
            elif result.status not in (401, 403):
                message = f"The MCP server answered HTTP {result.status} to initialize."
                await self._set(row.id, state="error", error=message)
                raise UpstreamError(message)
            else:
                challenge = result.challenge
        authorize_url = await self._begin(username, row, hosts, redirect_uri, challenge, policy)
        if row.step_ups:
            await self._set(row.id, step_ups=0)  # the user starts over
        return {"state": "authenticating", "connection_id": row.id, "authorize_url": authorize_url}

    async def _begin(
        self,
        username: str,
        row: MCPConnection,
        hosts: list[str],
        redirect_uri: str,
        challenge: Challenge,
        policy: Mapping[str, Any],
        previous_scope: str | None = None,
        *,
        step_up: bool = False,
    ) -> str:
        """Start a flow; the connection turns ``authenticating`` (a step-up's keeps working)."""
        try:
            url = await self.engine.begin(
                username=username,
                connection_id=row.id,
                server_url=row.url,
                hosts=hosts,
                redirect_uri=redirect_uri,
                challenge=challenge,
                policy=policy,
                previous_scope=previous_scope,
                step_up=step_up,
            )
        except DodoError as e:
            await self._set(row.id, state="error", error=e.message)
            raise
        if step_up:
            await self._set(row.id, requested_scopes=scope_of(url))
        else:
            await self._set(row.id, state="authenticating", error="")
        return url

    async def _connect_without_auth(self, row: MCPConnection, hosts: list[str]) -> Challenge | None:
        """After an ``initialize`` that needed no credentials: list the tools without any.
        None when that works (the connection needs no auth), else the challenge of the
        ``401``/``403``: a server may leave ``initialize`` open and protect the rest."""
        upstream = Upstream(
            lambda **kw: self.outbound.client(hosts, **kw),
            row.url,
            {},
            sse_fallback=row.transport == "sse",
            timeout=self.check_timeout,
        )
        try:
            tools = await upstream.list_tools()
        except AuthRejected as e:
            return e.challenge
        except DodoError as e:  # the row says so, and so does the answer
            await self._set(row.id, auth_type="none", state="error", error=e.message)
            raise
        await self._set(
            row.id, auth_type="none", state="connected", error="", tool_count=len(tools)
        )
        return None

    # -- callback -----------------------------------------------------------------------

    async def complete(self, username: str | None, query: Mapping[str, str | None]) -> str:
        """Finish a flow from the callback's query; returns the connection id. The
        :attr:`flow_listeners` hear of it either way."""
        state = query.get("state")
        try:
            connection_id = await self.engine.complete(
                username=username,
                state=state,
                code=query.get("code"),
                iss=query.get("iss"),
                error=query.get("error"),
                error_description=query.get("error_description"),
            )
            await self._changed(connection_id)
            await self._refresh_tool_count(connection_id)
            return connection_id
        finally:
            if state:
                await self._flow_finished(hash_state(state))

    async def _flow_finished(self, flow_id: str) -> None:
        for listener in self.flow_listeners:
            try:
                await listener(flow_id)
            except Exception:  # it must not change the callback's answer
                log.exception("dodo: a listener of finished sign-ins failed")

    # -- using credentials --------------------------------------------------------------

    async def headers_for(self, row: MCPConnection, *, stale: str | None = None) -> dict[str, str]:
        """Request headers for the server: a fresh bearer token, or the static headers."""
        if row.auth_type == "oauth":
            token = await self.keeper.access_token(row.id, stale=stale)
            return {"Authorization": f"Bearer {token}"}
        if row.auth_type == "static_headers":
            return self.rows.static_headers(row)
        return {}

    def client_for(self, row: MCPConnection) -> Callable[..., httpx2.AsyncClient]:
        """Builds the guarded clients of a connection's requests: to the hosts its
        sign-in found, or its URL's host and the administrator's allowlist."""
        hosts = list(
            (row.oauth_meta or {}).get("hosts") or [rule_for_url(row.url), *self.allowed_hosts]
        )
        return lambda **kw: self.outbound.client(hosts, **kw)

    def upstream(self, row: MCPConnection, headers: dict[str, str]) -> Upstream:
        return Upstream(
            self.client_for(row),
            row.url,
            headers,
            sse_fallback=row.transport == "sse",
            timeout=self.check_timeout,
        )

    async def _check_with_token(self, row: MCPConnection, **values: Any) -> None:
        """List tools with the stored credentials (refreshing once after a 401): connected."""
        headers = await self.headers_for(row)
        try:
            tools = await self.upstream(row, headers).list_tools()
        except AuthRejected as e:
            if e.http_status != 401 or row.auth_type != "oauth":
                raise
            stale = headers["Authorization"].removeprefix("Bearer ")
            headers = await self.headers_for(row, stale=stale)
            tools = await self.upstream(row, headers).list_tools()
        await self._set(row.id, state="connected", error="", tool_count=len(tools), **values)

    async def _refresh_tool_count(self, connection_id: str) -> None:
        row = await self.rows.get(connection_id)
        if row is None:
            return
        try:
            await self._check_with_token(row)
        except NeedsAuth:
            return  # the keeper recorded the state
        except DodoError as e:
            await self._set(connection_id, state="error", error=e.message)

    async def refresh_state(self, username: str, connection_id: str) -> dict[str, Any]:
        """Refresh credentials and check the server again, without a new sign-in."""
        row = await self.get(username, connection_id)
        if row.auth_type == "oauth" and row.tokens_enc:
            try:
                # Without a refresh token this only checks the access token's expiry: a
                # valid token stays in use, and the row's warning says when it ends.
                await self.keeper.refresh(row.id)
            except NeedsAuth:
                # The keeper recorded needs_auth and why.
                return public_json(await self.get(username, connection_id))
            except DodoError as e:
                log.info("dodo: refresh of %s failed: %s", row.id, e.message)
        await self._refresh_tool_count(row.id)
        return public_json(await self.get(username, connection_id))

    async def step_up(
        self,
        username: str,
        connection_id: str,
        challenge: Challenge,
        *,
        redirect_uri: str | None = None,
    ) -> str:
        """Start a new flow asking for the granted scopes plus the challenge's (after a
        ``403 insufficient_scope``) and return its authorization URL; the connection
        stays usable meanwhile. Refused after :data:`MAX_STEP_UPS` in a row. The
        redirect URI defaults to the one the connection was made with.

        Raises
        ------
        Conflict
            the server keeps asking for scopes already asked for (the connection turns
            ``error`` and says so).
        NeedsAuth
            the connection has no OAuth sign-in to extend.
        """
        row = await self.get(username, connection_id)
        redirect_uri = redirect_uri or (row.oauth_meta or {}).get("redirect_uri")
        if row.auth_type != "oauth" or not row.tokens_enc or not redirect_uri:
            raise NeedsAuth("This connection has no sign-in to extend: connect it first.")
        asked = set((challenge.scope or "").split())
        known = set(row.requested_scopes.split()) | set(row.scopes.split())
        in_a_row = row.step_ups if asked <= known else 0
        if in_a_row >= MAX_STEP_UPS:
            message = (
                f"The server still wants more scopes after {MAX_STEP_UPS} step-ups "
                f"(last asked for {challenge.scope!r}); ask its administrator."
            )
            await self._set(row.id, state="error", error=message)
            raise Conflict(message)
        await self._set(row.id, step_ups=in_a_row + 1)
        meta = row.oauth_meta or {}
        entry = None
        if row.catalog_id:
            try:
                entry = await self.catalog.get_enabled(row.catalog_id)
            except NotFound:
                entry = None
        policy = dict((entry or {}).get("oauth") or meta.get("policy") or {})
        policy.pop("scopes", None)  # the challenge decides; union with what was granted
        hosts = list(meta.get("hosts") or [rule_for_url(row.url), *self.allowed_hosts])
        previous = row.scopes or row.requested_scopes or None
        return await self._begin(
            username, row, hosts, redirect_uri, challenge, policy, previous, step_up=True
        )

    # -- static headers -----------------------------------------------------------------

    async def configure_headers(
        self, username: str, catalog_id: object, headers: object
    ) -> dict[str, Any]:
        """Store the header values a ``static_headers`` entry declares, then check them."""
        if not isinstance(catalog_id, str):
            raise ValidationFailed(
                "'catalog_id' must be a string.", fields={"catalog_id": "required string"}
            )
        entry = await self.catalog.get_enabled(catalog_id)
        if entry["auth_type"] != "static_headers":
            raise BadRequest(
                f"{catalog_id!r} does not take headers (auth_type "
                f"{entry['auth_type']!r}); connect it with start-auth."
            )
        values = check_header_values(entry["headers"], headers)
        row = await self._row_for(username, entry, entry["url"])
        ciphertext = self.rows.encrypt(values)
        await self._set(
            row.id, headers_enc=ciphertext, auth_type="static_headers", state="connected", error=""
        )
        await self._changed(row.id)
        await self._refresh_tool_count(row.id)
        return public_json(await self.get(username, row.id))

    # -- disconnect ---------------------------------------------------------------------

    async def delete_auth(self, username: str, connection_id: str) -> dict[str, Any]:
        """Revoke at the authorization server (best effort), then delete the connection's
        tokens, header values, pending flows and its client registration."""
        row = await self.get(username, connection_id)
        # End the upstream session first, while its credentials still work (its DELETE
        # would otherwise fail); the second call below drops one opened meanwhile.
        await self._changed(row.id)
        revoked = await self.keeper.revoke(row) if row.auth_type == "oauth" else False
        await self.rows.delete(row, username=username, revoked=revoked)
        await self._changed(row.id)
        return {"connection_id": row.id, "revoked": revoked}

    async def set_tool_policy(
        self, username: str, connection_id: str, data: object
    ) -> dict[str, Any]:
        """Set the user's own tool policy of a server outside the catalog (the same fields
        as a catalog entry's); a catalog server's policy is its administrator's."""
        row = await self.get(username, connection_id)
        if row.catalog_id:
            raise Forbidden(
                f"The tool policy of {row.catalog_id!r} is set by an administrator in the "
                "catalog; switch single tools off for agents in the Tools section instead."
            )
        policy = parse_policy(data)
        await self._set(row.id, tool_policy=None if policy.is_open else policy.to_json())
        return {"connection_id": row.id, "tool_policy": policy.to_json()}

    async def set_state(self, connection_id: str, **values: Any) -> None:
        """Change columns of a connection (``state``, ``error``, ``tool_count``, …)."""
        await self._set(connection_id, **values)

    async def _set(self, connection_id: str, **values: Any) -> None:
        try:
            await self.rows.update(connection_id, **values)
        finally:
            self.generation += 1
