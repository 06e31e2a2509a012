"""SQLAlchemy 2 models: the tables dodo_jupyter keeps.

Times are stored as naive UTC and read back as timezone-aware UTC (:class:`UTCDateTime`),
so SQLite and PostgreSQL behave alike. Secrets are never stored in clear: gateway tokens
only as a SHA-256 hash, other secrets as MultiFernet ciphertext in columns ending in
``_enc`` (see :mod:`dodo_jupyter.store.vault`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ENCRYPTED_COLUMNS",
    "ApprovedMCP",
    "AuditLog",
    "Base",
    "HubCatalogState",
    "MCPConnection",
    "OAuthClient",
    "OwnerRecord",
    "PendingAuth",
    "ToolCall",
    "ToolPin",
    "ToolSetting",
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


#: The partial unique index on live catalog URLs (SQL both SQLite and PostgreSQL run).
LIVE_URL_INDEX = (
    "CREATE UNIQUE INDEX uq_approved_mcps_live_url ON approved_mcps (url) WHERE deleted_at IS NULL"
)


class ApprovedMCP(Base):
    """An MCP server an administrator (or the configuration) approved."""

    __tablename__ = "approved_mcps"
    # One live entry per URL (a soft-deleted one may share it): a partial unique index,
    # LIVE_URL_INDEX, created by the migrations and by migrate.upgrade() for new stores
    # (declared here, its postgresql_where would load SQLAlchemy's PostgreSQL dialect).

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
    # "config" entries follow the configuration; "admin" entries were made through the API/CLI;
    # "hub" entries are this server's copy of the hub catalog service's (hub-catalog mode).
    managed_by: Mapped[str] = mapped_column(String(16), default="admin")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: What agents may do with the server's tools (governance.tool_policy); None: open.
    tool_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: Grows by one with every write of the row (SQLAlchemy's version counter: each ORM
    #: UPDATE says ``WHERE id = ? AND revision = ?``); the entry's ETag.
    revision: Mapped[int] = mapped_column(Integer, server_default="1")
    __mapper_args__ = {"version_id_col": revision}
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
    # "user" tokens are made by people; "kernel" tokens by the server for its kernels,
    # "code_mode" ones for each code-mode kernel (dodo_jupyter.codemode.kernels).
    kind: Mapped[str] = mapped_column(String(16), default="user")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # JSON {"client", "chat_id", "persona_id", "at"}: the agent that used it last (labels).
    last_used_by: Mapped[str | None] = mapped_column(Text, nullable=True)
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


class MCPConnection(Base):
    """A user's connection to one MCP server: its state and (encrypted) credentials.

    ``tokens_enc`` holds the OAuth token response (access and refresh token) and
    ``headers_enc`` the values of static headers, both as vault ciphertext of JSON.
    ``expires_at`` is the access token's absolute expiry; ``issuer`` the authorization
    server the credentials are bound to (they are never sent anywhere else).
    """

    __tablename__ = "mcp_connections"
    # One connection per user and server URL.
    __table_args__ = (Index("uq_mcp_connections_user_url", "username", "url", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(200), index=True)
    catalog_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    url: Mapped[str] = mapped_column(String(2048))
    # streamable-http | sse (sse: may fall back to HTTP+SSE), from the catalog entry
    transport: Mapped[str] = mapped_column(String(32), default="streamable-http")
    auth_type: Mapped[str] = mapped_column(String(32))
    # connected | authenticating | needs_auth | error
    state: Mapped[str] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(Text, default="")
    issuer: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    resource: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    scopes: Mapped[str] = mapped_column(Text, default="")
    requested_scopes: Mapped[str] = mapped_column(Text, default="")
    step_ups: Mapped[int] = mapped_column(Integer, default=0)
    oauth_client_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Non-secret facts the refresh and revocation need: endpoints, allowed hosts, ...
    oauth_meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    tokens_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    headers_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    tool_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The user's own tool policy, for a server outside the catalog; None: open.
    tool_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OAuthClient(Base):
    """A client registration at one authorization server, for one user and redirect URI.

    ``method`` is how it came to be: ``preregistered`` (catalog policy), ``cimd`` (a
    Client ID Metadata Document URL) or ``dynamic`` (RFC 7591). The secret and the full
    registration response are vault ciphertext.
    """

    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(200), index=True)
    issuer: Mapped[str] = mapped_column(String(2048))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    method: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str] = mapped_column(String(2048))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(64))
    # The scope registered with (space-separated); empty when none was asked for.
    scope: Mapped[str] = mapped_column(Text, default="")
    client_secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    registration_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingAuth(Base):
    """An authorization in progress, keyed by the SHA-256 of its ``state``.

    Single use (deleted when the callback arrives) and valid for ten minutes; persisted
    so a server restart between start and callback still completes. The PKCE verifier is
    vault ciphertext; ``flow`` is the non-secret discovery result the callback needs.
    """

    __tablename__ = "pending_auth"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    connection_id: Mapped[str] = mapped_column(String(32), index=True)
    username: Mapped[str] = mapped_column(String(200))
    code_verifier_enc: Mapped[str] = mapped_column(Text)
    flow: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ToolSetting(Base):
    """A user's switch for exposing one aggregated tool to agents (default: exposed)."""

    __tablename__ = "tool_settings"

    username: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ToolPin(Base):
    """A tool definition a connection's owner accepted (governance.pins), and the one
    waiting for review when the server now says something else. The row named ``""``
    records that the connection listed its tools once."""

    __tablename__ = "tool_pins"

    connection_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tool_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    #: SHA-256 of the accepted definition; empty for a new tool that waits.
    digest: Mapped[str] = mapped_column(String(64), default="")
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    pending_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    accepted_by: Mapped[str] = mapped_column(String(200), default="")
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ToolCall(Base):
    """One tool call through any path, appended and never changed (the call history).

    Arguments and results are never kept, only their sizes and a keyed hash of the
    arguments; ``arguments_enc`` holds them (vault ciphertext) only when an administrator
    turned argument capture on. ``forwarded`` marks a record the hub service has.
    """

    __tablename__ = "tool_calls"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    username: Mapped[str] = mapped_column(String(200), index=True)
    #: gateway | try_it | kernel | code_mode
    path: Mapped[str] = mapped_column(String(16))
    token_id: Mapped[str] = mapped_column(String(32), default="")
    client: Mapped[str] = mapped_column(String(128), default="")
    chat_id: Mapped[str] = mapped_column(String(128), default="")
    persona_id: Mapped[str] = mapped_column(String(128), default="")
    server_id: Mapped[str] = mapped_column(String(32))
    tool: Mapped[str] = mapped_column(String(256))
    #: ok | tool_error | refused_policy | denied | timeout | upstream_error
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(300), default="")
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    arguments_bytes: Mapped[int] = mapped_column(Integer, default=0)
    result_bytes: Mapped[int] = mapped_column(Integer, default=0)
    arguments_hash: Mapped[str] = mapped_column(String(64), default="")
    arguments_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    forwarded: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class OwnerRecord(Base):
    """Who owns this store's secrets: one row, compared with the running owner."""

    __tablename__ = "owner_identity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    hub_api_url: Mapped[str] = mapped_column(String(2048), default="")
    username: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), default="")
    #: The hub user's ``created`` time, as the hub reports it (when the server's token may
    #: read it); a user deleted and created again under the same name gets a new one.
    hub_created: Mapped[str] = mapped_column(String(64), default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HubCatalogState(Base):
    """Hub-catalog mode: the copy of the hub's catalog kept in ``approved_mcps``.

    One row: the service URL the copy came from, the ETag to send as ``If-None-Match``,
    and when the service last sent it (the copy is served, marked stale, while the
    service cannot be reached).
    """

    __tablename__ = "hub_catalog_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_url: Mapped[str] = mapped_column(String(2048))
    etag: Mapped[str] = mapped_column(String(200), default="")
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


#: Every (model, column) holding MultiFernet ciphertext; ``rotate-key`` re-encrypts them all.
ENCRYPTED_COLUMNS: list[tuple[type[Base], str]] = [
    (VaultMeta, "value_enc"),
    (MCPConnection, "tokens_enc"),
    (MCPConnection, "headers_enc"),
    (OAuthClient, "client_secret_enc"),
    (OAuthClient, "registration_enc"),
    (PendingAuth, "code_verifier_enc"),
    (ToolCall, "arguments_enc"),
]
