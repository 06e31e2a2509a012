"""Alembic migrations, run at start and by ``jupyter dodo db upgrade``.

The scripts live in :mod:`dodo_jupyter.store.migrations`. :data:`HEAD` names the newest
revision, so an up-to-date database is recognised with one query and without importing
Alembic (which keeps server start-up fast); a test keeps it equal to Alembic's head. An
empty database gets the models' tables and is stamped at :data:`HEAD`, also without
Alembic (about 12 MB and a second of imports on a new server); a test keeps that schema
equal to the one the migrations build.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

__all__ = ["HEAD", "current_revision", "upgrade"]

#: The newest migration's revision id.
HEAD = "0007"

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
    if before is None and revision in ("head", HEAD) and _create_if_empty(engine):
        return None
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)
    return before


def _create_if_empty(engine: Engine) -> bool:
    """Create every table at :data:`HEAD` in a database that has none; False (nothing
    done) when it already has tables, which only the migrations may change."""
    from .models import LIVE_URL_INDEX, Base

    with engine.begin() as conn:
        if inspect(conn).get_table_names():
            return False
        Base.metadata.create_all(conn)
        conn.execute(text(LIVE_URL_INDEX))
        conn.execute(
            text(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
            )
        )
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD})
    return True


def script_head() -> str | None:
    """Alembic's own idea of the head revision (imports Alembic)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPT_LOCATION)
    return ScriptDirectory.from_config(cfg).get_current_head()
