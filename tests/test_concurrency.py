"""100 requests at once through the REST API, on SQLite and on PostgreSQL: token
creations, catalog edits and token refreshes lose no write, answer no 5xx, and never
show a user ``database is locked``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server

from .conftest import Api
from .test_oauth_e2e import connect, expire_access_token, runtime_of

pytestmark = pytest.mark.usefixtures("upstreams_closed_first")

N = 100
TOKENS = "dodo/api/user/mcp-tokens"
ENTRIES = "dodo/api/admin/approved-mcps"


@pytest.fixture
def demo() -> Iterator[DemoHandle]:
    # Strict rotation: a rotated-out refresh token used again revokes the whole grant.
    with running_demo_server(DemoConfig(port=0, refresh_reuse_revokes_grant=True)) as handle:
        yield handle


@pytest.fixture
def dodo_config(dodo_config: dict[str, Any], db_url: str, demo: DemoHandle) -> dict[str, Any]:
    return {
        **dodo_config,
        "db_url": db_url,
        "kernel_access": False,
        "catalog": [{"id": "demo", "url": demo.url}],
    }


def assert_no_server_errors(answers: list[tuple[int, Any]]) -> None:
    for status, body in answers:
        assert status < 500, body
        assert "locked" not in str(body).lower(), body


async def test_parallel_token_creations_are_all_kept(api: Api) -> None:
    answers = await asyncio.gather(
        *(api("POST", TOKENS, {"label": f"agent {i}"}) for i in range(N))
    )
    assert_no_server_errors(answers)
    assert [status for status, _ in answers] == [201] * N
    secrets = {body["token"] for _, body in answers}
    assert len(secrets) == N
    status, listed = await api("GET", TOKENS)
    assert sorted(t["label"] for t in listed["tokens"]) == sorted(f"agent {i}" for i in range(N))


async def test_parallel_catalog_edits_lose_nothing(api: Api) -> None:
    created = await asyncio.gather(
        *(
            api("POST", ENTRIES, {"id": f"s{i}", "url": f"https://mcp{i}.example/mcp"})
            for i in range(N // 2)
        )
    )
    assert_no_server_errors(created)
    assert [status for status, _ in created] == [201] * (N // 2)
    # Then 100 edits at once: every entry renamed, and half of them edited twice.
    edits = [(f"s{i}", f"first {i}") for i in range(N // 2)]
    edits += [(f"s{i}", f"second {i}") for i in range(N // 2)]
    answers = await asyncio.gather(
        *(
            api(
                "PUT",
                f"{ENTRIES}/{entry_id}",
                {"url": f"https://mcp{entry_id[1:]}.example/mcp", "display_name": name},
            )
            for entry_id, name in edits
        )
    )
    assert_no_server_errors(answers)
    assert [status for status, _ in answers] == [200] * N
    status, body = await api("GET", ENTRIES)
    names = {e["id"]: e["display_name"] for e in body["entries"]}
    for i in range(N // 2):
        assert names[f"s{i}"] in (f"first {i}", f"second {i}")  # one of the two, not lost


async def test_parallel_refreshes_never_reuse_a_rotated_refresh_token(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    connection_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    await expire_access_token(runtime, connection_id)
    # 100 explicit refreshes ("Reconnect"): each may refresh, one at a time, each with
    # the refresh token the previous one stored.
    answers = await asyncio.gather(
        *(
            api("POST", "dodo/api/mcp/refresh-state", {"connection_id": connection_id})
            for _ in range(N)
        )
    )
    assert_no_server_errors(answers)
    assert {body["state"] for _, body in answers} == {"connected"}
    stats = demo.stats.snapshot()
    assert stats["refreshes"] >= 1 and stats["refresh_reuse_detected"] == 0

    # 100 tool calls on an expired token: exactly one refresh, shared by all of them.
    await expire_access_token(runtime, connection_id)
    before = demo.stats.snapshot()["refreshes"]
    calls = await asyncio.gather(
        *(
            api(
                "POST",
                "dodo/api/mcp/tools/call",
                {"name": "demo__add", "arguments": {"a": i, "b": 1}},
            )
            for i in range(N)
        )
    )
    assert_no_server_errors(calls)
    assert [body["structuredContent"]["result"] for _, body in calls] == [i + 1 for i in range(N)]
    stats = demo.stats.snapshot()
    assert stats["refreshes"] == before + 1 and stats["refresh_reuse_detected"] == 0
