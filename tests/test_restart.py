"""A real Jupyter server process, killed and started again: OAuth flows and stored
tokens survive, refresh works with no new sign-in, and the tools' pins and the call
history are still there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server
from dodo_jupyter.store import Store
from dodo_jupyter.store.models import MCPConnection, ToolPin, utcnow

from .jupyter_process import ServerProcess
from .oauth_peers import callback_query, consent


@pytest.fixture
def demo() -> Iterator[DemoHandle]:
    with running_demo_server(DemoConfig(port=0)) as handle:
        yield handle


@pytest.fixture
def server(tmp_path: Path, demo: DemoHandle) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path, demo)
    yield proc
    if proc.process is not None:
        proc.kill()
    proc.client.close()


def _store(server: ServerProcess) -> Store:
    store = Store(server.db_url, server.key_file, environ={})
    store.open_sync()
    return store


def _with_store(server: ServerProcess, fn: Callable[[Store], Any]) -> Any:
    store = _store(server)
    try:
        return fn(store)
    finally:
        store.close()


def test_flow_and_tokens_survive_kill_9(server: ServerProcess, demo: DemoHandle) -> None:
    server.start()
    started = server.call("POST", "/dodo/api/mcp/start-auth", {"catalog_id": "demo"})
    assert started["state"] == "authenticating"
    server.kill()  # between start and callback

    server.start()
    query = callback_query(asyncio.run(consent(started["authorize_url"])))
    page = server.client.get("/dodo/oauth/callback", params=query)
    assert page.status_code == 200 and "Connected" in page.text
    (conn,) = server.call("GET", "/dodo/api/mcp/servers")["servers"]
    assert conn["state"] == "connected"
    server.kill()

    # Expire the stored access token while the server is down.
    def expire(store: Store) -> None:
        def change(session: Any) -> None:
            session.get(MCPConnection, conn["id"]).expires_at = utcnow() - timedelta(minutes=1)

        store.db.write_sync(change)

    _with_store(server, expire)
    server.start()
    assert server.call("GET", "/dodo/api/mcp/servers")["servers"][0]["state"] == "connected"
    refreshed = server.call("POST", "/dodo/api/mcp/refresh-state", {"connection_id": conn["id"]})
    assert refreshed["state"] == "connected"
    again = server.call("POST", "/dodo/api/mcp/start-auth", {"catalog_id": "demo"})
    assert again == {"state": "connected", "connection_id": conn["id"]}
    stats = demo.stats.snapshot()
    assert stats["token_exchanges"] == 1  # one sign-in in all
    assert stats["refreshes"] == 1


def test_pins_and_the_call_history_survive_kill_9(server: ServerProcess, demo: DemoHandle) -> None:
    """What governance keeps is in the store: after a kill -9 the history still has the
    calls made before it, and the tools' pins still stand (no first listing again)."""
    server.start()
    started = server.call("POST", "/dodo/api/mcp/start-auth", {"catalog_id": "demo"})
    query = callback_query(asyncio.run(consent(started["authorize_url"])))
    assert server.client.get("/dodo/oauth/callback", params=query).status_code == 200
    tools = server.call("GET", "/dodo/api/mcp/tools")["tools"]
    assert tools and all(t["quarantine"] is None for t in tools)
    result = server.call(
        "POST", "/dodo/api/mcp/tools/call", {"name": "demo__add", "arguments": {"a": 1, "b": 2}}
    )
    assert not result.get("isError")
    time.sleep(0.3)  # the history writes within 50 ms
    server.kill()

    def pins(store: Store) -> set[str]:
        return set(store.db.read_sync(lambda s: list(s.scalars(select(ToolPin.tool_name)))))

    pinned = _with_store(server, pins)
    assert {t["original_name"] for t in tools} | {""} == pinned
    server.start()
    calls = server.call("GET", "/dodo/api/user/tool-calls")["calls"]
    assert [(c["tool"], c["outcome"], c["path"]) for c in calls] == [("add", "ok", "try_it")]
    tools = server.call("GET", "/dodo/api/mcp/tools")["tools"]
    assert all(t["quarantine"] is None for t in tools)
    assert _with_store(server, pins) == pinned
