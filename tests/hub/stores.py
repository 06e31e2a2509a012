"""What a hub user's dodo holds, read from outside: the store in their home, and whether
a gateway token still opens an MCP session. For the end-to-end tests that check secrets
die with the identity that obtained them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import Hub

__all__ = [
    "NO_SECRETS",
    "database",
    "drift_audits",
    "gateway_status",
    "secrets_in",
    "wait_for",
]

GATEWAY = "dodo/mcp"

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "dodo-drift-test", "version": "0"},
    },
}

#: :func:`secrets_in` of a store without secrets.
NO_SECRETS = {"user_mcp_tokens": 0, "mcp_connections": 0}


def gateway_status(hub: Hub, server: str, gateway_token: str) -> int:
    """The status of an MCP ``initialize`` at ``server``'s gateway with ``gateway_token``."""
    response = hub.client.post(
        hub.server_url(server) + GATEWAY,
        json=INITIALIZE,
        headers={
            "Authorization": f"Bearer {gateway_token}",
            "Accept": "application/json, text/event-stream",
        },
    )
    return response.status_code


def database(hub: Hub, home: str) -> Path:
    """dodo's SQLite file in ``home``'s home (see the harness's jupyter_server_config.py)."""
    return hub.run_dir / "home" / home / "dodo" / "dodo.sqlite"


def secrets_in(hub: Hub, home: str) -> dict[str, int]:
    """Rows that hold an owner's secrets, read straight from the database file."""
    with sqlite3.connect(database(hub, home), timeout=5) as db:
        return {
            "user_mcp_tokens": db.execute("SELECT count(*) FROM user_mcp_tokens").fetchone()[0],
            "mcp_connections": db.execute(
                "SELECT count(*) FROM mcp_connections WHERE headers_enc IS NOT NULL"
            ).fetchone()[0],
        }


def drift_audits(hub: Hub, home: str) -> list[str]:
    """The ``owner.drift`` audit rows' details (JSON text), oldest first."""
    with sqlite3.connect(database(hub, home), timeout=5) as db:
        rows = db.execute(
            "SELECT detail FROM audit_log WHERE action = 'owner.drift' ORDER BY id"
        ).fetchall()
    return [str(row[0]) for row in rows]


def wait_for(hub: Hub, what: str, done: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``done`` every 0.1 s; fail with the hub log's tail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}\n{hub.log_tail()}")
        time.sleep(0.1)
