"""A real Jupyter server process, killed and started again: OAuth flows and stored
tokens survive, and refresh works with no new sign-in."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server
from dodo_jupyter.store import Store
from dodo_jupyter.store.models import MCPConnection, utcnow

from .oauth_peers import callback_query, consent

REPO = Path(__file__).resolve().parents[1]
TOKEN = "restart-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """Starts and kills ``jupyter server`` with dodo on one port and one store."""

    def __init__(self, tmp: Path, demo: DemoHandle) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db_url = f"sqlite:///{tmp / 'dodo.sqlite'}"
        self.key_file = tmp / "crypt.key"
        self.config = tmp / "config.json"
        self.config.write_text(
            json.dumps(
                {
                    "ServerApp": {"jpserver_extensions": {"dodo_jupyter": True}},
                    "DodoApp": {
                        "db_url": self.db_url,
                        "key_file": str(self.key_file),
                        "default_catalog": False,
                        "allow_insecure_loopback": True,
                        "catalog": [{"id": "demo", "url": demo.url}],
                    },
                }
            )
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(
            base_url=self.base, timeout=30, headers={"Authorization": f"token {TOKEN}"}
        )

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "DODO_"))}
        env.update(
            PYTHONPATH=str(REPO),
            JUPYTER_CONFIG_DIR=str(self.tmp / "jcfg"),
            JUPYTER_DATA_DIR=str(self.tmp / "jdata"),
            JUPYTER_RUNTIME_DIR=str(self.tmp / "jrun"),
        )
        command = [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--config={self.config}",
            f"--port={self.port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={TOKEN}",
            "--no-browser",
            f"--ServerApp.root_dir={self.tmp}",
            "--ServerApp.port_retries=0",
        ]
        if os.getuid() == 0:
            command.append("--allow-root")
        log = (self.tmp / "server.log").open("ab")
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.tmp / "server.log").read_text()[-3000:]
            try:
                if self.client.get("/api/status").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("jupyter server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(method, path, json=body)
        log = (self.tmp / "server.log").read_text(errors="replace")[-4000:]
        assert response.status_code < 400, f"{response.text}\n--- server log ---\n{log}"
        return response.json()


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
