"""The audit log: who changed what, and when.

Rows are written in the same transaction as the change they describe, so a change
without its audit row (or the reverse) cannot happen. Details never hold a secret.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .store import Store
from .store.models import AuditLog, utcnow

__all__ = ["AuditLogService", "record"]

#: The largest id a row can have: ``audit_log.id`` is an INTEGER, 32 bits on PostgreSQL.
#: The databases refuse larger numbers as parameters (PostgreSQL: "integer out of range",
#: SQLite beyond 64 bits: OverflowError), so ``before_id`` is clamped.
_MAX_ID = 2**31 - 1


def record(session: Session, actor: str, action: str, target: str = "", **detail: Any) -> None:
    """Add an audit row to ``session``'s transaction."""
    session.add(AuditLog(at=utcnow(), actor=actor, action=action, target=target, detail=detail))


class AuditLogService:
    """Reads the audit log for administrators."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def recent(self, limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]:
        """The newest rows first, at most ``limit`` (1-500), older than ``before_id``
        (any whole number: ids start at 1, so one below 2 finds nothing)."""
        limit = max(1, min(limit, 500))
        if before_id is not None:
            if before_id < 2:
                return []
            before_id = min(before_id, _MAX_ID)

        def query(session: Session) -> list[dict[str, Any]]:
            stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
            if before_id is not None:
                stmt = stmt.where(AuditLog.id < before_id)
            return [
                {
                    "id": row.id,
                    "at": row.at.isoformat(),
                    "actor": row.actor,
                    "action": row.action,
                    "target": row.target,
                    "detail": row.detail,
                }
                for row in session.scalars(stmt)
            ]

        return await self._store.db.read(query)
