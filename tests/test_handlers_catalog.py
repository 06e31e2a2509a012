"""REST: the catalog and its admin endpoints on a real Jupyter server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Api

# Run by pytest-jupyter on the server's own loop (marking them asyncio would hang jp_fetch).

ADMIN = "dodo/api/admin/approved-mcps"


def entry(entry_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": entry_id, "url": f"https://{entry_id}.example.com/mcp", **fields}


async def test_catalog_lists_enabled_entries_only(api: Api) -> None:
    assert await api("GET", "dodo/api/mcp-catalog") == (
        200,
        {
            "entries": [],
            "catalog_source": "local",
            "catalog_stale": False,
            "catalog_stale_reason": None,
            "catalog_synced_at": None,
        },
    )
    assert (await api("POST", ADMIN, entry("one", display_name="One")))[0] == 201
    assert (await api("POST", ADMIN, entry("two", enabled=False)))[0] == 201
    assert (await api("POST", ADMIN, entry("three")))[0] == 201
    assert (await api("DELETE", f"{ADMIN}/three"))[0] == 204

    status, body = await api("GET", "dodo/api/mcp-catalog")
    assert status == 200
    assert [e["id"] for e in body["entries"]] == ["one"]
    assert set(body["entries"][0]) == {
        "id",
        "name",
        "display_name",
        "description",
        "url",
        "transport",
        "auth_type",
        "known_hosts",
        "setup_guide",
        "headers",
        "oauth",
        "enabled",
        "tool_policy",
    }
    assert body["entries"][0]["tool_policy"] == {
        "allow": [],
        "deny": [],
        "read_only": False,
        "approval": "never",
        "calls_per_minute": None,
        "review_new_tools": False,
    }


async def test_catalog_etag(api: Api, jp_fetch: Any) -> None:
    await api("POST", ADMIN, entry("one"))
    first = await jp_fetch("dodo", "api", "mcp-catalog")
    etag = first.headers["ETag"]
    from tornado.httpclient import HTTPClientError

    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("dodo", "api", "mcp-catalog", headers={"If-None-Match": etag})
    assert info.value.code == 304
    await api("POST", ADMIN, entry("two"))
    second = await jp_fetch("dodo", "api", "mcp-catalog", headers={"If-None-Match": etag})
    assert second.code == 200 and second.headers["ETag"] != etag


async def test_admin_crud_round_trip(api: Api) -> None:
    status, created = await api("POST", ADMIN, entry("wx", description="Weather"))
    assert status == 201 and created["managed_by"] == "admin"
    status, got = await api("GET", f"{ADMIN}/wx")
    assert status == 200 and got["description"] == "Weather"
    status, changed = await api("PUT", f"{ADMIN}/wx", {"enabled": False})
    assert status == 200 and changed["enabled"] is False and changed["description"] == "Weather"
    status, listing = await api("GET", ADMIN)
    assert [e["id"] for e in listing["entries"]] == ["wx"]
    assert (await api("DELETE", f"{ADMIN}/wx")) == (204, None)
    assert (await api("GET", ADMIN))[1] == {"entries": [], "left_out": []}
    status, with_deleted = await api("GET", ADMIN, include_deleted="true")
    assert with_deleted["entries"][0]["deleted_at"] is not None

    status, audit = await api("GET", "dodo/api/admin/audit")
    assert status == 200
    actions = [(a["action"], a["target"]) for a in audit["entries"]]
    assert actions[:3] == [
        ("catalog.delete", "wx"),
        ("catalog.update", "wx"),
        ("catalog.create", "wx"),
    ]
    assert all(a["actor"] and a["at"] for a in audit["entries"])


async def test_edits_with_a_stale_if_match_are_412(api: Api, jp_fetch: Any) -> None:
    status, created = await api("POST", ADMIN, entry("wx"))
    assert status == 201 and created["etag"] == '"1"'
    loaded = await jp_fetch(*ADMIN.split("/"), "wx")
    assert loaded.headers["ETag"] == '"1"' == json.loads(loaded.body)["etag"]
    assert [e["etag"] for e in (await api("GET", ADMIN))[1]["entries"]] == ['"1"']

    changed = await jp_fetch(
        *ADMIN.split("/"),
        "wx",
        method="PUT",
        body=json.dumps({"description": "First"}),
        headers={"If-Match": '"1"'},
    )
    assert changed.code == 200 and changed.headers["ETag"] == '"2"'
    actor = json.loads(changed.body)["updated_by"]
    # Another editor who loaded revision 1 too.
    for method, body in (("PUT", {"description": "Second"}), ("DELETE", None)):
        status, reply = await api(method, f"{ADMIN}/wx", body, headers={"If-Match": '"1"'})
        assert status == 412, reply
        assert reply["error"] == "precondition_failed"
        assert reply["message"].startswith(f"Catalog entry 'wx' was changed by {actor} at ")
        assert reply["message"].endswith(
            " UTC since you loaded it: reload it and apply your change again."
        )
    assert (await api("GET", f"{ADMIN}/wx"))[1]["description"] == "First"
    assert (await api("DELETE", f"{ADMIN}/wx", headers={"If-Match": '"2"'})) == (204, None)
    status, audit = await api("GET", "dodo/api/admin/audit")
    assert [(a["action"], a["detail"]["revision"]) for a in audit["entries"]] == [
        ("catalog.delete", 3),
        ("catalog.update", 2),
        ("catalog.create", 1),
    ]


async def test_conflicts_are_409(api: Api) -> None:
    await api("POST", ADMIN, entry("one"))
    status, body = await api("POST", ADMIN, entry("one", url="https://new.example.com/mcp"))
    assert status == 409 and body["error"] == "conflict" and "already exists" in body["message"]
    status, body = await api("POST", ADMIN, entry("two", url="https://one.example.com/mcp"))
    assert status == 409 and "already uses this url" in body["message"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"", "needs a JSON body"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
async def test_bad_json_is_400(api: Api, raw: bytes, message: str) -> None:
    status, body = await api("POST", ADMIN, raw=raw)
    assert status == 400 and body["error"] == "bad_request" and message in body["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://x.example.com"}, "id"),
        (entry("ok", url=5), "url"),
        (entry("ok", enabled="yes"), "enabled"),
        (entry("ok", headers="X-Key"), "headers"),
        (entry("x" * 40), "id"),
        (entry("ok", url="https://example.com/<script>"), None),
    ],
)
async def test_wrong_fields_are_400_with_field_names(
    api: Api, body: dict[str, Any], field: str | None
) -> None:
    status, reply = await api("POST", ADMIN, body)
    if field is None:  # an odd but valid URL is stored as given, and served as JSON
        assert status == 201
        return
    assert status == 400 and reply["error"] == "invalid" and field in reply["fields"]


async def test_put_with_bad_fields_changes_nothing(api: Api) -> None:
    await api("POST", ADMIN, entry("one", description="Keep"))
    status, reply = await api("PUT", f"{ADMIN}/one", {"description": "x" * 200, "url": "ftp://x"})
    assert status == 400
    assert (await api("GET", f"{ADMIN}/one"))[1]["description"] == "Keep"
    status, reply = await api("PUT", f"{ADMIN}/one", {"id": "two"})
    assert status == 400 and "cannot change" in reply["message"]


async def test_oversized_body_is_413(api: Api) -> None:
    big = entry("big", setup_guide="x" * (2 * 1024 * 1024))
    status, reply = await api("POST", ADMIN, big)
    assert status == 413 and reply["error"] == "payload_too_large"
    assert (await api("GET", ADMIN))[1] == {"entries": [], "left_out": []}


@pytest.mark.parametrize(
    "entry_id",
    ["nope", "x' OR '1'='1", "..%2F..%2Fetc", "%3Cscript%3E", "a" * 300, "%00", "DROP TABLE"],
)
async def test_unknown_and_injection_looking_ids_are_404(api: Api, entry_id: str) -> None:
    await api("POST", ADMIN, entry("real"))
    for method, body in (("GET", None), ("PUT", {"enabled": False}), ("DELETE", None)):
        status, reply = await api(method, f"{ADMIN}/{entry_id}", body)
        assert status == 404, (method, entry_id, reply)
        assert reply["error"] == "not_found"
    assert [e["id"] for e in (await api("GET", ADMIN))[1]["entries"]] == ["real"]


async def test_import_server_json(api: Api) -> None:
    doc = {
        "name": "io.github.acme/tickets",
        "description": "Tickets",
        "remotes": [{"type": "streamable-http", "url": "https://tickets.example.com/mcp"}],
    }
    status, reply = await api("POST", f"{ADMIN}/import", doc)
    assert status == 201 and [e["id"] for e in reply["entries"]] == ["tickets"]
    status, reply = await api("POST", f"{ADMIN}/import", doc)
    assert status == 409
    status, reply = await api("POST", f"{ADMIN}/import", {"name": "io.x/y"})
    assert status == 400 and "remotes" in reply["message"]
    assert (await api("GET", f"{ADMIN}/import"))[0] == 405


async def test_import_header_description_of_another_type(api: Api) -> None:
    """A server.json header whose description is not a string answered 500."""
    doc = {
        "name": "io.x/keys",
        "remotes": [
            {
                "url": "https://keys.example.com/mcp",
                "headers": [{"name": "X-Key", "description": 5}],
            }
        ],
    }
    status, reply = await api("POST", f"{ADMIN}/import", doc)
    assert status == 201, reply
    assert reply["entries"][0]["headers"][0] == {
        "name": "X-Key",
        "description": "",
        "is_secret": True,
    }


async def test_audit_paging_and_bad_params(api: Api) -> None:
    for n in range(3):
        await api("POST", ADMIN, entry(f"e{n}"))
    status, page = await api("GET", "dodo/api/admin/audit", limit="2")
    assert status == 200 and len(page["entries"]) == 2
    status, rest = await api("GET", "dodo/api/admin/audit", before=str(page["entries"][-1]["id"]))
    assert [e["target"] for e in rest["entries"]] == ["e0"]
    status, reply = await api("GET", "dodo/api/admin/audit", limit="lots")
    assert status == 400 and reply["error"] == "bad_request"


async def test_audit_before_beyond_sql_integers(api: Api) -> None:
    """Found by schemathesis: a ``before`` past 64 bits answered 500 (SQLite refused it)."""
    await api("POST", ADMIN, entry("e0"))
    status, page = await api("GET", "dodo/api/admin/audit", before=str(10**30))
    assert status == 200 and [e["target"] for e in page["entries"]] == ["e0"]
    for before in (str(-(10**30)), "1", "0"):
        status, page = await api("GET", "dodo/api/admin/audit", before=before)
        assert status == 200 and page["entries"] == []
