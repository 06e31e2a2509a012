"""No secret at rest in clear, and none in a log: after a real server ran OAuth sign-in,
refresh-token rotation, static headers and gateway calls (with debug logging and tool
arguments captured in the call history), the SQLite files or a PostgreSQL dump and the
server's log hold none of the access tokens, refresh tokens, client secrets, header
values, gateway tokens or tool arguments that the run created."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import select

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import running_demo_server
from dodo_jupyter.store import Store
from dodo_jupyter.store.models import MCPConnection, OAuthClient, ToolCall, utcnow

from .conftest import POSTGRES_URL
from .jupyter_process import ServerProcess
from .mcp_peers import running_mcp_server
from .oauth_peers import callback_query, consent


def _store(server: ServerProcess) -> Store:
    store = Store(server.db_url, server.key_file, environ={})
    store.open_sync()
    return store


def stored_secrets(server: ServerProcess) -> set[str]:
    """Every token and client secret dodo holds now, decrypted."""
    store = _store(server)
    try:

        def read(session: Any) -> tuple[list[str], list[str]]:
            tokens = [r.tokens_enc for r in session.scalars(select(MCPConnection)) if r.tokens_enc]
            clients = [
                r.client_secret_enc
                for r in session.scalars(select(OAuthClient))
                if r.client_secret_enc
            ]
            return tokens, clients

        tokens, clients = store.db.read_sync(read)
        found: set[str] = set()
        for blob in tokens:
            data = json.loads(store.vault.decrypt(blob))
            found.update(str(data[k]) for k in ("access_token", "refresh_token") if data.get(k))
        found.update(store.vault.decrypt(blob) for blob in clients)
        return found
    finally:
        store.close()


def captured_arguments(server: ServerProcess) -> list[dict[str, Any]]:
    """The tool-call history's captured arguments, decrypted."""
    store = _store(server)
    try:

        def read(session: Any) -> list[str]:
            return [r.arguments_enc for r in session.scalars(select(ToolCall)) if r.arguments_enc]

        return [json.loads(store.vault.decrypt(blob)) for blob in store.db.read_sync(read)]
    finally:
        store.close()


def expire(server: ServerProcess) -> None:
    store = _store(server)
    try:

        def change(session: Any) -> None:
            for row in session.scalars(select(MCPConnection)):
                row.expires_at = utcnow() - timedelta(minutes=1)

        store.db.write_sync(change)
    finally:
        store.close()


async def gateway_call(url: str, token: str, name: str, arguments: dict[str, Any]) -> str:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode="auto", cache=None) as client:
            result = await client.call_tool(name, arguments)
    assert not result.is_error, result
    return "".join(getattr(block, "text", "") for block in result.content)


def at_rest(server: ServerProcess, tmp_path: Path) -> bytes:
    if server.db_url.startswith("sqlite"):
        path = Path(server.db_url.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    schema = parse_qs(urlsplit(server.db_url).query)["options"][0].split("=", 1)[1]
    plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    dump = subprocess.run(
        ["pg_dump", "--schema", schema, "--data-only", plain],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return dump.stdout


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_secret_in_the_database_or_the_log(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db_url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    header_value = f"hv-{secrets.token_hex(16)}"
    created: set[str] = {header_value}
    keyed_entry = {
        "id": "keyed",
        "auth_type": "static_headers",
        "headers": [{"name": "X-API-Key"}],
    }
    with (
        running_demo_server(DemoConfig(port=0, access_token_ttl=3600)) as demo,
        running_mcp_server(require_header=("X-API-Key", header_value)) as keyed,
    ):
        server = ServerProcess(
            tmp_path,
            demo,
            db_url=db_url,
            more_catalog=[{**keyed_entry, "url": keyed.url}],
            debug=True,
            dodo={"capture_tool_arguments": True},  # arguments kept, encrypted
        )
        server.start()
        try:
            started = server.call("POST", "/dodo/api/mcp/start-auth", {"catalog_id": "demo"})
            query = callback_query(asyncio.run(consent(started["authorize_url"])))
            assert server.client.get("/dodo/oauth/callback", params=query).status_code == 200
            server.call(
                "POST",
                "/dodo/api/mcp/configs",
                {"catalog_id": "keyed", "headers": {"X-API-Key": header_value}},
            )
            token = server.call("POST", "/dodo/api/user/mcp-tokens", {"label": "scan"})["token"]
            created.add(token)
            gateway = f"{server.base}/dodo/mcp"
            argument = f"arg-{secrets.token_hex(16)}"  # a tool argument: personal data
            created.add(argument)
            assert asyncio.run(gateway_call(gateway, token, "keyed__greet", {"who": argument}))
            asyncio.run(gateway_call(gateway, token, "demo__add", {"a": 1, "b": 2}))
            created |= stored_secrets(server)
            # The history is written in batches (FLUSH_SECONDS): wait for the argument's
            # record, so that it is one the kill below cannot lose.
            for _ in range(200):
                if {"who": argument} in captured_arguments(server):
                    break
                time.sleep(0.05)
            # Expire the access token while the server is down (a running server keeps
            # a fresh token in memory), so the next call refreshes it and rotates the
            # refresh token.
            server.kill()
            expire(server)
            server.start()
            asyncio.run(gateway_call(gateway, token, "demo__add", {"a": 2, "b": 2}))
            created |= stored_secrets(server)
            assert demo.stats.snapshot()["refreshes"] == 1
        finally:
            server.stop()
        assert len(created) >= 6  # header, argument, gateway token, 2 access + 2 refresh
        # Kept (encrypted), through the kill -9 too.
        assert {"who": argument} in captured_arguments(server)

        log = server.log_path.read_bytes()
        assert b"[D " in log  # debug logging was on: the scan covers the chattiest log
        stored = at_rest(server, tmp_path)
        assert stored
        for secret in created:
            assert secret.encode() not in log, "a secret reached the server log"
            assert secret.encode() not in stored, "a secret is stored in clear"
