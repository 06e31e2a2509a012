"""Step-up authorization that reaches the user.

An MCP server may refuse a tool call that the connection's token does not cover: HTTP
``403`` with ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`` (RFC 6750
§3.1, the MCP authorization spec's scope challenge). Only the user can consent to more
access, so the gateway hands them the consent URL::

    tools/call ──► 403 insufficient_scope (AuthRejected)
        │  StepUps.start: ConnectionService.step_up begins a flow for the granted
        │  scopes plus the challenge's (at most MAX_STEP_UPS in a row); the connection
        │  keeps working with what it was granted
        ▼
    tool error (isError) carrying the consent URL, for the agent to show its user;
    GET dodo/api/mcp/servers: state "needs_scope", step_up {scopes, consent_url}
        │  the user opens the URL and approves
        ▼
    OAuth callback ──► tokens stored, upstream session renewed ──► the flow's end is
        │  heard here (ConnectionService.flow_listeners): wait_granted() returns
        ▼
    the call, made again, goes through with the new token

When the agent's client can open a URL for its user (it declared URL-mode elicitation),
the call does not fail: :meth:`StepUps.consent_through` sends the client the consent URL
as an ``elicitation/create`` (mode ``url``) on the call's own stream, waits for the
consent to be handled (at most the gateway's call timeout), tells the client the
elicitation is complete, and the call is made once more with the new token. A client
that declines, or a consent that does not come, ends in the tool error above.

A step-up lives in this process's memory while its flow is pending (at most
:data:`~dodo_jupyter.oauth.flow.PENDING_TTL`); calls meeting the same challenge meanwhile
get the same URL and start no new flow. After a restart the server shows ``connected``
again and the next refused call starts a new step-up.

The consent URL is an ordinary authorization URL: client id, redirect URI, scopes,
resource, PKCE challenge and ``state``; no secret of dodo's. Its ``state`` completes the
flow for the user who started it, so only that user is shown the URL: the REST API
answers the owner only, and the gateway's callers act as the owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..connection_rows import USABLE_STATES
from ..exceptions import DodoError, UpstreamTimeout
from ..oauth.flow import PENDING_TTL, flow_id_of, scope_of
from ..store.models import utcnow

if TYPE_CHECKING:
    from ..connections import ConnectionService
    from ..oauth.discovery import Challenge
    from ..upstream import AuthRejected
    from ..upstream.messages import Relay

__all__ = ["NEEDS_SCOPE", "START_TIMEOUT", "StepUp", "StepUps"]

log = logging.getLogger(__name__)

#: The state ``GET dodo/api/mcp/servers`` shows for a connection with a pending step-up.
NEEDS_SCOPE = "needs_scope"
#: Seconds starting a step-up may take (discovery and registration at the authorization
#: server, each request within the outbound timeout).
START_TIMEOUT = 30.0


@dataclass(eq=False)
class StepUp:
    """A started step-up: the URL its user opens to grant :attr:`scopes`."""

    username: str
    connection_id: str
    #: The authorization URL to open (a secret of nobody's, but the user's own).
    consent_url: str
    #: Every scope the consent asks for: those granted already and the server's.
    scopes: tuple[str, ...]
    #: The scopes the server's challenge named; granted means all of them.
    wanted: tuple[str, ...]
    #: Those of :attr:`wanted` the connection was not granted when the step-up began.
    missing: tuple[str, ...]
    #: The flow's id: :func:`~dodo_jupyter.oauth.flow.hash_state` of its ``state``.
    flow_id: str
    #: When the flow expires (the URL stops working).
    expires_at: datetime
    #: None while the consent is awaited; then whether the connection got :attr:`wanted`.
    granted: bool | None = None
    _ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def public(self) -> dict[str, Any]:
        """The step-up as its owner sees it (``step_up`` of a server in the REST API)."""
        return {
            "scopes": list(self.scopes),
            "missing": list(self.missing),
            "consent_url": self.consent_url,
            "expires_at": self.expires_at.isoformat(),
        }

    def describe(self) -> str:
        """What a refused call tells the agent (and through it, the user) to do."""
        needed = " ".join(self.missing or self.wanted or self.scopes) or "more scopes"
        until = self.expires_at.strftime("%H:%M UTC")
        return (
            f"this tool needs more access than the connection was granted. Open this URL "
            f"to grant {needed}, then call the tool again: {self.consent_url} (the link "
            f"works until {until}; the MCP panel in JupyterLab shows it too)."
        )


class StepUps:
    """The pending step-ups of this server's users, one per connection at a time (see
    the module docstring). The gateway service makes one; :meth:`explain` turns a
    refused call into its tool error, :meth:`start` and :meth:`wait_granted` serve
    anything else that asks the user for consent (URL-mode elicitation).

    Parameters
    ----------
    connections:
        The connection service: it begins the flows and says when they end.
    timeout:
        Seconds :meth:`start` may take (default :data:`START_TIMEOUT`).
    """

    def __init__(self, connections: ConnectionService, *, timeout: float = START_TIMEOUT) -> None:
        self._connections = connections
        self.timeout = timeout
        #: The step-up shown for each connection.
        self._current: dict[str, StepUp] = {}
        #: Every step-up whose end was not heard yet (a replaced one may still finish).
        self._open: set[StepUp] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        connections.flow_listeners.append(self._flow_finished)
        connections.listeners.append(self._connection_changed)

    # -- the two steps --------------------------------------------------------------------

    async def start(self, username: str, connection_id: str, challenge: Challenge) -> StepUp:
        """Begin a step-up for the scopes ``challenge`` names, or return the pending one
        of the connection when it asks for them already.

        Raises
        ------
        Conflict
            the server kept asking after :data:`~dodo_jupyter.connections.MAX_STEP_UPS`
            step-ups in a row (the connection says so too).
        NeedsAuth
            the connection has no OAuth sign-in to extend.
        NotFound
            ``connection_id`` is not one of ``username``'s connections.
        UpstreamError, UpstreamTimeout
            the authorization server could not be used (the connection records why).
        """
        wanted = tuple(dict.fromkeys((challenge.scope or "").split()))
        lock = self._locks.setdefault(connection_id, asyncio.Lock())
        async with lock:
            current = await self._live(connection_id)
            if current is not None and current.username == username:
                if set(wanted) <= set(current.scopes):
                    return current
            row = await self._connections.get(username, connection_id)
            try:
                async with asyncio.timeout(self.timeout):
                    url = await self._connections.step_up(username, connection_id, challenge)
            except TimeoutError:
                raise UpstreamTimeout(
                    f"The authorization server did not answer within {self.timeout:.0f} s: "
                    "call the tool again later."
                ) from None
            granted = set(row.scopes.split())
            step_up = StepUp(
                username=username,
                connection_id=connection_id,
                consent_url=url,
                scopes=tuple(scope_of(url).split()),
                wanted=wanted,
                missing=tuple(s for s in wanted if s not in granted),
                flow_id=flow_id_of(url),
                expires_at=utcnow() + PENDING_TTL,
            )
            if current is not None:
                self._end(current, False)  # its flow was replaced by this one
            self._current[connection_id] = step_up
            self._open.add(step_up)
            log.info("dodo: step-up of %s for %s", connection_id, " ".join(step_up.scopes))
            return step_up

    # The time limit is part of the answer (False), not an error: hence the parameter.
    async def wait_granted(self, step_up: StepUp, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until the user's consent for ``step_up`` was handled (its OAuth callback
        finished), at most ``timeout`` seconds; True when the connection is connected
        with the scopes the server asked for. False when the consent was denied or
        failed, a new sign-in of the connection replaced it, the connection was removed,
        or the time ran out (the flow's ten minutes at most)."""
        left = min(timeout, (step_up.expires_at - utcnow()).total_seconds())
        if step_up.granted is None and left > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await step_up._ended.wait()
        return bool(step_up.granted)

    # -- what users see ---------------------------------------------------------------------

    async def explain(self, username: str, connection_id: str, rejection: AuthRejected) -> str:
        """The tool error of a call the server refused: for ``403 insufficient_scope``, a
        step-up's consent URL and what to do; otherwise why it was refused."""
        challenge = rejection.challenge
        if rejection.http_status != 403 or challenge.error != "insufficient_scope":
            return rejection.message
        try:
            step_up = await self.start(username, connection_id, challenge)
        except DodoError as e:
            return e.message
        return step_up.describe()

    async def consent_through(
        self,
        relay: Relay | None,
        username: str,
        connection_id: str,
        alias: str,
        rejection: AuthRejected,
        wait: float,
    ) -> bool:
        """Ask the calling client to have its user open the consent URL (URL-mode
        elicitation, when it declared it) for a call refused with ``403
        insufficient_scope``; True once the consent was granted within ``wait``
        seconds, so the call may be made again. False (and the caller shows the tool
        error with the URL) when the client cannot or will not, or consent fails."""
        elicitation = relay.capabilities.get("elicitation") if relay is not None else None
        challenge = rejection.challenge
        if (
            relay is None
            or not isinstance(elicitation, dict)
            or "url" not in elicitation
            or rejection.http_status != 403
            or challenge.error != "insufficient_scope"
        ):
            return False
        try:
            step_up = await self.start(username, connection_id, challenge)
        except DodoError:
            return False  # explain() says why, to the agent
        needed = " ".join(step_up.missing or step_up.wanted or step_up.scopes) or "more scopes"
        try:
            answer = await relay.request(
                "elicitation/create",
                {
                    "mode": "url",
                    "message": f"{alias} needs more access ({needed}) for this tool: "
                    "approve it on the page that opens, and the call goes on.",
                    "url": step_up.consent_url,
                    "elicitationId": step_up.flow_id,
                },
            )
        except Exception as e:  # the client could not ask: the tool error carries the URL
            log.info("dodo: the consent URL for %s could not be relayed: %s", alias, e)
            return False
        if answer.get("action") != "accept":
            return False
        granted = await self.wait_granted(step_up, wait)
        if granted:
            with contextlib.suppress(Exception):
                await relay.notify(
                    "notifications/elicitation/complete", {"elicitationId": step_up.flow_id}
                )
        return granted

    async def annotate(self, username: str, servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``username``'s connections as the REST API shows them: a usable one with a
        pending step-up is ``needs_scope``, with ``step_up`` (else None)."""
        shown = []
        for server in servers:
            step_up = await self._live(server["id"]) if server["id"] in self._current else None
            if step_up is not None and step_up.username == username:
                if server["state"] in USABLE_STATES:
                    shown.append({**server, "state": NEEDS_SCOPE, "step_up": step_up.public()})
                    continue
            shown.append({**server, "step_up": None})
        return shown

    # -- bookkeeping ------------------------------------------------------------------------

    async def _live(self, connection_id: str) -> StepUp | None:
        """The connection's step-up while its flow waits for the callback."""
        step_up = self._current.get(connection_id)
        if step_up is None:
            return None
        if utcnow() >= step_up.expires_at:
            self._end(step_up, False)
            return None
        # A callback under way, or a new Connect that replaced the flow: not shown, but
        # kept until the flow's end is heard.
        if not await self._connections.engine.is_pending(step_up.flow_id):
            return None
        return step_up

    async def _flow_finished(self, flow_id: str) -> None:
        """A callback was handled: settle its step-up (and any that expired)."""
        for step_up in list(self._open):
            if step_up.flow_id == flow_id or utcnow() >= step_up.expires_at:
                await self._settle_if_over(step_up)

    async def _connection_changed(self, connection_id: str) -> None:
        """A connection's credentials changed or it was removed: settle its step-ups
        whose flows are over (a new sign-in finished, which may have replaced one)."""
        for step_up in [s for s in self._open if s.connection_id == connection_id]:
            await self._settle_if_over(step_up)

    async def _settle_if_over(self, step_up: StepUp) -> None:
        """End ``step_up`` unless its flow still waits (say a callback was refused as
        another user's): granted when the connection now has what the server wanted."""
        if await self._connections.engine.is_pending(step_up.flow_id):
            return
        row = await self._connections.rows.get(step_up.connection_id)
        granted = (
            row is not None
            and row.username == step_up.username
            and row.state == "connected"
            and set(step_up.wanted) <= set(row.scopes.split())
        )
        self._end(step_up, granted)

    def _end(self, step_up: StepUp, granted: bool) -> None:
        step_up.granted = granted
        step_up._ended.set()
        self._open.discard(step_up)
        if self._current.get(step_up.connection_id) is step_up:
            del self._current[step_up.connection_id]
        log.info("dodo: step-up of %s ended (granted: %s)", step_up.connection_id, granted)
