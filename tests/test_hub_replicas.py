"""Two hub catalog service replicas on one PostgreSQL schema (the Zero-to-JupyterHub HA
shape), as real processes asking a stand-in hub about tokens (tests/hub_replicas.py):
they start together on an empty database; concurrent admin edits through both lose
nothing, a stale ``If-Match`` is a 412 on either, and the audit has exactly one row per
successful edit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from .hub_replicas import HubAPI, Replica
from .test_hub_service import ADMIN, Client, entry

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]

CONFIGURED = ["configured-a", "configured-b"]
SHARED = f"{ADMIN}/shared"


@pytest_asyncio.fixture
async def hub_api() -> AsyncIterator[HubAPI]:
    api = HubAPI()
    yield api
    api.stop()


@pytest_asyncio.fixture
async def replicas(
    postgres_url: str, hub_api: HubAPI, tmp_path: Path
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Two replicas on one empty schema, started at the same moment, both ready."""
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps({"entries": [entry(i) for i in CONFIGURED]}))
    pair = (
        Replica("a", postgres_url, hub_api, tmp_path),
        Replica("b", postgres_url, hub_api, tmp_path),
    )
    try:
        for replica in pair:
            replica.start(f"--catalog-file={catalog_file}")
        await asyncio.gather(*(replica.ready() for replica in pair))
        yield pair
    finally:
        for replica in pair:
            replica.stop()


@pytest_asyncio.fixture
async def clients(replicas: tuple[Replica, Replica]) -> AsyncIterator[tuple[Client, Client]]:
    a, b = replicas
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=30) as http_a,
        httpx.AsyncClient(base_url=b.url, timeout=30) as http_b,
    ):
        yield Client(http_a), Client(http_b)


async def test_replicas_started_together_migrate_and_seed_once(
    replicas: tuple[Replica, Replica], clients: tuple[Client, Client]
) -> None:
    for replica in replicas:
        # Neither failed on the other's half-done migrations or seeding (it would have
        # retried, and been ready only later).
        assert "opening the database failed" not in replica.log(), replica.log()
    a, b = clients
    status, body = await b("GET", "api/catalog", token="alice-token")
    assert status == 200 and [e["id"] for e in body["entries"]] == CONFIGURED
    status, audit = await a("GET", "api/admin/audit")
    assert status == 200
    assert sorted((r["action"], r["target"]) for r in audit["entries"]) == [
        ("catalog.config_add", "configured-a"),
        ("catalog.config_add", "configured-b"),
    ]


async def test_concurrent_edits_through_both_replicas(clients: tuple[Client, Client]) -> None:
    a, b = clients
    ok: list[tuple[str, int]] = []  # (entry, revision) of every successful write

    def written(entry_id: str, status: int, body: Any) -> None:
        assert status in (200, 201), (status, body)
        ok.append((entry_id, int(body["etag"].strip('"'))))

    written("shared", *await a("POST", ADMIN, body=entry("shared")))

    # The same revision edited through both at once: exactly one wins, on either side.
    for round_ in range(6):
        etag = (await b("GET", SHARED))[1]["etag"]
        first, second = (a, b) if round_ % 2 else (b, a)
        results = await asyncio.gather(
            first("PUT", SHARED, "admin-token", {"description": f"a{round_}"}, {"If-Match": etag}),
            second(
                "PUT", SHARED, "scoped-token", {"description": f"s{round_}"}, {"If-Match": etag}
            ),
        )
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 412], results
        (winner,) = [body for status, body in results if status == 200]
        (loser,) = [body for status, body in results if status == 412]
        written("shared", 200, winner)
        assert f"'shared' was changed by {winner['updated_by']} at " in loser["message"]
        assert loser["message"].endswith("reload it and apply your change again.")
        # Both replicas now serve the winner's edit.
        for client in (a, b):
            assert (await client("GET", SHARED))[1]["etag"] == winner["etag"]

    # Edits of different fields without If-Match, all at once through both: each is
    # applied to what the one before wrote, so none is lost.
    fields = {
        "display_name": "Shared",
        "setup_guide": "Ask IT",
        "name": "io.x/shared",
        "known_hosts": ["auth.example.com"],
    }
    results = await asyncio.gather(
        *(
            (a, b)[n % 2]("PUT", SHARED, body={name: value})
            for n, (name, value) in enumerate(fields.items())
        )
    )
    for status, body in results:
        written("shared", status, body)
    now = (await a("GET", SHARED))[1]
    assert {name: now[name] for name in fields} == fields

    # Many entries edited at once, each through the replica the other created it on.
    ids = [f"e{n}" for n in range(12)]
    created = await asyncio.gather(
        *((a, b)[n % 2]("POST", ADMIN, body=entry(i)) for n, i in enumerate(ids))
    )
    for i, (status, body) in zip(ids, created, strict=True):
        written(i, status, body)
    changed = await asyncio.gather(
        *(
            (b, a)[n % 2](
                "PUT",
                f"{ADMIN}/{i}",
                body={"description": f"edit of {i}"},
                headers={"If-Match": '"1"'},
            )
            for n, i in enumerate(ids)
        )
    )
    for i, (status, body) in zip(ids, changed, strict=True):
        written(i, status, body)
    listing = {e["id"]: e for e in (await b("GET", ADMIN))[1]["entries"]}
    assert all(listing[i]["description"] == f"edit of {i}" for i in ids)

    # The same id added through both at once: one 201, one 409.
    results = await asyncio.gather(
        a("POST", ADMIN, body=entry("twin")), b("POST", ADMIN, body=entry("twin"))
    )
    assert sorted(status for status, _ in results) == [201, 409], results
    written("twin", *next(r for r in results if r[0] == 201))

    # The audit, read through either replica: one row per successful write, with the
    # revision it made, and nothing for the refused ones.
    status, audit = await b("GET", "api/admin/audit", limit="500")
    rows = [r for r in audit["entries"] if not r["action"].startswith("catalog.config")]
    assert sorted((r["target"], r["detail"]["revision"]) for r in rows) == sorted(ok)
    assert [rev for i, rev in sorted(ok) if i == "shared"] == list(range(1, 12))
