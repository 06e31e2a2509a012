"""The gateway's upstream sessions: one persistent
:class:`~dodo_jupyter.upstream.UpstreamSession` per connected server, shared by every
caller (key: the connection id), and one more per set of client capabilities callers
relay (key: ``<connection id>#<capabilities>``); idle sessions are closed by
:meth:`UpstreamSessions.reap`."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..upstream import UpstreamSession

__all__ = ["UpstreamSessions"]


class UpstreamSessions:
    """Upstream sessions by connection id, shared by every caller of one server."""

    def __init__(self, *, idle_timeout: float = 600.0) -> None:
        self._sessions: dict[str, UpstreamSession] = {}
        self.idle_timeout = idle_timeout

    def get(self, key: str) -> UpstreamSession | None:
        return self._sessions.get(key)

    def ensure(self, key: str, factory: Callable[[], UpstreamSession]) -> UpstreamSession:
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = factory()
        return session

    async def discard(self, key: str) -> None:
        """Close and forget a connection's sessions (disconnect, credentials changed)."""
        for name in [k for k in self._sessions if k == key or k.startswith(f"{key}#")]:
            session = self._sessions.pop(name, None)
            if session is not None:
                await session.close()

    async def reap(self, keep: Callable[[str], bool] = lambda key: False) -> int:
        """Close sessions idle for longer than ``idle_timeout``, but those ``keep`` names
        (a session with subscriptions waits for updates, however idle); returns how many."""
        now = time.monotonic()
        idle = [
            k
            for k, s in self._sessions.items()
            if now - s.last_used > self.idle_timeout and not keep(k)
        ]
        for key in idle:
            session = self._sessions.pop(key, None)
            if session is not None:
                await session.close()
        return len(idle)

    async def close(self) -> None:
        for key in list(self._sessions):
            await self.discard(key)
