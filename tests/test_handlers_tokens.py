"""REST: /dodo/api/user/mcp-tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dodo_jupyter.store.models import UserMCPToken, utcnow

from .conftest import Api

TOKENS = "dodo/api/user/mcp-tokens"


async def test_create_list_delete(api: Api) -> None:
    status, created = await api("POST", TOKENS, {"label": "laptop", "expires_in_days": 30})
    assert status == 201
    assert created["token"].startswith(f"dodo_{created['id']}_")
    assert created["prefix"] == f"dodo_{created['id']}" and created["label"] == "laptop"
    assert created["expires_at"] is not None

    status, listing = await api("GET", TOKENS)
    assert status == 200
    (listed,) = listing["tokens"]
    assert set(listed) == {
        "id",
        "prefix",
        "label",
        "kind",
        "created_at",
        "last_used_at",
        "last_used_by",
        "expires_at",
    }
    assert created["token"] not in str(listing)

    assert await api("DELETE", f"{TOKENS}/{created['id']}") == (204, None)
    assert (await api("GET", TOKENS))[1] == {"tokens": []}
    status, reply = await api("DELETE", f"{TOKENS}/{created['id']}")
    assert status == 404 and reply["error"] == "not_found"

    status, audit = await api("GET", "dodo/api/admin/audit")
    assert [a["action"] for a in audit["entries"]] == ["token.delete", "token.create"]


async def test_label_is_optional(api: Api) -> None:
    status, created = await api("POST", TOKENS, {})
    assert status == 201 and created["label"] == ""


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"label": 7}, 400, "invalid"),
        ({"label": "x", "expires_in_days": -1}, 400, "invalid"),
        ({"label": "x", "expires_in_days": "soon"}, 400, "invalid"),
        ({"label": "x", "scopes": ["all"]}, 400, "invalid"),
        ([], 400, "bad_request"),
    ],
)
async def test_bad_input(api: Api, body: Any, status: int, error: str) -> None:
    got, reply = await api("POST", TOKENS, body)
    assert (got, reply["error"]) == (status, error) and reply["message"]
    assert (await api("GET", TOKENS))[1] == {"tokens": []}


async def test_bad_json_and_oversized(api: Api) -> None:
    status, reply = await api("POST", TOKENS, raw=b'{"label": ')
    assert status == 400 and "not valid JSON" in reply["message"]
    status, reply = await api("POST", TOKENS, {"label": "x" * (2 * 1024 * 1024)})
    assert status == 413


async def test_another_users_token_is_404(api: Api, jp_serverapp: Any) -> None:
    runtime = jp_serverapp.web_app.settings["dodo"]
    await runtime.ready()
    other = await runtime.tokens.create("someone-else", "theirs")
    status, reply = await api("DELETE", f"{TOKENS}/{other.info['id']}")
    assert status == 404
    assert other.token not in str(reply)
    assert (await api("GET", TOKENS))[1] == {"tokens": []}
    assert await runtime.tokens.authenticate(other.token) == "someone-else"


async def test_expired_token_is_listed_but_does_not_authenticate(
    api: Api, jp_serverapp: Any
) -> None:
    runtime = jp_serverapp.web_app.settings["dodo"]
    _, created = await api("POST", TOKENS, {"label": "short", "expires_in_days": 1})

    def expire(session: Any) -> None:
        session.get(UserMCPToken, created["id"]).expires_at = utcnow() - timedelta(minutes=1)

    await runtime.store.db.write(expire)
    assert await runtime.tokens.authenticate(created["token"]) is None
    assert [t["id"] for t in (await api("GET", TOKENS))[1]["tokens"]] == [created["id"]]
