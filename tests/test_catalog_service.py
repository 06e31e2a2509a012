"""The catalog service on SQLite and PostgreSQL: CRUD, conflicts, soft delete, seeding, import."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dodo_jupyter.catalog.config import load_default_catalog
from dodo_jupyter.exceptions import Conflict, NotFound, ValidationFailed
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.store.models import AuditLog

pytestmark = pytest.mark.asyncio


def entry(entry_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": entry_id, "url": f"https://{entry_id}.example.com/mcp", **fields}


def audit_actions(runtime: DodoRuntime) -> list[tuple[str, str, str]]:
    rows = runtime.store.db.read_sync(lambda s: s.query(AuditLog).order_by(AuditLog.id).all())
    return [(r.actor, r.action, r.target) for r in rows]


async def test_create_list_update_delete(runtime: DodoRuntime) -> None:
    catalog = runtime.catalog
    created = await catalog.create("ada", entry("weather", description="Forecasts"))
    assert created["display_name"] == "weather" and created["managed_by"] == "admin"
    assert [e["id"] for e in (await catalog.enabled()).entries] == ["weather"]

    updated = await catalog.update("ada", "weather", {"enabled": False, "display_name": "Weather"})
    assert updated["enabled"] is False and updated["description"] == "Forecasts"
    assert (await catalog.enabled()).entries == []
    assert [e["id"] for e in await catalog.all()] == ["weather"]

    await catalog.delete("ada", "weather")
    assert await catalog.all() == []
    deleted = await catalog.all(include_deleted=True)
    assert deleted[0]["deleted_at"] is not None  # soft delete: the row stays
    with pytest.raises(NotFound):
        await catalog.delete("ada", "weather")
    assert audit_actions(runtime) == [
        ("ada", "catalog.create", "weather"),
        ("ada", "catalog.update", "weather"),
        ("ada", "catalog.delete", "weather"),
    ]


async def test_duplicate_id_and_url_conflict(runtime: DodoRuntime) -> None:
    await runtime.catalog.create("ada", entry("one"))
    with pytest.raises(Conflict, match="already exists"):
        await runtime.catalog.create("ada", entry("one", url="https://other.example.com/mcp"))
    with pytest.raises(Conflict, match="already uses this url"):
        await runtime.catalog.create("ada", entry("two", url="https://one.example.com/mcp"))
    await runtime.catalog.create("ada", entry("two"))
    with pytest.raises(Conflict, match="already uses this url"):
        await runtime.catalog.update("ada", "two", {"url": "https://one.example.com/mcp"})


async def test_deleted_id_and_url_can_be_reused(runtime: DodoRuntime) -> None:
    await runtime.catalog.create("ada", entry("one"))
    await runtime.catalog.delete("ada", "one")
    again = await runtime.catalog.create("bob", entry("one", description="Back"))
    assert again["description"] == "Back" and again["deleted_at"] is None


async def test_id_cannot_change(runtime: DodoRuntime) -> None:
    await runtime.catalog.create("ada", entry("one"))
    with pytest.raises(ValidationFailed, match="cannot change"):
        await runtime.catalog.update("ada", "one", {"id": "two"})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (entry("Upper"), "id"),
        (entry("a" * 33), "id"),
        (entry("ok", description="x" * 101), "description"),
        (entry("ok", transport="websocket"), "transport"),
        (entry("ok", auth_type="static_headers"), "entry"),
        (entry("ok", surprise=1), "surprise"),
        (entry("ok", url="http://example.com/mcp"), "url"),
        (entry("ok", url="ftp://example.com/mcp"), "url"),
        (entry("ok", url="https://user:pw@example.com/mcp"), "url"),
        (entry("ok", known_hosts=["not a host"]), "known_hosts"),
        (entry("ok", oauth={"client_secret_env": "X"}), "oauth"),
        ({"id": "ok"}, "url"),
    ],
)
async def test_invalid_entries_name_the_field(
    runtime: DodoRuntime, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        await runtime.catalog.create("ada", data)
    assert field in info.value.details["fields"]
    assert await runtime.catalog.all() == []


async def test_http_only_for_loopback_when_allowed(
    make_runtime: Callable[..., DodoRuntime],
) -> None:
    strict = make_runtime()
    with pytest.raises(ValidationFailed, match="allow_insecure_loopback"):
        await strict.catalog.create("ada", entry("local", url="http://127.0.0.1:9000/mcp"))
    relaxed = make_runtime(allow_insecure_loopback=True)
    await relaxed.catalog.create("ada", entry("local", url="http://127.0.0.1:9000/mcp"))
    with pytest.raises(ValidationFailed, match="plain http is refused"):
        await relaxed.catalog.create("ada", entry("remote", url="http://example.com/mcp"))


async def test_seed_reconciles_config_and_leaves_admin_entries(
    make_runtime: Callable[..., DodoRuntime],
) -> None:
    first = make_runtime(catalog=[entry("cfg-a"), entry("cfg-b")])
    await first.catalog.create("ada", entry("mine"))
    assert {e["id"] for e in await first.catalog.all()} == {"cfg-a", "cfg-b", "mine"}

    # Restart with cfg-b dropped, cfg-a changed, and an attempt to take over "mine".
    second = make_runtime(
        catalog=[entry("cfg-a", description="Changed"), entry("mine", description="Config")]
    )
    report = second.catalog.seed_sync(second.configured_catalog())
    assert report.added == [] and report.updated == [] and report.removed == []  # already done
    entries = {e["id"]: e for e in await second.catalog.all()}
    assert set(entries) == {"cfg-a", "mine"}
    assert entries["cfg-a"]["description"] == "Changed"
    assert entries["mine"]["description"] == "" and entries["mine"]["managed_by"] == "admin"
    actions = [a for a in audit_actions(second) if a[0] == "config"]
    assert ("config", "catalog.config_remove", "cfg-b") in actions
    assert ("config", "catalog.config_update", "cfg-a") in actions


async def test_seed_is_idempotent(make_runtime: Callable[..., DodoRuntime]) -> None:
    runtime = make_runtime(catalog=[entry("cfg-a")])
    count = len(audit_actions(runtime))
    report = runtime.catalog.seed_sync([entry("cfg-a")])
    assert (report.added, report.updated, report.removed) == ([], [], [])
    assert len(audit_actions(runtime)) == count


async def test_admin_edit_detaches_an_entry_from_config(
    make_runtime: Callable[..., DodoRuntime],
) -> None:
    runtime = make_runtime(catalog=[entry("cfg-a")])
    await runtime.catalog.update("ada", "cfg-a", {"enabled": False})
    report = runtime.catalog.seed_sync([])
    assert report.removed == []
    assert (await runtime.catalog.get("cfg-a"))["managed_by"] == "admin"


async def test_invalid_config_entries_are_skipped(make_runtime: Callable[..., DodoRuntime]) -> None:
    runtime = make_runtime(catalog=[entry("good"), entry("BAD")])
    assert [e["id"] for e in await runtime.catalog.all()] == ["good"]


async def test_catalog_file_in_server_json_shape(
    make_runtime: Callable[..., DodoRuntime], tmp_path: Path
) -> None:
    path = tmp_path / "server.json"
    path.write_text(json.dumps(SERVER_JSON))
    runtime = make_runtime(catalog_file=str(path))
    ids = {e["id"]: e for e in await runtime.catalog.all()}
    assert set(ids) == {"weather-1", "weather-sse"}
    assert all(e["managed_by"] == "config" for e in ids.values())


SERVER_JSON = {
    "$schema": "https://static.modelcontextprotocol.io/schemas/2025-10-17/server.schema.json",
    "name": "io.github.acme/weather",
    "title": "Acme Weather",
    "description": "Forecasts and alerts",
    "version": "1.2.0",
    "websiteUrl": "https://acme.example.com/docs",
    "remotes": [
        {
            "type": "streamable-http",
            "url": "https://weather.acme.example.com/mcp",
            "headers": [
                {
                    "name": "X-API-Key",
                    "description": "Your key",
                    "isRequired": True,
                    "isSecret": True,
                }
            ],
        },
        {"type": "sse", "url": "https://weather.acme.example.com/sse"},
    ],
}


async def test_import_server_json(runtime: DodoRuntime) -> None:
    created = await runtime.catalog.import_document("ada", SERVER_JSON)
    by_id = {e["id"]: e for e in created}
    assert by_id["weather-1"]["auth_type"] == "static_headers"
    assert by_id["weather-1"]["headers"] == [
        {"name": "X-API-Key", "description": "Your key", "is_secret": True}
    ]
    assert by_id["weather-1"]["display_name"] == "Acme Weather"
    assert by_id["weather-sse"]["transport"] == "sse"
    assert by_id["weather-sse"]["auth_type"] == "oauth"
    assert ("ada", "catalog.import", "weather-sse") in audit_actions(runtime)
    # An unvetted registry server asks before destructive calls and new tools.
    policy = by_id["weather-1"]["tool_policy"]
    assert (policy["approval"], policy["review_new_tools"], policy["deny"]) == (
        "destructive",
        True,
        [],
    )


async def test_import_is_all_or_nothing(runtime: DodoRuntime) -> None:
    await runtime.catalog.create("ada", entry("taken"))
    doc = {"entries": [entry("fresh"), entry("taken", url="https://x.example.com/mcp")]}
    with pytest.raises(Conflict):
        await runtime.catalog.import_document("ada", doc)
    assert [e["id"] for e in await runtime.catalog.all()] == ["taken"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"name": "io.x/y", "packages": []}, "no 'remotes'"),
        (
            {"name": "io.x/y", "remotes": [{"url": "https://x.example.com/{tenant}/mcp"}]},
            "templated URL",
        ),
        ({"something": "else"}, "Unrecognised import"),
        ("text", "JSON object or a list"),
        ({"entries": []}, "no entries"),
    ],
)
async def test_import_rejects_unusable_documents(
    runtime: DodoRuntime, doc: Any, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        await runtime.catalog.import_document("ada", doc)


async def test_default_catalog_is_valid_and_seeds(
    make_runtime: Callable[..., DodoRuntime],
) -> None:
    runtime = make_runtime(default_catalog=True)
    shipped = load_default_catalog()
    stored = {e["id"]: e for e in await runtime.catalog.all()}
    assert set(stored) == {e["id"] for e in shipped}
    enabled = {e["id"] for e in (await runtime.catalog.enabled()).entries}
    assert "github" not in enabled  # needs a pre-registered OAuth app first
    assert {"huggingface", "deepwiki"} <= enabled
