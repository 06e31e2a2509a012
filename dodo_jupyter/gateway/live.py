"""The gateway's open client sessions, and what they are told without asking.

An MCP client that keeps a session (protocol 2025-11-25 and older: ``Mcp-Session-Id``
and a ``GET`` stream) expects to hear when what it listed changed. :class:`LiveSessions`
keeps each open session of each user (:class:`Downstream`, registered on the session's
first request, dropped when the SDK closes the session) and sends:

* ``notifications/tools/list_changed``, ``…/prompts/list_changed`` and
  ``…/resources/list_changed`` when something a listing is built from changed: a
  connection added, removed, signed in again, refreshed or narrowed (the gateway's
  listing generation moves; it is looked at every :data:`POLL_SECONDS`), or an upstream
  server sent its own list change. Changes within :data:`SETTLE_SECONDS` go out as one
  notification per kind, so an open session sees a new list within about a second;
* ``notifications/resources/updated`` for a resource the session subscribed to, under
  its gateway URI;
* ``notifications/message`` that an upstream logged outside a call, with the server's
  alias as its ``logger``, at or above the level the session set.

Notifications go out on each session's own channel (its ``GET`` stream) with a deadline;
a session that cannot take one is skipped, never waited for.

A stateless 2026-07-28 client has no session; it opens a ``subscriptions/listen``
stream instead. Each user has their own event bus and listen handler (the SDK's
``InMemorySubscriptionBus`` and ``ListenHandler``, :meth:`LiveSessions.listen`), so the
same list changes and resource updates reach those streams, and no user's events reach
another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .uris import gateway_uri

__all__ = ["LOG_LEVELS", "Downstream", "LiveSessions", "logger_name"]

log = logging.getLogger(__name__)

#: How often the listing generation is compared while sessions are open (seconds).
POLL_SECONDS = 0.5
#: Changes this close together are announced once (seconds).
SETTLE_SECONDS = 0.2
#: Longest wait for one session to take one notification (seconds).
SEND_SECONDS = 5.0
#: RFC 5424 severities, least severe first (``logging/setLevel``).
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
KINDS = ("tools", "prompts", "resources")
#: Listen streams one user may hold open at once.
MAX_LISTENERS = 64
_LIST_CHANGES = {f"notifications/{kind}/list_changed": kind for kind in KINDS}


def logger_name(alias: str, logger: object) -> str:
    """The ``logger`` of a relayed log message: the server's alias, then its own."""
    return f"{alias}/{logger}" if isinstance(logger, str) and logger else alias


def level_passes(level: object, minimum: str | None) -> bool:
    """Whether a message at ``level`` reaches a session that asked for ``minimum``."""
    if minimum is None or level not in LOG_LEVELS or minimum not in LOG_LEVELS:
        return True
    return LOG_LEVELS.index(str(level)) >= LOG_LEVELS.index(minimum)


@dataclass(eq=False)
class Downstream:
    """One open client session of a user: its channel and what it asked for."""

    username: str
    #: The SDK's channel for messages outside a request (``notify(method, params)``).
    outbound: Any
    #: Gateway URIs it subscribed to.
    subscriptions: set[str] = field(default_factory=set)
    #: The level it set with ``logging/setLevel`` (None: everything).
    log_level: str | None = None
    #: The capabilities relayed for it upstream (:mod:`.relay`), once known.
    relayed: dict[str, Any] | None = None

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        try:
            await asyncio.wait_for(self.outbound.notify(method, params), SEND_SECONDS)
        except Exception as e:  # gone, or not listening: it lists again when it comes back
            log.debug("dodo gateway: %s not delivered: %s", method, type(e).__name__)


class LiveSessions:
    """Open client sessions by user (see the module docstring).

    Parameters
    ----------
    generation:
        Returns the gateway's listing generation (it moves when a listing may change).
    """

    def __init__(self, generation: Callable[[], int]) -> None:
        self._generation = generation
        self._sessions: dict[str, set[Downstream]] = {}
        #: Each user's event bus and listen handler (2026-07-28 ``subscriptions/listen``),
        #: and how many listen streams they have open.
        self._buses: dict[str, tuple[Any, Any]] = {}
        self._listening: dict[str, int] = {}
        self._pending: dict[str, set[str]] = {}
        self._flushing: dict[str, asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._seen = 0

    def add(self, session: Downstream) -> None:
        self._sessions.setdefault(session.username, set()).add(session)
        self._watch_changes()

    def _users(self) -> set[str]:
        return set(self._sessions) | {user for user, n in self._listening.items() if n}

    def _watch_changes(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._seen = self._generation()
            self._watcher = asyncio.get_running_loop().create_task(
                self._watch(), name="dodo-gateway-live"
            )

    def remove(self, session: Downstream) -> None:
        sessions = self._sessions.get(session.username)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._sessions[session.username]

    def of(self, username: str) -> list[Downstream]:
        return list(self._sessions.get(username, ()))

    def changed(self, username: str | None, kinds: tuple[str, ...] = KINDS) -> None:
        """Announce, shortly, that ``username``'s lists of ``kinds`` changed (every
        user's when None)."""
        listening = self._users()
        for user in [username] if username is not None else listening:
            if user not in listening:
                continue
            self._pending.setdefault(user, set()).update(kinds)
            task = self._flushing.get(user)
            if task is None or task.done():
                self._flushing[user] = asyncio.get_running_loop().create_task(self._flush(user))

    async def _flush(self, username: str) -> None:
        await asyncio.sleep(SETTLE_SECONDS)
        kinds = self._pending.pop(username, set())
        sends = [
            session.notify(f"notifications/{kind}/list_changed")
            for session in self.of(username)
            for kind in KINDS
            if kind in kinds
        ]
        await asyncio.gather(*sends)
        if username in self._buses:
            from mcp.server import subscriptions as events

            made = {
                "tools": events.ToolsListChanged,
                "prompts": events.PromptsListChanged,
                "resources": events.ResourcesListChanged,
            }
            for kind in KINDS:
                if kind in kinds:
                    await self._buses[username][0].publish(made[kind]())

    async def _watch(self) -> None:
        """Announce a change of the listing generation, while sessions are open."""
        while self._users():
            await asyncio.sleep(POLL_SECONDS)
            now = self._generation()
            if now != self._seen:
                self._seen = now
                self.changed(None)

    async def upstream_event(self, username: str, alias: str, message: dict[str, Any]) -> None:
        """What the server ``alias`` of ``username`` said outside a call (see the module
        docstring)."""
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        kind = _LIST_CHANGES.get(str(method))
        if kind is not None:
            self.changed(username, (kind,))
        elif method == "notifications/resources/updated" and isinstance(params.get("uri"), str):
            await self.resource_updated(username, gateway_uri(alias, params["uri"]))
        elif method == "notifications/message":
            await self.logged(username, alias, params)

    async def resource_updated(self, username: str, uri: str) -> None:
        """Tell the user's sessions subscribed to the gateway URI ``uri``."""
        if username in self._buses:
            from mcp.server.subscriptions import ResourceUpdated

            await self._buses[username][0].publish(ResourceUpdated(uri=uri))
        await asyncio.gather(
            *(
                session.notify("notifications/resources/updated", {"uri": uri})
                for session in self.of(username)
                if uri in session.subscriptions
            )
        )

    async def logged(self, username: str, alias: str, params: dict[str, Any]) -> None:
        """Relay a log message the server ``alias`` sent outside a call."""
        relayed = {**params, "logger": logger_name(alias, params.get("logger"))}
        await asyncio.gather(
            *(
                session.notify("notifications/message", relayed)
                for session in self.of(username)
                if level_passes(params.get("level"), session.log_level)
            )
        )

    async def listen(self, username: str, ctx: Any, params: Any) -> Any:
        """Serve a 2026-07-28 ``subscriptions/listen`` stream of ``username``'s events,
        until the client leaves."""
        if username not in self._buses:
            from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler

            bus = InMemorySubscriptionBus()
            self._buses[username] = (bus, ListenHandler(bus, max_subscriptions=MAX_LISTENERS))
        self._listening[username] = self._listening.get(username, 0) + 1
        self._watch_changes()
        try:
            return await self._buses[username][1](ctx, params)
        finally:
            self._listening[username] -= 1

    async def close(self) -> None:
        tasks = [*self._flushing.values(), *([self._watcher] if self._watcher else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._sessions.clear()
        for _, handler in self._buses.values():
            handler.close()
