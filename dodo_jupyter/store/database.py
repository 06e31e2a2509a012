"""The database: one SQLAlchemy engine, sessions run off the event loop.

Every read and write runs in a small thread pool (:meth:`Database.read`,
:meth:`Database.write`) so the Jupyter event loop never blocks on the database.
Each call gets its own session and transaction: committed when the function returns,
rolled back when it raises.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing with
"database is locked".

Several processes may share one PostgreSQL schema (two hub catalog service replicas):
work every process does once at start (migrations, reconciling the catalog with the
configuration) runs under :func:`lock_schema`, so they take turns instead of failing on
each other's half-done work.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm import Session

from ..exceptions import BadRequest, Unavailable

__all__ = ["Database", "lock_schema"]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: How long a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_S = 30

#: The first key of dodo's PostgreSQL advisory locks ("dodo" in ASCII); the second is
#: the schema's name hashed, so stores in other schemas of the database do not wait.
_LOCK_NAMESPACE = 0x646F646F


def lock_schema(conn: Connection) -> None:
    """Hold the store's start-up lock until ``conn``'s transaction ends.

    On PostgreSQL a transaction-level advisory lock on the current schema: another
    process doing the same waits here, then sees what this one committed. Elsewhere
    nothing: processes that share a catalog share a PostgreSQL (docs/jupyterhub.md).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(current_schema()))"),
            {"space": _LOCK_NAMESPACE},
        )


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("dodo_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class Database:
    """An engine plus the thread pool every session runs in.

    Parameters
    ----------
    url:
        Any SQLAlchemy URL; SQLite files are put in WAL mode.
    max_workers:
        Threads available for database work.
    """

    def __init__(self, url: str, *, max_workers: int = 4) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self._writer = self.engine.execution_options(dodo_write=True)
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="dodo-db")

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in a read transaction, in this thread."""
        return self._run(self.engine, fn, args)

    def write_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in a write transaction, in this thread."""
        return self._run(self._writer, fn, args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in a read transaction on the database threads."""
        return await self._submit(self.read_sync, fn, args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in a write transaction on the database threads."""
        return await self._submit(self.write_sync, fn, args)

    async def _submit(self, runner: Callable[..., T], fn: Callable[..., T], args: Any) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, runner, fn, *args)
        return await loop.run_in_executor(self._executor, call)

    @staticmethod
    def _run(bind: Engine, fn: Callable[..., T], args: Any) -> T:
        try:
            with Session(bind, expire_on_commit=False) as session, session.begin():
                return fn(session, *args)
        except DataError as e:
            # A value the database cannot hold, e.g. a NUL character in PostgreSQL text
            # (SQLite stores it): the request's fault, not the server's. The driver's
            # message may quote the value, so it goes to the log only.
            log.info("dodo: the database refused a value: %s", str(e.orig).splitlines()[0])
            raise BadRequest(
                "The database cannot hold a value of this request (a NUL character in "
                "text, or a value out of range): remove it and try again."
            ) from e
        except OperationalError as e:
            # Log-worthy detail stays in the chained exception; the message names the fix.
            raise Unavailable(
                "The dodo database cannot be reached or is busy: check DodoApp.db_url and "
                "that the database server is running, then retry."
            ) from e

    def close(self) -> None:
        """Stop the threads and close every pooled connection."""
        self._executor.shutdown(wait=True)
        self.engine.dispose()
