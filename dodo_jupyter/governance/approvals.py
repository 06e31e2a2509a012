"""Human approval of tool calls: a call that needs it is held until its owner decides in
JupyterLab, for at most ``approval_timeout`` seconds.

JupyterLab learns of waiting calls through a long poll (:meth:`Approvals.wait`, served at
``GET dodo/api/user/approvals``): the request returns at once when a call waits that the
lab has not seen, and otherwise after at most ``wait`` seconds, so an idle lab costs one
request every half minute, not a loop. The same poll tells dodo that a lab is open: a
call that needs approval while none is (no poll open or ended in the last
:data:`LAB_GRACE_SECONDS`) is refused at once, saying why.

Decisions (:meth:`Approvals.decide`): ``once`` lets the one call go on; ``session``
lets it go on and every later call of the same tool by the same agent (its gateway
token, or the MCP session of a caller without one) until the server restarts; ``deny``
refuses it. Only the owner decides: the REST handler checks that.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..exceptions import NotFound, ValidationFailed

__all__ = ["LAB_GRACE_SECONDS", "Approvals", "Decision", "Verdict", "WaitingCall"]

#: How long after its last poll a lab still counts as open (a poll is renewed at once).
LAB_GRACE_SECONDS = 10.0
Decision = Literal["once", "session", "deny"]
#: How a held call ended: approved, denied by the user, no decision in time, no lab open.
Verdict = Literal["approved", "denied", "timeout", "no_lab"]
DECISIONS: tuple[Decision, ...] = ("once", "session", "deny")


@dataclass
class WaitingCall:
    """A held call, as the lab shows it."""

    id: str
    server_id: str
    tool: str
    arguments: dict[str, Any]
    agent: dict[str, str]
    session_key: str
    asked_at: float
    expires_at: float
    decided: asyncio.Future[Decision] = field(repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "server_id": self.server_id,
            "tool": self.tool,
            "arguments": self.arguments,
            "agent": self.agent,
            "expires_in": max(0.0, round(self.expires_at - time.monotonic(), 1)),
        }


@dataclass
class _UserState:
    waiting: dict[str, WaitingCall] = field(default_factory=dict)
    #: (session key, tool) pairs approved for the session.
    session: set[tuple[str, str]] = field(default_factory=set)
    polls: int = 0
    last_poll: float = float("-inf")
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Approvals:
    """Held calls and decisions, per user (in memory)."""

    def __init__(self, timeout: float = 120.0, clock: Callable[[], float] = time.monotonic):
        self.timeout = timeout
        self._clock = clock
        self._users: dict[str, _UserState] = {}
        self._serial = itertools.count(1)

    def _state(self, username: str) -> _UserState:
        state = self._users.get(username)
        if state is None:
            state = self._users[username] = _UserState()
        return state

    def lab_open(self, username: str) -> bool:
        """Whether a JupyterLab of ``username`` polls for approvals."""
        state = self._users.get(username)
        if state is None:
            return False
        return state.polls > 0 or self._clock() - state.last_poll < LAB_GRACE_SECONDS

    def approved_for_session(self, username: str, session_key: str, tool: str) -> bool:
        state = self._users.get(username)
        return state is not None and (session_key, tool) in state.session

    async def ask(
        self,
        username: str,
        *,
        server_id: str,
        tool: str,
        arguments: dict[str, Any],
        agent: dict[str, str],
        session_key: str,
    ) -> Verdict:
        """Hold a call until its owner decides (see the module docstring)."""
        if self.approved_for_session(username, session_key, tool):
            return "approved"
        if not self.lab_open(username):
            return "no_lab"
        state = self._state(username)
        now = self._clock()
        call = WaitingCall(
            id=f"{next(self._serial)}-{secrets.token_hex(4)}",
            server_id=server_id,
            tool=tool,
            arguments=arguments,
            agent=agent,
            session_key=session_key,
            asked_at=now,
            expires_at=now + self.timeout,
            decided=asyncio.get_running_loop().create_future(),
        )
        state.waiting[call.id] = call
        self._changed(state)
        try:
            decision = await asyncio.wait_for(asyncio.shield(call.decided), self.timeout)
        except TimeoutError:
            return "timeout"
        finally:
            state.waiting.pop(call.id, None)
            self._changed(state)
        if decision == "session":
            state.session.add((session_key, tool))
        return "denied" if decision == "deny" else "approved"

    def decide(self, username: str, call_id: str, decision: object) -> None:
        """Record the owner's decision on a held call.

        Raises
        ------
        ValidationFailed
            ``decision`` is not ``once``, ``session`` or ``deny``.
        NotFound
            no such call waits (it was decided, timed out or never existed).
        """
        if decision not in DECISIONS:
            raise ValidationFailed(
                "'decision' must be 'once', 'session' or 'deny'.",
                fields={"decision": "one of once, session, deny"},
            )
        state = self._users.get(username)
        call = state.waiting.get(call_id) if state is not None else None
        if call is None or call.decided.done():
            raise NotFound(
                "No call with that id waits for approval: it was decided already or timed out."
            )
        call.decided.set_result(decision)

    async def wait(self, username: str, seen: set[str], wait: float) -> list[dict[str, Any]]:
        """The calls waiting for ``username``: at once when one is not in ``seen``, else
        when that changes or after ``wait`` seconds (the lab's long poll)."""
        state = self._state(username)
        state.polls += 1
        try:
            deadline = self._clock() + wait
            while set(state.waiting) == seen:
                left = deadline - self._clock()
                if left <= 0:
                    break
                state.changed.clear()
                try:
                    await asyncio.wait_for(state.changed.wait(), left)
                except TimeoutError:
                    break
            return [call.to_json() for call in state.waiting.values()]
        finally:
            state.polls -= 1
            state.last_poll = self._clock()

    def forget(self, username: str) -> None:
        """Deny every held call of a user and drop their session approvals (owner wipe)."""
        state = self._users.pop(username, None)
        if state is None:
            return
        for call in state.waiting.values():
            if not call.decided.done():
                call.decided.set_result("deny")

    @staticmethod
    def _changed(state: _UserState) -> None:
        state.changed.set()
