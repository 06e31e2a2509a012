"""The approved catalog: listing, admin CRUD with soft delete, import, config seeding.

Who may change the catalog is decided by the caller (the REST layer checks
:attr:`Identity.is_admin`); this service validates, stores and audits. Reads of the
enabled entries are served from a named in-memory cache (:class:`CatalogCache`) that
this process's writes invalidate at once and that expires after
``DodoApp.catalog_cache_ttl`` seconds so changes made by other processes (the CLI,
another hub catalog service replica) show up too.

Edits of one entry are compare-and-set on its revision, with ``If-Match`` when the
caller sends it (:mod:`.conditional`), and each writes its audit row in its own
transaction: a refused edit leaves neither.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from .. import audit
from ..exceptions import Conflict, NotFound, PreconditionFailed, ValidationFailed
from ..governance.tool_policy import policy_json
from ..store import Store
from ..store.database import lock_schema
from ..store.models import ApprovedMCP, utcnow
from .acceptance import ADMIN_MANAGED
from .conditional import check_if_match, entry_etag
from .entry import EntryInput, parse_entry, row_values, stored_values
from .registry import entries_from_document

__all__ = ["CatalogCache", "CatalogService", "CatalogUpstream", "SeedReport"]

log = logging.getLogger(__name__)

_INPUT_FIELDS = tuple(EntryInput.model_fields)
_PUBLIC_COLUMNS = [getattr(ApprovedMCP, name) for name in _INPUT_FIELDS]


def _public_dict(row: Any) -> dict[str, Any]:
    """An entry as every user sees it, from an ORM row or a column row (its tool policy
    with every field)."""
    data = stored_values(row)
    data["tool_policy"] = policy_json(data["tool_policy"])
    return data


def _admin_dict(row: ApprovedMCP) -> dict[str, Any]:
    """An entry with the bookkeeping administrators see."""
    data = _public_dict(row)
    data["etag"] = entry_etag(row.revision)
    data["managed_by"] = row.managed_by
    data["created_by"] = row.created_by
    data["updated_by"] = row.updated_by
    for name in ("created_at", "updated_at", "deleted_at"):
        value = getattr(row, name)
        data[name] = value.isoformat() if value else None
    return data


def _apply(row: ApprovedMCP, entry: EntryInput) -> None:
    for name, value in row_values(entry).items():
        setattr(row, name, value)


def _live_url_owner(session: Session, url: str, exclude_id: str | None = None) -> str | None:
    stmt = select(ApprovedMCP.id).where(ApprovedMCP.url == url, ApprovedMCP.deleted_at.is_(None))
    if exclude_id is not None:
        stmt = stmt.where(ApprovedMCP.id != exclude_id)
    return session.scalars(stmt).first()


@dataclass
class CachedCatalog:
    """The enabled entries, serialized once, with their ETag."""

    entries: list[dict[str, Any]]
    body: bytes
    etag: str
    loaded_at: float


class CatalogCache:
    """A named cache of the enabled catalog; see the module docstring."""

    name = "enabled-catalog"

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._value: CachedCatalog | None = None
        self._etag = ""
        #: Grows whenever the catalog may have changed (a write here, another copy read).
        self.changes = 0

    def get(self) -> CachedCatalog | None:
        value = self._value
        if value is None or time.monotonic() - value.loaded_at > self.max_age:
            return None
        return value

    def put(self, entries: list[dict[str, Any]]) -> CachedCatalog:
        body = json.dumps({"entries": entries}, separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if etag != self._etag:
            self._etag = etag
            self.changes += 1
        self._value = CachedCatalog(entries, body, etag, time.monotonic())
        return self._value

    def invalidate(self) -> None:
        self._value = None
        self.changes += 1


class CatalogUpstream(Protocol):
    """Where the store's catalog is copied from (hub-catalog mode: the hub service)."""

    async def refresh(self) -> bool:
        """Bring the store's copy up to date when due; True when it changed."""
        ...


@dataclass
class SeedReport:
    """What reconciling the catalog with the configuration changed."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class CatalogService:
    """Reads and changes the approved catalog.

    Parameters
    ----------
    store:
        The opened store.
    allow_insecure_loopback:
        Accept ``http://`` URLs on loopback hosts (development and tests only).
    cache_max_age:
        Seconds the enabled-catalog cache may serve without a new read.
    """

    def __init__(
        self, store: Store, *, allow_insecure_loopback: bool = False, cache_max_age: float = 5.0
    ) -> None:
        self._store = store
        self.allow_insecure_loopback = allow_insecure_loopback
        self.cache = CatalogCache(cache_max_age)
        #: Hub-catalog mode: refreshed before the enabled entries are read.
        self.upstream: CatalogUpstream | None = None
        #: The configured entries the last :meth:`seed_sync` skipped: id → reason.
        self.skipped: dict[str, str] = {}

    def _parse(self, data: object) -> EntryInput:
        return parse_entry(data, allow_insecure_loopback=self.allow_insecure_loopback)

    # -- reads ------------------------------------------------------------------------

    async def enabled(self) -> CachedCatalog:
        """The enabled, non-deleted entries (what users may connect), cached; in
        hub-catalog mode the copy is brought up to date first (when due)."""
        if self.upstream is not None and await self.upstream.refresh():
            self.cache.invalidate()
        cached = self.cache.get()
        if cached is not None:
            return cached

        def query(session: Session) -> list[dict[str, Any]]:
            # Plain columns, no ORM objects: this is the hot read path.
            stmt = (
                select(*_PUBLIC_COLUMNS)
                .where(ApprovedMCP.deleted_at.is_(None), ApprovedMCP.enabled.is_(True))
                .order_by(ApprovedMCP.display_name, ApprovedMCP.id)
            )
            return [_public_dict(row) for row in session.execute(stmt)]

        return self.cache.put(await self._store.db.read(query))

    async def get_enabled(self, entry_id: str) -> dict[str, Any]:
        """One enabled entry; :class:`NotFound` when unknown, deleted or disabled."""
        for entry in (await self.enabled()).entries:
            if entry["id"] == entry_id:
                return entry
        raise NotFound(
            f"No enabled catalog entry {entry_id!r}: ask an administrator to approve it."
        )

    async def all(self, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every entry with bookkeeping fields (administrators)."""

        def query(session: Session) -> list[dict[str, Any]]:
            stmt = select(ApprovedMCP).order_by(ApprovedMCP.display_name, ApprovedMCP.id)
            if not include_deleted:
                stmt = stmt.where(ApprovedMCP.deleted_at.is_(None))
            return [_admin_dict(row) for row in session.scalars(stmt)]

        return await self._store.db.read(query)

    async def get(self, entry_id: str) -> dict[str, Any]:
        """One live entry with bookkeeping fields (administrators)."""

        def query(session: Session) -> dict[str, Any]:
            return _admin_dict(_live_row(session, entry_id))

        return await self._store.db.read(query)

    # -- admin changes ----------------------------------------------------------------

    async def create(self, actor: str, data: object) -> dict[str, Any]:
        """Add an entry; :class:`Conflict` when its id or url is taken."""
        entry = self._parse(data)
        result = await self._write(self._create_sync, actor, [entry], "catalog.create")
        return result[0]

    async def import_document(self, actor: str, doc: object) -> list[dict[str, Any]]:
        """Add every entry an import document describes; all or nothing."""
        raw = entries_from_document(doc)
        if not raw:
            raise ValidationFailed("The import holds no entries.")
        entries = []
        for index, item in enumerate(raw):
            try:
                entries.append(self._parse(item))
            except ValidationFailed as e:
                raise ValidationFailed(
                    f"Entry {index} ({item.get('id', '?')!r}): {e.message}",
                    fields={f"{index}.{k}": v for k, v in e.details.get("fields", {}).items()},
                ) from None
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            raise ValidationFailed("The import holds the same id twice.")
        return await self._write(self._create_sync, actor, entries, "catalog.import")

    async def update(
        self, actor: str, entry_id: str, changes: object, *, if_match: str | None = None
    ) -> dict[str, Any]:
        """Change some fields of a live entry; unmentioned fields keep their values.

        With ``if_match`` (an ``If-Match`` header) only while the entry is at that
        revision (:class:`PreconditionFailed` otherwise); without, whatever it is now.
        An entry that came from the configuration becomes administrator-managed: the
        configuration no longer overwrites or removes it.
        """
        if not isinstance(changes, dict):
            raise ValidationFailed("The body must be a JSON object of fields to change.")
        if "id" in changes and changes["id"] != entry_id:
            raise ValidationFailed(
                "An entry's id cannot change: delete it and add a new one.",
                fields={"id": "cannot change"},
            )

        def change(session: Session) -> dict[str, Any]:
            row = _row_to_change(session, entry_id, if_match)
            current = _public_dict(row)
            entry = self._parse({**current, **changes})
            taken = _live_url_owner(session, entry.url, exclude_id=entry_id)
            if taken:
                raise Conflict(f"Catalog entry {taken!r} already uses this url.", field="url")
            after = {**row_values(entry), "tool_policy": entry.tool_policy.to_json()}
            changed = sorted(k for k in changes if current.get(k) != after.get(k))
            _apply(row, entry)
            row.managed_by = "admin"
            row.updated_at = utcnow()
            row.updated_by = actor
            session.flush()  # UPDATE ... WHERE id = ? AND revision = ?
            audit.record(
                session, actor, "catalog.update", entry_id, fields=changed, revision=row.revision
            )
            return _admin_dict(row)

        return (await self._write(lambda s: [change(s)]))[0]

    async def delete(self, actor: str, entry_id: str, *, if_match: str | None = None) -> None:
        """Soft-delete a live entry (it stays in the store, marked deleted); with
        ``if_match`` only while it is at that revision, as :meth:`update`."""

        def remove(session: Session) -> list[dict[str, Any]]:
            row = _row_to_change(session, entry_id, if_match)
            row.deleted_at = row.updated_at = utcnow()
            row.updated_by = actor
            row.managed_by = "admin"
            session.flush()
            audit.record(
                session, actor, "catalog.delete", entry_id, url=row.url, revision=row.revision
            )
            return []

        await self._write(remove)

    async def _write(self, fn: Any, *args: Any) -> list[dict[str, Any]]:
        try:
            return await self._store.db.write(fn, *args)
        except IntegrityError:
            raise Conflict("A catalog entry with this id or url already exists.") from None
        except StaleDataError:
            # dodo's own writers lock the row first, so this is for one that does not:
            # it changed the entry between this transaction's read and its write.
            raise PreconditionFailed(
                "The catalog entry changed while this edit was being made: reload it and "
                "apply your change again."
            ) from None
        finally:
            self.cache.invalidate()

    def _create_sync(
        self, session: Session, actor: str, entries: list[EntryInput], action: str
    ) -> list[dict[str, Any]]:
        out = []
        for entry in entries:
            row = session.get(ApprovedMCP, entry.id, with_for_update=True)
            if row is not None and row.deleted_at is None:
                raise Conflict(f"Catalog entry {entry.id!r} already exists.", field="id")
            taken = _live_url_owner(session, entry.url)
            if taken:
                raise Conflict(f"Catalog entry {taken!r} already uses this url.", field="url")
            now = utcnow()
            if row is None:
                row = ApprovedMCP(id=entry.id)
                session.add(row)
            _apply(row, entry)
            row.managed_by = "admin"
            row.created_at = row.updated_at = now
            row.created_by = row.updated_by = actor
            row.deleted_at = None
            session.flush()
            audit.record(session, actor, action, entry.id, url=entry.url, revision=row.revision)
            out.append(_admin_dict(row))
        return out

    # -- configuration ----------------------------------------------------------------

    def seed_sync(self, configured: list[dict[str, Any]]) -> SeedReport:
        """Reconcile configuration-managed entries with ``configured`` (blocking).

        Entries the configuration lists are added or updated; configuration-managed entries
        it no longer lists are soft-deleted; administrator-managed entries are left alone.
        Invalid configured entries are skipped, never half-applied: logged, and kept in
        :attr:`skipped` for the admin API (:func:`~.acceptance.left_out`). Processes
        sharing the database reconcile one at a time
        (:func:`~dodo_jupyter.store.database.lock_schema`).
        """
        report = SeedReport()
        desired: dict[str, EntryInput] = {}
        for item in configured:
            try:
                entry = self._parse(item)
            except ValidationFailed as e:
                ident = item.get("id", "?") if isinstance(item, dict) else "?"
                report.skipped[str(ident)] = e.message
                continue
            desired[entry.id] = entry

        def reconcile(session: Session) -> None:
            # Replicas starting together reconcile in turn: the second finds it done.
            lock_schema(session.connection())
            now = utcnow()
            rows = {row.id: row for row in session.scalars(select(ApprovedMCP).with_for_update())}
            for old in rows.values():
                if old.managed_by == "config" and old.deleted_at is None and old.id not in desired:
                    old.deleted_at = old.updated_at = now
                    old.updated_by = "config"
                    audit.record(session, "config", "catalog.config_remove", old.id)
                    report.removed.append(old.id)
            session.flush()
            for entry_id, entry in desired.items():
                row = rows.get(entry_id)
                if row is not None and row.managed_by != "config":
                    report.skipped[entry_id] = ADMIN_MANAGED
                    continue
                taken = _live_url_owner(session, entry.url, exclude_id=entry_id)
                if taken:
                    report.skipped[entry_id] = f"url already used by {taken!r}"
                    continue
                if row is None:
                    row = ApprovedMCP(id=entry_id, created_at=now, created_by="config")
                    session.add(row)
                    report.added.append(entry_id)
                    action = "catalog.config_add"
                else:
                    if stored_values(row) == row_values(entry) and row.deleted_at is None:
                        continue
                    report.updated.append(entry_id)
                    action = "catalog.config_update"
                _apply(row, entry)
                row.managed_by = "config"
                row.updated_at = now
                row.updated_by = "config"
                row.deleted_at = None
                audit.record(session, "config", action, entry_id, url=entry.url)
                session.flush()

        self._store.db.write_sync(reconcile)
        self.cache.invalidate()
        self.skipped = dict(report.skipped)
        for entry_id, reason in report.skipped.items():
            log.warning("Catalog entry %r from the configuration was skipped: %s", entry_id, reason)
        return report


def _live_row(session: Session, entry_id: str) -> ApprovedMCP:
    row = session.get(ApprovedMCP, entry_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"No catalog entry {entry_id!r}.")
    return row


def _row_to_change(session: Session, entry_id: str, if_match: str | None) -> ApprovedMCP:
    """The live row an edit changes, locked until the transaction ends; with
    ``if_match``, only when it names the row's revision (a row deleted since is a 412
    that says so, not a 404)."""
    row = session.get(ApprovedMCP, entry_id, with_for_update=True)
    if row is not None:
        check_if_match(if_match, row)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"No catalog entry {entry_id!r}.")
    return row
