"""The tool-call history: one appended record per call through any path, never changed.

A record says when, who, by which path (``gateway``, ``try_it``, ``kernel``,
``code_mode``), with which token and agent labels, which server and tool, how it ended
(``ok``, ``tool_error``, ``refused_policy``, ``denied``, ``timeout``, ``upstream_error``),
how long it took and how large its arguments and result were, with a keyed hash of the
arguments (the same arguments give the same hash until the keys are rotated, and nobody
without the key can test a guess). Raw arguments are kept only when an administrator
turns on ``capture_tool_arguments``, encrypted like every other secret; results never.

Recording costs a call nothing it waits for: records are queued and written in batches
by a short task started with the first of them (:meth:`CallHistory.record`), off the
event loop like every database write; a failed write keeps them queued for the next
(at most :data:`MAX_QUEUED`: beyond that the oldest are dropped, and the log says so).
Records older than the retention are pruned in the runtime's maintenance rounds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import String, delete, insert, select, update
from sqlalchemy.orm import Session

from ..exceptions import ValidationFailed
from ..store import Store
from ..store.models import ToolCall, utcnow
from .context import CallPath

__all__ = ["OUTCOMES", "PATHS", "CallHistory", "CallPath", "CallRecord", "Outcome"]

log = logging.getLogger(__name__)

Outcome = Literal["ok", "tool_error", "refused_policy", "denied", "timeout", "upstream_error"]
PATHS: tuple[CallPath, ...] = ("gateway", "try_it", "kernel", "code_mode")
OUTCOMES: tuple[Outcome, ...] = (
    "ok",
    "tool_error",
    "refused_policy",
    "denied",
    "timeout",
    "upstream_error",
)
#: Largest batch written at once, and the longest a record waits in the queue: what a
#: ``kill -9`` of the server can lose (a stop writes the queue first).
BATCH = 200
FLUSH_SECONDS = 0.05
#: The most records kept in memory while the database cannot be written.
MAX_QUEUED = 50_000
#: The most records one forwarded batch may hold.
MAX_RECEIVED = 1000
#: How often records older than the retention are pruned.
PRUNE_SECONDS = 3600.0


@dataclass
class CallRecord:
    """One call, as recorded (see the module docstring)."""

    username: str
    path: CallPath
    server_id: str
    tool: str
    outcome: Outcome
    duration_ms: int
    arguments_bytes: int
    result_bytes: int
    arguments_hash: str
    token_id: str = ""
    client: str = ""
    chat_id: str = ""
    persona_id: str = ""
    detail: str = ""
    at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=lambda: secrets.token_hex(16))
    #: The raw arguments, when captured (encrypted before they are stored).
    arguments: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = self._values()
        data["at"] = self.at.isoformat()
        return data

    def _values(self) -> dict[str, Any]:
        """Every stored field but ``at`` (no ``dataclasses.asdict``: it deep-copies)."""
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = (
    "id",
    "username",
    "path",
    "token_id",
    "client",
    "chat_id",
    "persona_id",
    "server_id",
    "tool",
    "outcome",
    "detail",
    "duration_ms",
    "arguments_bytes",
    "result_bytes",
    "arguments_hash",
)


#: The longest value each string column of a record holds.
_LIMITS = {
    column.name: column.type.length
    for column in ToolCall.__table__.columns
    if isinstance(column.type, String) and column.type.length and column.name != "id"
}


_INTEGERS = ("duration_ms", "arguments_bytes", "result_bytes")
_STRINGS = tuple(name for name in _FIELDS if name not in _INTEGERS)


def _received_row(record: object, username: str) -> dict[str, Any] | None:
    """A forwarded record as a row to insert, or None when it is not one."""
    if not isinstance(record, dict):
        return None
    row: dict[str, Any] = {}
    for name in _STRINGS:
        value = record.get(name, "")
        if not isinstance(value, str):
            return None
        row[name] = value[: _LIMITS.get(name, 32)]
    for name in _INTEGERS:
        value = record.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None
        row[name] = min(value, 2**31 - 1)
    try:
        at = datetime.fromisoformat(str(record.get("at")))
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if not row["id"] or row["outcome"] not in OUTCOMES or row["path"] not in PATHS:
        return None
    row.update(username=username[:200], at=at, arguments_enc=None, forwarded=True)
    return row


def json_lines(records: list[dict[str, Any]]) -> str:
    """Records as JSON lines (the history's export format)."""
    return "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)


def _row_json(row: ToolCall) -> dict[str, Any]:
    data = {name: getattr(row, name) for name in _FIELDS}
    data["at"] = row.at.isoformat()
    return data


class CallHistory:
    """Records calls and reads them back (see the module docstring).

    Parameters
    ----------
    store:
        The opened store (its vault derives the hash key and encrypts captures).
    retention_days:
        Records older than this are pruned; ``0`` keeps them forever.
    capture_arguments:
        Keep each call's arguments, encrypted.
    """

    def __init__(
        self, store: Store, *, retention_days: int = 90, capture_arguments: bool = False
    ) -> None:
        self._store = store
        self.retention_days = retention_days
        self.capture_arguments = capture_arguments
        self._hash_key: bytes | None = None
        self._queue: list[CallRecord] = []
        self._writer: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        self._next_prune = float("-inf")

    # -- recording ----------------------------------------------------------------------

    def arguments_hash(self, arguments: Mapping[str, Any]) -> tuple[str, int]:
        """The keyed hash of ``arguments`` and their size in bytes (canonical JSON)."""
        if self._hash_key is None:
            self._hash_key = self._store.vault.derived_key("tool-call-arguments")
        canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
        data = canonical.encode()
        return hmac.new(self._hash_key, data, hashlib.sha256).hexdigest(), len(data)

    def record(self, record: CallRecord) -> None:
        """Queue ``record``; it is written within :data:`FLUSH_SECONDS` (returns at once)."""
        if not self.capture_arguments:
            record.arguments = None
        self._queue.append(record)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_soon())

    async def _write_soon(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        await self.flush()

    async def maintain(self) -> None:
        """Prune records older than the retention, at most once per
        :data:`PRUNE_SECONDS` (the runtime's maintenance rounds call it)."""
        now = asyncio.get_running_loop().time()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_SECONDS
        await self.flush()  # what a failed write left queued
        try:
            await self.prune()
        except Exception:
            log.exception("dodo: pruning the tool-call history failed")

    async def flush(self) -> None:
        """Write every queued record now (one flush at a time). A batch that cannot be
        written goes back to the front of the queue for the next flush."""
        async with self._flushing:
            while self._queue:
                batch = self._queue[:BATCH]
                del self._queue[:BATCH]
                rows = [self._row(record) for record in batch]

                def save(session: Session, rows: list[dict[str, Any]] = rows) -> None:
                    session.execute(insert(ToolCall), rows)

                try:
                    await self._store.db.write(save)
                except Exception as e:
                    self._queue[:0] = batch
                    self._trim()
                    log.warning(
                        "dodo: %d tool-call records wait to be written: %s",
                        len(self._queue),
                        type(e).__name__,
                    )
                    return

    def _trim(self) -> None:
        """Bound the queue while the database cannot be written: the oldest go."""
        excess = len(self._queue) - MAX_QUEUED
        if excess > 0:
            del self._queue[:excess]
            log.error("dodo: dropped the %d oldest unwritten tool-call records", excess)

    def _row(self, record: CallRecord) -> dict[str, Any]:
        data = record._values()
        for name, limit in _LIMITS.items():  # a long upstream tool name fits its column
            data[name] = data[name][:limit]
        data["at"] = record.at
        data["arguments_enc"] = None
        if record.arguments is not None:
            arguments = json.dumps(record.arguments, default=str)
            data["arguments_enc"] = self._store.vault.encrypt(arguments)
        data["forwarded"] = False
        return data

    async def prune(self) -> int:
        """Delete records older than the retention; how many went."""
        if self.retention_days <= 0:
            return 0
        cutoff = utcnow() - timedelta(days=self.retention_days)

        def remove(session: Session) -> int:
            result = session.execute(delete(ToolCall).where(ToolCall.at < cutoff))
            return int(getattr(result, "rowcount", 0) or 0)

        return await self._store.db.write(remove)

    # -- reading ------------------------------------------------------------------------

    async def query(
        self,
        username: str | None,
        *,
        server_id: str | None = None,
        tool: str | None = None,
        outcome: str | None = None,
        before: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Records, newest first: ``username``'s (None: everyone's), filtered; ``before``
        (a record id) pages back from that record."""
        if outcome is not None and outcome not in OUTCOMES:
            raise ValidationFailed(
                f"'outcome' must be one of {', '.join(OUTCOMES)}.", fields={"outcome": "unknown"}
            )
        limit = max(1, min(int(limit), 1000))

        def query(session: Session) -> list[dict[str, Any]]:
            stmt = select(ToolCall)
            if username is not None:
                stmt = stmt.where(ToolCall.username == username)
            if server_id:
                stmt = stmt.where(ToolCall.server_id == server_id)
            if tool:
                stmt = stmt.where(ToolCall.tool == tool)
            if outcome:
                stmt = stmt.where(ToolCall.outcome == outcome)
            if before:
                anchor = session.get(ToolCall, before)
                if anchor is None:
                    return []
                older = ToolCall.at < anchor.at
                stmt = stmt.where(older | ((ToolCall.at == anchor.at) & (ToolCall.id < before)))
            stmt = stmt.order_by(ToolCall.at.desc(), ToolCall.id.desc()).limit(limit)
            return [_row_json(row) for row in session.scalars(stmt)]

        return await self._store.db.read(query)

    # -- forwarding to the hub service --------------------------------------------------

    async def receive(self, username: str, records: object) -> dict[str, Any]:
        """Keep the records a user's server forwarded (the hub service's side): each once
        by id, always under ``username`` (the caller the hub vouched for, whatever a
        record says). Records that are not well-formed are skipped and named in
        ``rejected``, so one bad record never blocks the ones after it."""
        if not isinstance(records, list) or len(records) > MAX_RECEIVED:
            raise ValidationFailed(
                f"'calls' must be a list of at most {MAX_RECEIVED} records.",
                fields={"calls": "list"},
            )
        rows: dict[str, dict[str, Any]] = {}
        rejected: list[str] = []
        for record in records:
            row = _received_row(record, username)
            if row is None:
                rejected.append(
                    str(record.get("id", "?"))[:40] if isinstance(record, dict) else "?"
                )
            else:
                rows[row["id"]] = row

        def save(session: Session) -> int:
            known = set(session.scalars(select(ToolCall.id).where(ToolCall.id.in_(list(rows)))))
            fresh = [row for key, row in rows.items() if key not in known]
            if fresh:
                session.execute(insert(ToolCall), fresh)
            return len(fresh)

        stored = await self._store.db.write(save) if rows else 0
        return {"stored": stored, "known": len(rows) - stored, "rejected": rejected}

    async def forward(self, send: Callable[[list[dict[str, Any]]], Awaitable[object]]) -> int:
        """Send the records the hub service lacks, oldest first, in batches; how many went.
        A failed ``send`` raises and leaves the rest for the next round; a record sent
        whose mark was lost is sent again, and the service keeps it once by id."""
        await self.flush()
        sent = 0
        while batch := await self.unforwarded():
            await send(batch)
            await self.mark_forwarded([record["id"] for record in batch])
            sent += len(batch)
        return sent

    async def unforwarded(self, limit: int = BATCH) -> list[dict[str, Any]]:
        """The oldest records the hub service does not have yet."""

        def query(session: Session) -> list[dict[str, Any]]:
            stmt = (
                select(ToolCall)
                .where(ToolCall.forwarded.is_(False))
                .order_by(ToolCall.at, ToolCall.id)
                .limit(limit)
            )
            return [_row_json(row) for row in session.scalars(stmt)]

        return await self._store.db.read(query)

    async def mark_forwarded(self, ids: list[str]) -> None:
        def mark(session: Session) -> None:
            session.execute(update(ToolCall).where(ToolCall.id.in_(ids)).values(forwarded=True))

        await self._store.db.write(mark)
