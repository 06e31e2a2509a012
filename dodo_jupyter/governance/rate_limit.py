"""Per-user call limits for a server (``calls_per_minute`` of its tool policy), in
memory: a sliding window of the last minute's call times per (user, server)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["RateLimiter"]

WINDOW_SECONDS = 60.0


class RateLimiter:
    """Counts calls per (user, server) over the last minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._calls: dict[tuple[str, str], deque[float]] = {}

    def take(self, username: str, server_id: str, per_minute: int) -> float | None:
        """Count one call when fewer than ``per_minute`` were made in the last minute and
        return None; otherwise count nothing and return the seconds until one is allowed."""
        now = self._clock()
        calls = self._calls.setdefault((username, server_id), deque())
        while calls and calls[0] <= now - WINDOW_SECONDS:
            calls.popleft()
        if len(calls) >= per_minute:
            return max(0.0, calls[0] + WINDOW_SECONDS - now)
        calls.append(now)
        return None

    def forget(self, username: str) -> None:
        """Drop a user's counts (after an owner wipe)."""
        for key in [key for key in self._calls if key[0] == username]:
            del self._calls[key]
