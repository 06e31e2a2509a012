"""Two hub catalog service replicas on one PostgreSQL schema (the Zero-to-JupyterHub HA
shape), as real processes asking a stand-in hub about tokens (tests/hub_replicas.py):
they start together on an empty database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from .hub_replicas import HubAPI, Replica
from .test_hub_service import Client, entry

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]

CONFIGURED = ["configured-a", "configured-b"]


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
