"""Conditional catalog edits on SQLite and PostgreSQL: every write moves an entry's ETag,
``If-Match`` with an old one is refused with who changed it and when, nothing refused
is written or audited, and two stores on one database (two processes) cannot both win."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from dodo_jupyter.catalog import CatalogService
from dodo_jupyter.exceptions import NotFound, PreconditionFailed
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.store import Store
from dodo_jupyter.store.models import ApprovedMCP, AuditLog

pytestmark = pytest.mark.asyncio

STALE = r"was changed by ada at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC since you loaded it: "
RELOAD = "reload it and apply your change again."


def entry(entry_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": entry_id, "url": f"https://{entry_id}.example.com/mcp", **fields}


def audit_rows(runtime: DodoRuntime) -> list[tuple[str, str, str, Any]]:
    """(actor, action, target, revision) of every audit row, oldest first."""

    def read(session: Session) -> list[tuple[str, str, str, Any]]:
        rows = session.scalars(select(AuditLog).order_by(AuditLog.id))
        return [(r.actor, r.action, r.target, r.detail.get("revision")) for r in rows]

    return runtime.store.db.read_sync(read)


async def test_every_write_moves_the_etag(runtime: DodoRuntime) -> None:
    catalog = runtime.catalog
    created = await catalog.create("ada", entry("wx"))
    assert created["etag"] == '"1"'
    assert (await catalog.get("wx"))["etag"] == '"1"'
    changed = await catalog.update("ada", "wx", {"description": "Weather"}, if_match='"1"')
    assert changed["etag"] == '"2"'
    # Even an edit that changes no field is a write, with its audit row.
    assert (await catalog.update("ada", "wx", {}))["etag"] == '"3"'
    assert [e["etag"] for e in await catalog.all()] == ['"3"']
    await catalog.delete("ada", "wx", if_match='"3"')
    again = await catalog.create("bo", entry("wx"))  # the row is reused: its count goes on
    assert again["etag"] == '"5"'
    assert audit_rows(runtime) == [
        ("ada", "catalog.create", "wx", 1),
        ("ada", "catalog.update", "wx", 2),
        ("ada", "catalog.update", "wx", 3),
        ("ada", "catalog.delete", "wx", 4),
        ("bo", "catalog.create", "wx", 5),
    ]


async def test_a_stale_if_match_is_refused_and_changes_nothing(runtime: DodoRuntime) -> None:
    catalog = runtime.catalog
    loaded = await catalog.create("root", entry("wx"))
    await catalog.update("ada", "wx", {"description": "First"}, if_match=loaded["etag"])
    with pytest.raises(PreconditionFailed, match=f"Catalog entry 'wx' {STALE}{RELOAD}") as info:
        await catalog.update("bo", "wx", {"description": "Second"}, if_match=loaded["etag"])
    assert info.value.status == 412 and info.value.code == "precondition_failed"
    with pytest.raises(PreconditionFailed, match=STALE):
        await catalog.delete("bo", "wx", if_match=loaded["etag"])
    now = await catalog.get("wx")
    assert (now["description"], now["etag"], now["deleted_at"]) == ("First", '"2"', None)
    assert [row[:2] for row in audit_rows(runtime)] == [
        ("root", "catalog.create"),
        ("ada", "catalog.update"),
    ]
    # A list naming the current ETag, or "*", matches.
    await catalog.update("bo", "wx", {"description": "Third"}, if_match=f'"9", {now["etag"]}')
    await catalog.update("bo", "wx", {"description": "Fourth"}, if_match="*")
    assert (await catalog.get("wx"))["description"] == "Fourth"


async def test_an_entry_deleted_since_says_so(runtime: DodoRuntime) -> None:
    catalog = runtime.catalog
    loaded = await catalog.create("root", entry("wx"))
    await catalog.delete("ada", "wx")
    with pytest.raises(PreconditionFailed, match=r"'wx' was deleted by ada at .* since you loaded"):
        await catalog.update("bo", "wx", {"enabled": False}, if_match=loaded["etag"])
    with pytest.raises(PreconditionFailed, match="'wx' was deleted by ada"):
        await catalog.update("bo", "wx", {"enabled": False}, if_match="*")  # no entry to match
    with pytest.raises(NotFound):
        await catalog.update("bo", "wx", {"enabled": False})
    with pytest.raises(NotFound):
        await catalog.update("bo", "nope", {}, if_match='"1"')


@pytest.mark.parametrize("header", ['W/"1"', "1", "", "garbage, more"])
async def test_an_if_match_that_names_no_etag_is_refused(runtime: DodoRuntime, header: str) -> None:
    await runtime.catalog.create("root", entry("wx"))
    with pytest.raises(PreconditionFailed) as info:
        await runtime.catalog.update("bo", "wx", {"enabled": False}, if_match=header)
    assert "names no ETag of catalog entry 'wx'" in info.value.message
    assert '(it is "1" now)' in info.value.message
    assert (await runtime.catalog.get("wx"))["enabled"] is True


async def test_without_if_match_the_last_writer_wins(runtime: DodoRuntime) -> None:
    catalog = runtime.catalog
    await catalog.create("root", entry("wx"))
    await catalog.update("ada", "wx", {"description": "Ada's"})
    await catalog.update("bo", "wx", {"description": "Bo's", "display_name": "Weather"})
    now = await catalog.get("wx")
    assert (now["description"], now["display_name"], now["updated_by"]) == (
        "Bo's",
        "Weather",
        "bo",
    )


async def test_two_stores_on_one_database_cannot_both_win(
    make_runtime: Callable[..., DodoRuntime],
) -> None:
    # Two runtimes, two stores, two pools of connections: what two processes are.
    one, other = make_runtime(), make_runtime()
    await one.catalog.create("root", entry("wx"))
    for _ in range(5):
        etag = (await one.catalog.get("wx"))["etag"]
        results = await asyncio.gather(
            one.catalog.update("ada", "wx", {"description": "Ada's"}, if_match=etag),
            other.catalog.update("bo", "wx", {"description": "Bo's"}, if_match=etag),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, dict)]
        lost = [r for r in results if isinstance(r, PreconditionFailed)]
        assert (len(won), len(lost)) == (1, 1), results
        assert (await other.catalog.get("wx"))["description"] == won[0]["description"]
    # Without If-Match both apply, one after the other (the row is locked, not refused).
    both = await asyncio.gather(
        one.catalog.update("ada", "wx", {"display_name": "Ada's"}),
        other.catalog.update("bo", "wx", {"description": "Bo's"}),
    )
    assert sorted(e["etag"] for e in both) == ['"7"', '"8"']
    now = await one.catalog.get("wx")
    assert (now["display_name"], now["description"]) == ("Ada's", "Bo's")
    # The same id created through both at once: one 201, one 409.
    results = await asyncio.gather(
        one.catalog.create("ada", entry("twin")),
        other.catalog.create("bo", entry("twin")),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "dict"], results
    # One audit row per successful write, none for a refused one.
    rows = [row for row in audit_rows(one) if row[2] == "wx"]
    assert [row[3] for row in rows] == list(range(1, 9))


@pytest.mark.postgres
async def test_the_write_itself_is_a_compare_and_set(postgres_url: str) -> None:
    """A writer that read an entry without its lock still cannot overwrite a newer
    revision: the UPDATE names the revision it read. (PostgreSQL only: SQLite's write
    transactions do not overlap at all.)"""
    one, other = Store(postgres_url, None), Store(postgres_url, None)
    one.open_sync()
    other.open_sync()
    try:
        catalog = CatalogService(one)
        await catalog.create("root", entry("wx"))

        def disable(session: Session) -> None:
            row = session.get(ApprovedMCP, "wx")
            assert row is not None
            row.enabled = False

        def write_after_another(session: Session) -> None:
            row = session.get(ApprovedMCP, "wx")  # revision 1, not locked
            assert row is not None
            other.db.write_sync(disable)  # revision 2, committed
            row.description = "based on revision 1"
            session.flush()

        with pytest.raises(StaleDataError):
            one.db.write_sync(write_after_another)
        now = await catalog.get("wx")
        assert (now["description"], now["enabled"], now["etag"]) == ("", False, '"2"')
    finally:
        one.close()
        other.close()
