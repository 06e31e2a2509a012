"""Access tokens kept in memory while they are fresh (:class:`FreshTokens`).

A forwarded tool call needs its connection's access token. Read from the database and
decrypted each time, that was a thread hop, a query and a Fernet decryption per call. The
token keeper keeps each token it stored or read here instead, until shortly before it
would be refreshed, and at most :data:`MAX_SECONDS` (tokens without an expiry are read
again that often). What ends an entry before that: a new token (refresh, sign-in), a
``401`` for it, the connection losing its sign-in (``needs_auth``), a disconnect, and the
owner wipe; the keeper and the connection service call :meth:`FreshTokens.forget`.

A token read from the database is kept only if nothing was forgotten while it was being
read (:meth:`FreshTokens.mark`): a disconnect that lands during the read must not have
its token put back afterwards.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from ..store.models import utcnow

__all__ = ["MAX_SECONDS", "FreshTokens"]

#: The longest an access token is used from memory without reading the database again.
MAX_SECONDS = 300.0


class FreshTokens:
    """Access tokens by connection id, each with the moment it stops being served."""

    def __init__(self, leeway: timedelta) -> None:
        self._leeway = leeway
        self._tokens: dict[str, tuple[str, float]] = {}
        self._forgets = 0

    def mark(self) -> int:
        """A mark to pass to :meth:`put` for a token about to be read."""
        return self._forgets

    def get(self, connection_id: str) -> str | None:
        entry = self._tokens.get(connection_id)
        if entry is None:
            return None
        if time.monotonic() >= entry[1]:
            self._tokens.pop(connection_id, None)
            return None
        return entry[0]

    def put(
        self, connection_id: str, access_token: str, expires_at: datetime | None, mark: int
    ) -> None:
        """Keep ``access_token`` until ``leeway`` before ``expires_at`` (or
        :data:`MAX_SECONDS`, whichever comes first); a token already that close to its
        expiry is not kept, nor one read before a :meth:`forget` since ``mark``."""
        if mark != self._forgets:
            return
        seconds = MAX_SECONDS
        if expires_at is not None:
            seconds = min(seconds, (expires_at - self._leeway - utcnow()).total_seconds())
        if seconds <= 0:
            self._tokens.pop(connection_id, None)
            return
        self._tokens[connection_id] = (access_token, time.monotonic() + seconds)

    def forget(self, connection_id: str | None = None) -> None:
        """Drop one connection's token, or every token (``None``)."""
        self._forgets += 1
        if connection_id is None:
            self._tokens.clear()
        else:
            self._tokens.pop(connection_id, None)
