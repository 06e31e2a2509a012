"""The store: migrations from an empty database, SQLite settings, time handling."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from dodo_jupyter.exceptions import BadRequest, Unavailable
from dodo_jupyter.store import Store, migrate
from dodo_jupyter.store.database import Database
from dodo_jupyter.store.models import LIVE_URL_INDEX, AuditLog, Base

from .conftest import postgres_schema

TABLES = {
    "approved_mcps",
    "user_mcp_tokens",
    "audit_log",
    "vault_meta",
    "mcp_connections",
    "oauth_clients",
    "pending_auth",
    "tool_settings",
    "owner_identity",
    "alembic_version",
}


def test_head_constant_matches_alembic() -> None:
    assert migrate.script_head() == migrate.HEAD


def test_migrations_create_every_table_from_empty(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert migrate.upgrade(db.engine) is None
        with db.engine.connect() as conn:
            assert TABLES <= set(inspect(conn).get_table_names())
            assert migrate.current_revision(conn) == migrate.HEAD
        # A second run is a no-op that reports the current revision.
        assert migrate.upgrade(db.engine) == migrate.HEAD
    finally:
        db.close()


def _schema(engine: Any) -> dict[str, Any]:
    """Tables with their columns (type, nullable), keys, indexes and constraints."""
    found = inspect(engine)
    schema: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        schema[table] = {
            "columns": {
                c["name"]: (str(c["type"]), c["nullable"]) for c in found.get_columns(table)
            },
            "primary_key": found.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (
                    i["name"],
                    tuple(i["column_names"]),
                    bool(i["unique"]),
                    # A partial index's WHERE clause.
                    str(sorted((k, str(v)) for k, v in i.get("dialect_options", {}).items())),
                )
                for i in found.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in found.get_foreign_keys(table)
            ),
        }
    return schema


@contextlib.contextmanager
def _second_database(db_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database of the same kind: a file, or a schema of its own."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'by-migrations.sqlite'}"
        return
    with postgres_schema("dodo_test_m") as url:
        yield url


def test_the_models_describe_the_schema_the_migrations_build(db_url: str, tmp_path: Path) -> None:
    """The migrations build every store; the ORM reads it through the models. Tables
    created from the models must be what running every migration gives."""
    with _second_database(db_url, tmp_path) as other_url:
        migrated, modelled = Database(db_url), Database(other_url)
        try:
            assert migrate.upgrade(migrated.engine) is None
            with modelled.engine.begin() as conn:
                Base.metadata.create_all(conn)
                conn.execute(text(LIVE_URL_INDEX))
            schema = _schema(migrated.engine)
            assert schema.pop("alembic_version")
            assert schema == _schema(modelled.engine)
        finally:
            migrated.close()
            modelled.close()


def test_downgrade_to_base_and_back(db_url: str) -> None:
    db = Database(db_url)
    try:
        migrate.upgrade(db.engine)
        from alembic import command

        with db.engine.begin() as conn:
            command.downgrade(migrate._alembic_config(conn), "base")
        with db.engine.connect() as conn:
            assert not ({"approved_mcps", "user_mcp_tokens"} & set(inspect(conn).get_table_names()))
        migrate.upgrade(db.engine)
        with db.engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.HEAD
    finally:
        db.close()


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        db.close()


@pytest.mark.asyncio
async def test_times_round_trip_as_aware_utc(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url, tmp_path / "k.key", environ={})
    store.open_sync()
    try:
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

        def add(session) -> None:  # type: ignore[no-untyped-def]
            session.add(AuditLog(at=at, actor="a", action="x", target="", detail={}))

        await store.db.write(add)
        got = await store.db.read(lambda s: s.query(AuditLog).one().at)
        assert got == at and got.tzinfo is not None
    finally:
        store.close()


@pytest.mark.asyncio
async def test_unreachable_database_is_a_clear_503(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        with pytest.raises(Unavailable, match=r"DodoApp\.db_url"):
            await db.read(lambda s: s.execute(text("SELECT 1")).scalar())
    finally:
        db.close()


async def test_a_value_the_database_cannot_hold_is_a_400(db_url: str) -> None:
    """A NUL character in an id or a text field answered 500 on PostgreSQL (``GET
    dodo/api/admin/approved-mcps/a%00b``; found probing PostgreSQL after the schemathesis
    runs). SQLite stores it."""
    db = Database(db_url)
    try:
        query = text("SELECT :value")
        if db.dialect == "postgresql":
            with pytest.raises(BadRequest, match="NUL character"):
                await db.read(lambda s: s.execute(query, {"value": "a\x00b"}).scalar())
        else:
            assert await db.read(lambda s: s.execute(query, {"value": "a\x00b"}).scalar()) == (
                "a\x00b"
            )
    finally:
        db.close()


async def test_audit_before_beyond_the_id_column(make_runtime: Any) -> None:
    """Found by schemathesis on PostgreSQL: ``before=20601478008812`` (past 32 bits)
    answered 500 ("integer out of range"); past 64 bits SQLite refused it too."""
    runtime = make_runtime()
    await runtime.tokens.create("owner", "x")
    for before in (2**31, 20601478008812, 10**30):
        rows = await runtime.audit.recent(100, before)
        assert [row["action"] for row in rows][-1:] == ["token.create"]
    assert await runtime.audit.recent(100, -(10**30)) == []
