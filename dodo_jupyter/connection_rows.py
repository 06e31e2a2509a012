"""The ``mcp_connections`` table: every query that reads or writes a connection row.

:class:`ConnectionRows` is the table's one owner. The connection service holds it and
the OAuth token keeper is handed it for the token columns; the gateway and the owner check
ask the connection service. Rows returned are detached snapshots: change a connection with
:meth:`ConnectionRows.update`, not by setting attributes. A deleted connection takes its
pending flows and its pinned tool definitions (``tool_pins``) with it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import audit
from .governance.tool_policy import policy_json
from .store import Store
from .store.models import MCPConnection, OAuthClient, PendingAuth, ToolPin, utcnow

__all__ = [
    "USABLE_STATES",
    "ConnectionRows",
    "StoredTokens",
    "public_json",
    "sign_in_needed_at",
]

#: Connection states whose credentials the gateway tries.
USABLE_STATES = ("connected", "error")

#: A connection's OAuth tokens (decrypted), their expiry, and its ``oauth_meta``.
StoredTokens = tuple[dict[str, Any], datetime | None, dict[str, Any]]


def sign_in_needed_at(row: MCPConnection) -> datetime | None:
    """When a usable OAuth connection will need a new sign-in: its access token's expiry
    when the server gave no refresh token to renew it (``oauth_meta["refreshable"]``,
    recorded by the token keeper), else None."""
    if (
        row.auth_type != "oauth"
        or row.state not in USABLE_STATES
        or not row.tokens_enc
        or (row.oauth_meta or {}).get("refreshable") is not False
    ):
        return None
    return row.expires_at


def public_json(row: MCPConnection) -> dict[str, Any]:
    """What the connection's owner is shown of a row (``GET /dodo/api/mcp/servers``):
    never a secret. ``sign_in_needed_at`` and ``warning`` announce the new sign-in a
    connection without a refresh token will need (it stays usable until then)."""
    needed_at = sign_in_needed_at(row)
    warning = None
    if needed_at is not None:
        warning = (
            f"The server gave no refresh token: this sign-in ends at {needed_at:%H:%M} UTC, "
            "then connect again."
        )
    return {
        "id": row.id,
        "catalog_id": row.catalog_id,
        "url": row.url,
        "auth_type": row.auth_type,
        "state": row.state,
        "error": row.error or None,
        "tool_count": row.tool_count,
        "scopes": row.scopes.split() if row.scopes else [],
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "sign_in_needed_at": needed_at.isoformat() if needed_at else None,
        "warning": warning,
        "tool_policy": policy_json(row.tool_policy) if not row.catalog_id else None,
    }


class ConnectionRows:
    """Reads and writes ``mcp_connections`` rows, each call one transaction on a
    thread (:class:`~dodo_jupyter.store.Database`)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- reads --------------------------------------------------------------------------

    async def get(self, connection_id: str) -> MCPConnection | None:
        return await self._store.db.read(lambda s: s.get(MCPConnection, connection_id[:32]))

    async def of_user(self, username: str, *, usable: bool | None = None) -> list[MCPConnection]:
        """``username``'s connections, oldest first: all of them, or only those whose
        state is (``usable=True``) or is not (``False``) in :data:`USABLE_STATES`."""
        condition = MCPConnection.username == username
        if usable is not None:
            in_states = MCPConnection.state.in_(USABLE_STATES)
            condition = condition & (in_states if usable else ~in_states)

        def query(session: Session) -> list[MCPConnection]:
            stmt = (
                select(MCPConnection)
                .where(condition)
                .order_by(MCPConnection.created_at, MCPConnection.id)
            )
            return list(session.scalars(stmt))

        return await self._store.db.read(query)

    async def count_by_state(self) -> dict[str, int]:
        """How many connections are in each state (every user's)."""

        def query(session: Session) -> dict[str, int]:
            stmt = select(MCPConnection.state, func.count()).group_by(MCPConnection.state)
            return {str(state): int(count) for state, count in session.execute(stmt)}

        return await self._store.db.read(query)

    async def signed_in(self) -> list[MCPConnection]:
        """Every OAuth connection that holds tokens, of every user."""

        def query(session: Session) -> list[MCPConnection]:
            stmt = select(MCPConnection).where(
                MCPConnection.auth_type == "oauth", MCPConnection.tokens_enc.is_not(None)
            )
            return list(session.scalars(stmt))

        return await self._store.db.read(query)

    async def tokens(self, connection_id: str) -> StoredTokens | None:
        """The connection's tokens, or None when it holds none; raises ``LookupError``
        when there is no such connection."""
        row = await self.get(connection_id)
        if row is None:
            raise LookupError(connection_id)
        if not row.tokens_enc:
            return None
        return self.tokens_of(row), row.expires_at, dict(row.oauth_meta or {})

    def tokens_of(self, row: MCPConnection) -> dict[str, Any]:
        """The OAuth tokens a connection row holds (decrypted; empty when none)."""
        if not row.tokens_enc:
            return {}
        tokens: dict[str, Any] = json.loads(self._store.vault.decrypt(row.tokens_enc))
        return tokens

    def static_headers(self, row: MCPConnection) -> dict[str, str]:
        """The header values stored for a ``static_headers`` connection (decrypted)."""
        if not row.headers_enc:
            return {}
        values: dict[str, str] = json.loads(self._store.vault.decrypt(row.headers_enc))
        return values

    # -- writes -------------------------------------------------------------------------

    async def find_or_create(
        self, username: str, url: str, *, catalog_id: str | None, auth_type: str, transport: str
    ) -> MCPConnection:
        """``username``'s connection to ``url``, created (``authenticating``) if missing;
        an existing one takes the entry's current auth type and transport."""

        def find_or_create(session: Session) -> MCPConnection:
            row = session.scalars(
                select(MCPConnection).where(
                    MCPConnection.username == username, MCPConnection.url == url
                )
            ).first()
            if row is None:
                now = utcnow()
                row = MCPConnection(
                    id=secrets.token_hex(8),
                    username=username,
                    catalog_id=catalog_id,
                    url=url,
                    auth_type=auth_type,
                    transport=transport,
                    state="authenticating",
                    error="",
                    scopes="",
                    requested_scopes="",
                    step_ups=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                audit.record(session, username, "connection.create", row.id, url=url)
            else:
                row.auth_type = auth_type
                row.catalog_id = catalog_id
                row.transport = transport
            return row

        try:
            return await self._store.db.write(find_or_create)
        except IntegrityError:  # created concurrently: use that one
            return await self._store.db.write(find_or_create)

    async def update(self, connection_id: str, **values: Any) -> bool:
        """Set columns of a connection (``state``, ``error``, ``tool_count``, tokens…);
        False when there is no such connection."""

        def save(session: Session) -> bool:
            row = session.get(MCPConnection, connection_id)
            if row is None:
                return False
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            return True

        return await self._store.db.write(save)

    def encrypt(self, values: Mapping[str, Any]) -> str:
        """``values`` as the ciphertext a secret column holds (tokens, header values)."""
        return self._store.vault.encrypt(json.dumps(dict(values)))

    async def delete(self, row: MCPConnection, *, username: str, revoked: bool) -> None:
        """Delete a connection with its pending flows and, when no other connection
        uses it, its client registration; audited."""
        client_row = row.oauth_client_id

        def remove(session: Session) -> None:
            current = session.get(MCPConnection, row.id)
            if current is not None:
                session.delete(current)
            session.execute(delete(PendingAuth).where(PendingAuth.connection_id == row.id))
            session.execute(delete(ToolPin).where(ToolPin.connection_id == row.id))
            if client_row:
                still_used = session.scalars(
                    select(MCPConnection.id).where(
                        MCPConnection.oauth_client_id == client_row, MCPConnection.id != row.id
                    )
                ).first()
                client = session.get(OAuthClient, client_row)
                if client is not None and not still_used:
                    session.delete(client)
            audit.record(
                session, username, "connection.delete", row.id, url=row.url, revoked=revoked
            )

        await self._store.db.write(remove)

    @staticmethod
    def delete_all(session: Session) -> int:
        """Delete every connection in ``session``'s transaction (the owner wipe, which
        removes the other secret tables in the same transaction); returns how many."""
        result: Any = session.execute(delete(MCPConnection))
        session.execute(delete(ToolPin))
        return int(result.rowcount or 0)
