"""The gateway service: every connected tool of a user, under one set of names.

``list_tools`` fans out to the user's servers concurrently, each with its own timeout,
so one slow or broken server never holds up the others: its error is written to its
connection's status and its tools are simply absent until it recovers. Names come from
:mod:`.naming`; each user's route table (aggregated name → connection, original name,
input schema) is kept from the last listing so ``call_tool`` needs no upstream listing.
Per-user switches decide which tools agents see (``tool_settings``; exposed by default).
A finished listing in which every server answered is kept in a :class:`.ListingCache`
until something it was built from may have changed (see :mod:`.listing`), so a warm
``tools/list`` reads no database and asks no session; when only a server's tools changed
(``tools/list_changed``, the tool TTL), the next listing asks the servers again but
reuses the connections and switches it was built from.

Resources, prompts, completion and logging are the :class:`.Directory`'s
(``service.directory``); the client sessions told of changes are
:class:`.LiveSessions` (``service.live``). A call whose client can be asked things
(elicitation, sampling, roots) goes through an upstream session that declared what that
client declared (:meth:`GatewayService.call_tool`'s ``relay``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any

import mcp_types as types
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..connections import ConnectionService
from ..exceptions import DodoError, NotFound, ValidationFailed
from ..governance.gate import CallContext, ToolGate, ToolRefused
from ..governance.pins import PinBook
from ..governance.tool_policy import ToolPolicy
from ..oauth.token_keeper import NeedsAuth
from ..store import Store
from ..store.models import MCPConnection, ToolSetting, utcnow
from ..tool_results import ToolCallResult
from ..upstream import AuthRejected, UpstreamSession
from ..upstream.messages import Relay
from .caller import LOOP_ERROR, current_caller, outbound_meta
from .directory import Directory, Server
from .listing import ListingCache
from .live import LiveSessions
from .naming import aggregate_names
from .policies import CatalogPolicies
from .relay import capabilities_key
from .routes import Inputs, Listing, Route, alias_of, tool_error, unrouted
from .step_up import StepUps
from .upstream_sessions import UpstreamSessions

__all__ = ["GatewayService", "Route"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]


class _Unroutable(DodoError):
    """The route's connection is gone."""


class GatewayService:
    """Aggregates, lists and calls a user's tools.

    Parameters
    ----------
    store, connections:
        The opened store and the connection service (credentials, states).
    pool:
        The upstream sessions.
    server_timeout:
        Seconds one server may take to list its tools.
    tools_ttl, max_concurrency:
        Passed to each :class:`UpstreamSession`.
    listing_ttl:
        Seconds a user's finished listing is served from the :class:`.ListingCache` at
        most (it ends sooner when a connection, a switch or a server's tools change);
        ``0`` lists every time.
    """

    def __init__(
        self,
        store: Store,
        connections: ConnectionService,
        pool: UpstreamSessions,
        *,
        server_timeout: float = 10.0,
        call_timeout: float = 120.0,
        tools_ttl: float = 300.0,
        max_concurrency: int = 8,
        listing_ttl: float = 60.0,
        gate: ToolGate,
        pins: PinBook,
    ) -> None:
        self._store = store
        self.connections = connections
        self.pool = pool
        self.gate = gate
        self.pins = pins
        self.server_timeout = server_timeout
        self.call_timeout = call_timeout
        self.tools_ttl = tools_ttl
        self.max_concurrency = max_concurrency
        self._routes: dict[str, dict[str, Route]] = {}
        self._policies = CatalogPolicies(connections.catalog)
        self._listings: ListingCache[Listing] = ListingCache(listing_ttl)
        #: The inputs of each user's last listing, valid on the listing cache's terms
        #: without its tool stamps (:meth:`_inputs_of`).
        self._inputs: ListingCache[Inputs] = ListingCache(listing_ttl)
        #: Changes made here that end cached listings (switches, a call that needs a
        #: sign-in); with the connection service's generation it is the cache's generation.
        self._edits = 0
        #: Connection writes made by :meth:`_mark`.
        self._marks = 0
        self.directory = Directory(self)
        self.live = LiveSessions(self._announced)
        #: Step-ups after ``403 insufficient_scope``: their consent URLs (:mod:`.step_up`).
        self.step_ups = StepUps(connections)

    # -- sessions -----------------------------------------------------------------------

    def _session(
        self, row: MCPConnection, capabilities: dict[str, Any] | None = None
    ) -> UpstreamSession:
        """The connection's shared session; with ``capabilities`` (to declare to the
        server, see :mod:`.relay`), the connection's session for callers declaring them."""
        service = self.connections
        static: list[dict[str, str]] = []
        variant = capabilities_key(capabilities or {})
        alias = alias_of(row)

        async def on_event(message: dict[str, Any]) -> None:
            await self.live.upstream_event(row.username, alias, message)

        async def headers(stale: str | None) -> dict[str, str]:
            # The row as the session was opened with: credential changes (new sign-in,
            # new header values, disconnect) discard the session through forget(). Static
            # header values are decrypted once per session, tokens kept fresh by the token keeper.
            if row.auth_type == "oauth":
                return await service.headers_for(row, stale=stale)
            if not static:
                static.append(await service.headers_for(row))
            return static[0]

        return self.pool.ensure(
            f"{row.id}#{variant}" if variant else row.id,
            lambda: UpstreamSession(
                row.id,
                row.url,
                service.client_for(row),
                headers,
                max_concurrency=self.max_concurrency,
                tools_ttl=self.tools_ttl,
                timeout=self.call_timeout,
                sse_fallback=row.transport == "sse",
                # The shared session hears what the server says outside calls; a
                # variant only serves calls (their streams carry what concerns them).
                listen=not variant,
                capabilities=capabilities,
                on_event=None if variant else on_event,
                on_open=None if variant else partial(self.directory.restore, row.username, row.id),
            ),
        )

    async def servers(self, username: str) -> list[Server]:
        """The user's usable connections, with their shared sessions."""
        rows, _ = await self._inputs_of(username, self._generation())
        return [Server(alias_of(row), row, self._session(row)) for row in rows]

    async def _switches(self, username: str) -> dict[str, bool]:
        def query(session: Session) -> dict[str, bool]:
            rows = session.scalars(select(ToolSetting).where(ToolSetting.username == username))
            return {row.name: row.enabled for row in rows}

        return await self._store.db.read(query)

    # -- listing ------------------------------------------------------------------------

    async def _server_tools(
        self, row: MCPConnection, policy: ToolPolicy
    ) -> tuple[list[types.Tool], dict[str, str]] | None:
        """The server's tools and the quarantined ones among them; None when it failed."""
        try:
            tools = await asyncio.wait_for(
                self._session(row).list_tools(outbound_meta()), self.server_timeout
            )
        except TimeoutError:
            await self._mark(
                row,
                "error",
                f"The server did not list its tools within {self.server_timeout:.0f} s.",
            )
            return None
        except NeedsAuth:
            return None  # the token keeper recorded needs_auth
        except DodoError as e:
            await self._mark(row, "error", e.message)
            caller = current_caller()
            if LOOP_ERROR in e.message and caller is not None and caller.hop > 0:
                raise  # pass the loop up to the gateway that called us, and so on to the user
            return None
        if row.state != "connected" or row.tool_count != len(tools):
            await self._mark(row, "connected", "", tool_count=len(tools))
        quarantined = await self.pins.check(row.id, tools, review_new=policy.review_new_tools)
        return tools, dict(quarantined)

    async def _mark(self, row: MCPConnection, state: str, error: str, **values: Any) -> None:
        """Record a connection's state as a listing found it (unless the row already
        says so). Open sessions are not told of these writes (:meth:`_announced`): they
        come from a listing, and a server that stays down would otherwise make every
        session list again and again."""
        wanted = {"state": state, "error": error, **values}
        if all(getattr(row, key, None) == value for key, value in wanted.items()):
            return
        try:
            await self.connections.set_state(row.id, **wanted)
        finally:
            self._marks += 1  # the connection service counted this write too

    def _stamp(self, connection_id: str) -> int | None:
        session = self.pool.get(connection_id)
        return session.tools_stamp() if session is not None else None

    def _generation(self) -> int:
        # A sign-in that ran out (no refresh token) counts as a change when it ends.
        self.connections.tick()
        # The counters only grow, so their sum changes whenever one does.
        catalog = self.connections.catalog.cache.changes
        return self.connections.generation + self._edits + catalog

    def _announced(self) -> int:
        """The generation open sessions are told of: all changes but :meth:`_mark`'s."""
        return self._generation() - self._marks

    def _invalidate(self, username: str) -> None:
        """End ``username``'s cached listing, and any listing already under way."""
        self._edits += 1
        self._listings.drop(username)

    async def _inputs_of(self, username: str, generation: int) -> Inputs:
        """The user's usable connections and tool switches: those of the last listing
        while they cannot have changed (the same generation, and younger than the
        listing cache's ``max_age``, its bound for changes this process does not see),
        else read again. A listing whose servers' tools changed re-lists the servers,
        not the database."""
        known = self._inputs.get(username, generation, lambda _: None)
        if known is not None:
            return known
        rows, switches = await asyncio.gather(
            self.connections.usable(username), self._switches(username)
        )
        self._inputs.put(username, (rows, switches), generation, {})
        return rows, switches

    async def _listing(self, username: str) -> Listing:
        cached = self._listings.get(username, self._generation(), self._stamp)
        if cached is not None:
            return cached
        generation = self._generation()
        rows, switches = await self._inputs_of(username, generation)
        policies = await self._policies.current()
        row_policies = [self._policies.of(row, policies) for row in rows]
        listed = await asyncio.gather(
            *(self._server_tools(r, p) for r, p in zip(rows, row_policies, strict=True))
        )
        pairs: list[tuple[str, str]] = []
        found: dict[tuple[str, str], tuple[MCPConnection, ToolPolicy, types.Tool, str | None]] = {}
        for row, policy, answer in zip(rows, row_policies, listed, strict=True):
            tools, quarantined = answer or ([], {})
            for tool in tools:
                key = (alias_of(row), tool.name)
                pairs.append(key)
                found[key] = (row, policy, tool, quarantined.get(tool.name))
        names = aggregate_names(pairs)
        table = {
            name: Route(
                name=name,
                connection_id=found[key][0].id,
                server_id=found[key][0].catalog_id or found[key][0].id,
                original_name=key[1],
                tool=found[key][2],
                enabled=switches.get(name, True),
                catalog_id=found[key][0].catalog_id,
                policy=found[key][1],
                quarantine=found[key][3],
            )
            for key, name in sorted(names.items(), key=lambda item: item[1])
        }
        self._routes[username] = table
        listing = Listing(
            table,
            [
                route.tool.model_copy(update={"name": route.name})
                for route in table.values()
                if route.offered
            ],
        )
        stamps = {row.id: stamp for row in rows if (stamp := self._stamp(row.id)) is not None}
        if all(tools is not None for tools in listed) and len(stamps) == len(rows):
            self._listings.put(username, listing, generation, stamps)
        return listing

    async def routes(self, username: str) -> dict[str, Route]:
        """Every tool of ``username``'s usable connections, by aggregated name."""
        return (await self._listing(username)).routes

    async def list_tools(self, username: str) -> list[types.Tool]:
        """The tools agents see (switched on, allowed by the policy, not quarantined),
        under their aggregated names."""
        return list((await self._listing(username)).tools)

    async def describe_tools(self, username: str) -> list[dict[str, Any]]:
        """Every tool with its switch, for the tools API and the sidebar."""
        return [
            {
                "name": route.name,
                "server_id": route.server_id,
                "connection_id": route.connection_id,
                "original_name": route.original_name,
                "description": route.tool.description or "",
                "input_schema": route.tool.input_schema,
                "enabled": route.enabled,
                "refused": route.policy.refusal(route.tool),
                "needs_approval": route.policy.needs_approval(route.tool),
                "quarantine": route.quarantine,
                "review": self._review_of(route),
            }
            for route in (await self.routes(username)).values()
        ]

    def _review_of(self, route: Route) -> dict[str, Any] | None:
        """What changed in a quarantined tool: the accepted definition (none for a new
        tool), the one the server now gives, and its digest (for the acceptance)."""
        if route.quarantine is None:
            return None
        pin = self.pins.waiting(route.connection_id).get(route.original_name)
        if pin is None:
            return None
        return {"digest": pin.pending_digest, "before": pin.definition, "after": pin.pending}

    async def accept_tool(self, username: str, name: str, digest: str) -> dict[str, Any]:
        """Accept the reviewed definition ``digest`` of ``username``'s quarantined tool."""
        table = await self.routes(username)
        route = table.get(name)
        if route is None:
            raise NotFound(f"No tool named {name!r} among your connected servers.")
        await self.pins.accept(route.connection_id, route.original_name, digest, username)
        self._invalidate(username)
        table[name] = replace(route, quarantine=None)
        return {"name": name, "accepted": digest}

    def input_schema(self, username: str, name: str) -> dict[str, Any] | None:
        """The cached input schema of an aggregated tool (no I/O)."""
        route = self._routes.get(username, {}).get(name)
        return dict(route.tool.input_schema) if route is not None else None

    async def set_enabled(self, username: str, name: str, enabled: object) -> dict[str, Any]:
        """Expose a tool to agents, or hide it."""
        if not isinstance(enabled, bool):
            raise ValidationFailed(
                "'enabled' must be true or false.", fields={"enabled": "boolean required"}
            )
        table = self._routes.get(username)
        if table is None or name not in table:
            table = await self.routes(username)
        if name not in table:
            raise NotFound(f"No tool named {name!r} among your connected servers.")

        def save(session: Session) -> None:
            row = session.get(ToolSetting, (username, name))
            if row is None:
                session.add(
                    ToolSetting(username=username, name=name, enabled=enabled, updated_at=utcnow())
                )
            else:
                row.enabled = enabled
                row.updated_at = utcnow()

        await self._store.db.write(save)
        self._invalidate(username)
        table[name] = replace(table[name], enabled=enabled)
        return {"name": name, "enabled": enabled}

    # -- calling ------------------------------------------------------------------------

    async def _route(self, username: str, name: str) -> Route | None:
        route = self._routes.get(username, {}).get(name)
        if route is None:
            route = (await self.routes(username)).get(name)
        return route

    async def call_tool(
        self,
        username: str,
        name: str,
        arguments: dict[str, Any],
        progress: ProgressFn | None = None,
        context: CallContext | None = None,
        relay: Callable[[str], Relay] | None = None,
    ) -> ToolCallResult:
        """Call a tool by its aggregated name, through the governance gate (``context``
        says who calls and how; by default the user through the gateway). ``relay(alias)``
        gives the caller's relay for server requests (:mod:`.relay`), when it has one.

        Problems come back as tool errors (``isError``) with a message saying what to
        do; a call the gate refuses raises :class:`~dodo_jupyter.governance.gate.ToolRefused`.
        """
        route = await self._route(username, name)
        if route is None:
            return await self._no_route(username, name)
        if not route.enabled:
            return tool_error(f"The tool {name!r} is switched off for agents in the MCP panel.")
        if route.catalog_id:  # the administrator's policy as it is now
            route = replace(route, policy=await self._policies.of_entry(route.catalog_id))

        relayed = relay(route.alias) if relay is not None else None

        async def call() -> ToolCallResult:
            asks = relayed is not None and bool(relayed.capabilities)
            session = None if asks else self.pool.get(route.connection_id)
            if session is None:
                try:
                    row = await self.connections.get(username, route.connection_id)
                except NotFound:
                    raise _Unroutable(f"The server of {name!r} was disconnected.") from None
                session = self._session(row, relayed.capabilities if relayed else None)
            return await session.call_tool(
                route.original_name, arguments, progress, outbound_meta(), relayed
            )

        async def run() -> ToolCallResult:
            try:
                return await call()
            except AuthRejected as e:  # the client may have its user consent right away
                ids = (username, route.connection_id, route.alias)
                if not await self.step_ups.consent_through(relayed, *ids, e, self.call_timeout):
                    raise
                return await call()  # once more, with the new token

        context = context or CallContext(username, "gateway")
        try:
            return await self.gate.call(context, route.gated, arguments, run)
        except ToolRefused:
            raise
        except _Unroutable as e:
            return tool_error(e.message)
        except NeedsAuth as e:
            self._invalidate(username)  # its tools leave the listing until a sign-in
            return tool_error(f"{route.server_id}: {e.message} (MCP panel → Connect)")
        except AuthRejected as e:  # insufficient_scope: the consent URL of a step-up
            why = await self.step_ups.explain(username, route.connection_id, e)
            return tool_error(f"{route.server_id}: {why}")
        except DodoError as e:
            return tool_error(f"{route.server_id}: {e.message}")

    async def _no_route(self, username: str, name: str) -> types.CallToolResult:
        """The error for a name no usable server lists (see :func:`.routes.unrouted`)."""
        unusable = await self.connections.unusable(username) if "__" in name else []
        return unrouted(name, unusable)

    async def reset(self) -> None:
        """Close every upstream session and drop every route table (after a wipe)."""
        await self.live.close()
        await self.pool.close()
        self.directory = Directory(self)
        self._routes.clear()
        self._listings.clear()
        self._inputs.clear()

    async def forget(self, connection_id: str) -> None:
        """Close the session of a connection that was removed or re-authorized."""
        await self.pool.discard(connection_id)
        self.directory.reopen(connection_id)
        self._listings.drop_connection(connection_id)
        for table in self._routes.values():
            for name in [n for n, r in table.items() if r.connection_id == connection_id]:
                del table[name]
