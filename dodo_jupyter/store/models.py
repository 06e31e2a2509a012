"""SQLAlchemy 2 models: the tables dodo_jupyter keeps.

Times are stored as naive UTC and read back as timezone-aware UTC (:class:`UTCDateTime`),
so SQLite and PostgreSQL behave alike. Secrets are never stored in clear: gateway tokens
only as a SHA-256 hash, other secrets as MultiFernet ciphertext in columns ending in
``_enc`` (see :mod:`dodo_jupyter.store.vault`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ENCRYPTED_COLUMNS",
    "ApprovedMCP",
    "AuditLog",
    "Base",
    "UTCDateTime",
    "UserMCPToken",
    "VaultMeta",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC, returned as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of every dodo_jupyter table."""


class ApprovedMCP(Base):
    """An MCP server an administrator (or the configuration) approved."""

    __tablename__ = "approved_mcps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(100), default="")
    url: Mapped[str] = mapped_column(String(2048))
    transport: Mapped[str] = mapped_column(String(32))
    auth_type: Mapped[str] = mapped_column(String(32))
    known_hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    setup_guide: Mapped[str] = mapped_column(Text, default="")
    headers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    oauth: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # "config" entries follow the configuration; "admin" entries were made through the API/CLI.
    managed_by: Mapped[str] = mapped_column(String(16), default="admin")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The migration adds a partial unique index on ``url`` WHERE deleted_at IS NULL
    # (uq_approved_mcps_live_url). It is not declared here: its dialect-specific options
    # would load the PostgreSQL dialect on every SQLite server start.


class UserMCPToken(Base):
    """A gateway token: ``dodo_<id>_<secret>``; only the secret's SHA-256 is kept."""

    __tablename__ = "user_mcp_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(200), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100), default="")
    # "user" tokens are made by people; "kernel" tokens by the server for its kernels.
    kind: Mapped[str] = mapped_column(String(16), default="user")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditLog(Base):
    """Who changed what, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class VaultMeta(Base):
    """Encrypted values the vault itself needs, such as the key-check canary."""

    __tablename__ = "vault_meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_enc: Mapped[str] = mapped_column(Text)


#: Every (model, column) holding MultiFernet ciphertext; ``rotate-key`` re-encrypts them all.
ENCRYPTED_COLUMNS: list[tuple[type[Base], str]] = [(VaultMeta, "value_enc")]
