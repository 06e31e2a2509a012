"""Alembic migrations, run at start and by ``jupyter dodo db upgrade``.

The scripts live in :mod:`dodo_jupyter.store.migrations`; they are the one source of the
schema: a new database is built by running them all, as an old one is upgraded. (Building
a new one from the models instead saved about 0.1 s once per new store, measured, and
needed a second schema kept equal by a test.) :data:`HEAD` names the newest revision, so
an up-to-date database is recognised with one query and without importing Alembic; a test
keeps it equal to Alembic's head, and another keeps the models equal to what the
migrations build.

Processes that share a PostgreSQL schema and start together (two hub catalog service
replicas) migrate one after the other under :func:`~.database.lock_schema`; the second
finds the work done.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from .database import lock_schema

__all__ = ["HEAD", "current_revision", "upgrade"]

#: The newest migration's revision id.
HEAD = "0009"

_SCRIPT_LOCATION = "dodo_jupyter.store:migrations"


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, or None for an empty database."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _alembic_config(conn: Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPT_LOCATION)
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the database to ``revision``; returns the revision it was at before."""
    with engine.connect() as conn:
        before = current_revision(conn)
    if before == HEAD and revision in ("head", HEAD):
        return before
    from alembic import command

    with engine.begin() as conn:
        lock_schema(conn)  # Alembic reads the version after another process's upgrade
        command.upgrade(_alembic_config(conn), revision)
    return before


def script_head() -> str | None:
    """Alembic's own idea of the head revision (imports Alembic)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPT_LOCATION)
    return ScriptDirectory.from_config(cfg).get_current_head()
