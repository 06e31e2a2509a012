"""The gateway's listing cache: each user's finished tool listing, kept while nothing it
was built from can have changed.

Without it a warm ``tools/list`` reads the user's connections and tool switches from the
database, asks every upstream session for its (cached) tools and aggregates the names
again. :class:`ListingCache` keeps the result per username. An entry is served only
while all of these hold:

* it is younger than ``max_age`` (``GatewayService(listing_ttl=…)``), the bound for
  changes this process does not see (another process writing the database);
* ``ConnectionService.generation`` is what it was when the listing began: no connection
  was created, changed, re-authorized or deleted by this process since, and the token
  keeper marked none ``needs_auth`` during a token refresh;
* every upstream session the listing used still holds the same tool list
  (:meth:`~dodo_jupyter.upstream.UpstreamSession.tools_stamp`): a
  ``notifications/tools/list_changed``, the session's tool TTL, a reconnect or a closed
  session all end it.

:meth:`ListingCache.drop` ends a user's entry at once (a tool switched on or off, a call
answered "sign in again"), :meth:`ListingCache.drop_connection` every entry that used a
connection, and :meth:`ListingCache.clear` all of them (a wipe). The gateway never
caches a listing in which a server failed, so a recovered server shows at the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["ListingCache"]

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[T]):
    value: T
    built_at: float
    generation: int
    #: connection id -> the tools stamp of its session when the listing was built
    stamps: Mapping[str, int]


class ListingCache(Generic[T]):
    """Finished tool listings by username (see the module docstring).

    Parameters
    ----------
    max_age:
        Seconds an entry is trusted at most; ``0`` turns the cache off.
    """

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._entries: dict[str, _Entry[T]] = {}

    def get(self, username: str, generation: int, stamp: Callable[[str], int | None]) -> T | None:
        """The cached listing of ``username`` if it is still valid, else None (and dropped).

        ``generation`` is the connection service's current one; ``stamp(connection_id)``
        gives the current tools stamp of a connection's session (None without one).
        """
        entry = self._entries.get(username)
        if entry is None:
            return None
        if (
            time.monotonic() - entry.built_at >= self.max_age
            or entry.generation != generation
            or any(stamp(key) != value for key, value in entry.stamps.items())
        ):
            self._entries.pop(username, None)
            return None
        return entry.value

    def put(self, username: str, value: T, generation: int, stamps: Mapping[str, int]) -> None:
        """Keep ``value`` as the listing of ``username``; ``generation`` must be read before
        the listing began, ``stamps`` after each session listed."""
        if self.max_age > 0:
            self._entries[username] = _Entry(value, time.monotonic(), generation, dict(stamps))

    def drop(self, username: str) -> None:
        self._entries.pop(username, None)

    def drop_connection(self, connection_id: str) -> None:
        for username in [u for u, e in self._entries.items() if connection_id in e.stamps]:
            del self._entries[username]

    def clear(self) -> None:
        self._entries.clear()
