"""Hub-catalog mode: this server's durable copy of the hub catalog service's catalog.

The copy lives where the catalog always lives, in ``approved_mcps`` (rows marked
``managed_by="hub"``), so connections, the gateway and tool names that refer to catalog
ids keep working unchanged, and it survives a server restart while the service is down.
``hub_catalog_state`` keeps the service URL, the ETag and when the copy was last good.

:meth:`HubCatalogMirror.refresh` asks the service at most once per ``max_age`` seconds
(``If-None-Match``: an unchanged catalog costs one 304). A successful answer replaces
the copy in one transaction: entries the hub no longer lists are soft-deleted (rows the
server had from local configuration or its own admins too: in hub-catalog mode the hub
decides), the rest are added or updated, and one ``catalog.hub_sync`` audit row says
what changed. A failure changes nothing but :attr:`HubCatalogMirror.status`: the copy is
served, marked stale with the reason, and the service is asked again after
``max(max_age, MIN_RETRY_S)`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..exceptions import DodoError, ValidationFailed
from ..store import Store
from ..store.models import ApprovedMCP, HubCatalogState, utcnow
from .entry import parse_entry, row_values, stored_values
from .hub_client import HubCatalogClient
from .status import CatalogStatus

__all__ = ["MIN_RETRY_S", "HubCatalogMirror"]

log = logging.getLogger(__name__)

#: Seconds between two attempts after a failed one, whatever ``max_age`` is.
MIN_RETRY_S = 5.0


class HubCatalogMirror:
    """Keeps ``approved_mcps`` equal to the hub catalog service's catalog.

    Parameters
    ----------
    store:
        The opened store.
    client:
        The hub catalog service client.
    max_age:
        Seconds a confirmed copy is served before the service is asked again.
    allow_insecure_loopback:
        This server's URL rule for entries: entries it refuses are left out and logged,
        and the admin API flags them (``not_accepted``, :mod:`.acceptance`).
    """

    def __init__(
        self,
        store: Store,
        client: HubCatalogClient,
        *,
        max_age: float = 5.0,
        allow_insecure_loopback: bool = False,
    ) -> None:
        self._store = store
        self.client = client
        self.max_age = max_age
        self.allow_insecure_loopback = allow_insecure_loopback
        self._lock = asyncio.Lock()
        self._loaded = False
        self._state_url = ""
        self._etag = ""
        self._synced_at: datetime | None = None
        self._checked_at: float | None = None
        self._error: str | None = None

    @property
    def status(self) -> CatalogStatus:
        """Where the served catalog stands (stale, and why, after a failed attempt)."""
        if self._error is None and self._loaded:
            return CatalogStatus("hub", synced_at=self._synced_at)
        if self._error is None:
            reason = "The hub catalog service has not been asked yet."
        elif self._synced_at is None:
            reason = f"{self._error} No copy of the hub catalog yet: the catalog is empty."
        else:
            when = self._synced_at.strftime("%Y-%m-%d %H:%M UTC")
            reason = f"{self._error} Showing the last good copy, from {when}."
        return CatalogStatus("hub", stale=True, reason=reason, synced_at=self._synced_at)

    def _due(self) -> bool:
        if self._checked_at is None:
            return True
        wait = self.max_age if self._error is None else max(self.max_age, MIN_RETRY_S)
        return time.monotonic() - self._checked_at >= wait

    async def refresh(self, *, force: bool = False) -> bool:
        """Ask the service when due (or ``force``); True when the copy changed.

        Never raises for an unreachable service: that only marks the copy stale."""
        if not force and not self._due():
            return False
        async with self._lock:
            if not force and not self._due():  # another request just asked
                return False
            return await self._refresh()

    async def _refresh(self) -> bool:
        if not self._loaded:
            await self._load()
        etag = self._etag if self._state_url == self.client.url else ""
        try:
            fetched = await self.client.fetch(etag)
        except DodoError as e:
            self._checked_at = time.monotonic()
            if self._error != e.message:
                log.warning("dodo: %s (serving the last good copy)", e.message)
            self._error = e.message
            return False
        now = utcnow()
        changed = False
        if fetched.entries is not None:
            entries = self._valid(fetched.entries)
            changed = await self._store.db.write(
                _replace_copy, entries, fetched.etag, self.client.url, now
            )
            self._etag, self._state_url = fetched.etag, self.client.url
        if self._error is not None:
            log.info("dodo: the hub catalog service answers again")
        self._synced_at, self._error = now, None
        self._checked_at = time.monotonic()
        return changed

    async def _load(self) -> None:
        def read(session: Session) -> tuple[str, str, datetime | None]:
            row = session.get(HubCatalogState, 1)
            return (row.source_url, row.etag, row.synced_at) if row else ("", "", None)

        self._state_url, self._etag, self._synced_at = await self._store.db.read(read)
        self._loaded = True

    def _valid(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        valid = []
        for item in entries:
            try:
                entry = parse_entry(item, allow_insecure_loopback=self.allow_insecure_loopback)
            except ValidationFailed as e:
                log.warning(
                    "dodo: hub catalog entry %r left out on this server: %s",
                    item.get("id"),
                    e.message,
                )
                continue
            valid.append(row_values(entry))
        return valid


def _replace_copy(
    session: Session, entries: list[dict[str, Any]], etag: str, url: str, now: datetime
) -> bool:
    """Make the live rows of ``approved_mcps`` exactly ``entries`` (one transaction)."""
    wanted = {entry["id"]: entry for entry in entries}
    rows = {row.id: row for row in session.scalars(select(ApprovedMCP).with_for_update())}
    added: list[str] = []
    updated: list[str] = []
    removed: list[str] = []
    unchanged: set[str] = set()
    # First take every live row that goes or changes out of the live set, so no
    # intermediate state breaks the unique url of live rows (two entries swapping urls).
    for row in rows.values():
        if row.deleted_at is not None:
            continue
        data = wanted.get(row.id)
        if data is not None and row.managed_by == "hub" and stored_values(row) == data:
            unchanged.add(row.id)
            continue
        row.deleted_at = now
        if data is None:
            row.updated_at, row.updated_by = now, "hub"
            removed.append(row.id)
    session.flush()
    for entry_id, data in wanted.items():
        if entry_id in unchanged:
            continue
        target = rows.get(entry_id)
        if target is None:
            target = ApprovedMCP(id=entry_id, created_at=now, created_by="hub")
            session.add(target)
            added.append(entry_id)
        else:
            updated.append(entry_id)
        for name, value in data.items():
            setattr(target, name, value)
        target.managed_by = "hub"
        target.updated_at, target.updated_by, target.deleted_at = now, "hub", None
        session.flush()
    state = session.get(HubCatalogState, 1)
    if state is None:
        state = HubCatalogState(id=1)
        session.add(state)
    state.source_url, state.etag, state.synced_at = url, etag, now
    if added or updated or removed:
        audit.record(
            session,
            "hub",
            "catalog.hub_sync",
            "",
            url=url,
            added=added,
            updated=updated,
            removed=removed,
        )
    return bool(added or updated or removed)
