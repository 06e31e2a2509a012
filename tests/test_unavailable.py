"""A database that cannot be reached at start gives a clear 503, and dodo recovers by
itself once it can be reached (no restart, no crash loop)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from dodo_jupyter import runtime as runtime_module

from .conftest import POSTGRES_URL, Api


@pytest.fixture
def gate_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


@pytest.fixture
def dodo_config(dodo_config: dict[str, Any], postgres_url: str, gate_port: int) -> dict[str, Any]:
    # The database is reached through a loopback port where nothing listens yet.
    parts = urlsplit(postgres_url)
    gated = parts._replace(netloc=f"postgres@127.0.0.1:{gate_port}")
    return {**dodo_config, "db_url": urlunsplit(gated)}


class Gate:
    """A loopback TCP forwarder to the real PostgreSQL: "the database is back"."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def _forward(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        self.tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        real = urlsplit(POSTGRES_URL)
        server_r, server_w = await asyncio.open_connection(real.hostname, real.port)
        await asyncio.gather(
            self._pipe(client_r, server_w), self._pipe(server_r, client_w), return_exceptions=True
        )

    async def open(self, port: int) -> None:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", port)

    async def close(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.mark.postgres
async def test_unreachable_database_is_503_json_then_recovers(
    api: Api, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch, gate_port: int
) -> None:
    for path in ("dodo/api/me", "dodo/api/mcp-catalog", "dodo/api/user/mcp-tokens"):
        status, reply = await api("GET", path)
        assert status == 503, path
        assert reply["error"] == "unavailable" and "DodoApp.db_url" in reply["message"]
        assert str(gate_port) not in reply["message"]  # no connection details leak

    # The database comes back: the next request after the retry delay opens the store.
    monkeypatch.setattr(runtime_module, "RETRY_OPEN_AFTER_S", 0.0)
    gate = Gate()
    await gate.open(gate_port)
    try:
        status, reply = await api("GET", "dodo/api/mcp-catalog")
        assert (status, reply["entries"], reply["catalog_source"]) == (200, [], "local")
        assert (await api("POST", "dodo/api/user/mcp-tokens", {"label": "x"}))[0] == 201
    finally:
        jp_serverapp.web_app.settings["dodo"].store.close()
        await gate.close()
