"""Hub catalog service replicas as real processes, and a stand-in for the hub's API.

:class:`HubAPI` answers ``GET /hub/api/user`` (what ``HubAuth`` asks about a token) from
:data:`tests.hub_service.TOKENS`, on the test's event loop, so each replica runs the
real :class:`~dodo_jupyter.hub.auth.HubTokenAuthority`. :class:`Replica` is one
``python -m dodo_jupyter.hub`` on a loopback port, configured as JupyterHub configures a
managed service (``JUPYTERHUB_*`` environment), logging to a file.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from .hub_service import PREFIX, TOKENS
from .jupyter_process import REPO, free_port
from .oauth_peers import FakeServer

#: Seconds a replica may take to start and open its database.
START_TIMEOUT_S = 30.0


class HubAPI:
    """The hub's ``/hub/api/user``: the model of the token in ``Authorization``, or 403
    (what the hub answers for a token it does not know). Create it on the running loop."""

    def __init__(self) -> None:
        self.server = FakeServer()
        self.server.routes["/hub/api/user"] = self._user
        self.url = self.server.base + "/hub/api"

    @staticmethod
    def _user(request: Any) -> tuple[int, dict[str, str], bytes]:
        token = request.headers.get("Authorization", "").removeprefix("token ").strip()
        found = TOKENS.get(token)
        if found is None:
            return 403, {}, b'{"status": 403, "message": "Invalid token"}'
        return 200, {"Content-Type": "application/json"}, json.dumps(found).encode()

    def stop(self) -> None:
        self.server.stop()


class Replica:
    """One hub catalog service process on ``db_url``; :meth:`start`, then :meth:`ready`."""

    def __init__(self, name: str, db_url: str, hub_api: HubAPI, workdir: Path) -> None:
        self.name = name
        self.db_url = db_url
        self.hub_api = hub_api
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{PREFIX}"
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "service.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> None:
        """Start the process (it opens its database at once, migrations first)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "DODO_"))}
        env.update(
            PYTHONPATH=str(REPO),
            JUPYTERHUB_API_URL=self.hub_api.url,
            JUPYTERHUB_API_TOKEN="service-token",  # the stand-in checks none
            JUPYTERHUB_SERVICE_NAME="dodo",
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{self.port}",
            JUPYTERHUB_SERVICE_PREFIX=PREFIX,
            DODO_HUB_DB_URL=self.db_url,
        )
        command = [
            sys.executable,
            "-m",
            "dodo_jupyter.hub",
            "--no-default-catalog",
            "--allow-insecure-loopback",
            "--DodoHubApp.catalog_cache_ttl=0",
            *args,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdout=log, stderr=log
            )

    async def ready(self) -> None:
        """Wait until the health check answers 200 (the database is open)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                assert self.process is not None and self.process.poll() is None, self.log()
                try:
                    if (await http.get(self.url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert loop.time() < deadline, self.log()
                await asyncio.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
