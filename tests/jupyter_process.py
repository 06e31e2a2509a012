"""A real ``jupyter server`` process with dodo, for tests that need one (restarts,
kernels): started on a free loopback port with its own config, runtime and data dirs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from dodo_jupyter.demo.testing import DemoHandle

REPO = Path(__file__).resolve().parents[1]
TOKEN = "jupyter-process-test-token"
#: Server extensions installed alongside dodo that these tests do not need: off, so a
#: restart takes a second less.
OTHER_EXTENSIONS = (
    "jupyterlab",
    "jupyter_lsp",
    "jupyter_server_terminals",
    "notebook_shim",
    "jupyterlab_chat",
    "jupyter_ai_router",
    "jupyter_ai_persona_manager",
    "jupyter_ai_acp_client",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """Starts and kills ``jupyter server`` with dodo on one port and one store."""

    def __init__(
        self,
        tmp: Path,
        demo: DemoHandle,
        *,
        db_url: str | None = None,
        more_catalog: list[dict[str, Any]] | None = None,
        debug: bool = False,
        extensions: dict[str, bool] | None = None,
        dodo: dict[str, Any] | None = None,
    ) -> None:
        """``extensions`` turns server extensions on or off (over :data:`OTHER_EXTENSIONS`,
        all off); ``dodo`` adds ``DodoApp`` settings."""
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url or f"sqlite:///{tmp / 'dodo.sqlite'}"
        self.debug = debug
        self.log_path = tmp / "server.log"
        self.key_file = tmp / "crypt.key"
        self.runtime_dir = tmp / "jrun"
        self.config = tmp / "config.json"
        self.config.write_text(
            json.dumps(
                {
                    "ServerApp": {
                        "jpserver_extensions": {
                            "dodo_jupyter": True,
                            **dict.fromkeys(OTHER_EXTENSIONS, False),
                            **(extensions or {}),
                        }
                    },
                    "DodoApp": {
                        "db_url": self.db_url,
                        "key_file": str(self.key_file),
                        "default_catalog": False,
                        "allow_insecure_loopback": True,
                        "catalog": [{"id": "demo", "url": demo.url}, *(more_catalog or [])],
                        **(dodo or {}),
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
        (self.tmp / "home").mkdir(exist_ok=True)
        env.update(
            PYTHONPATH=str(REPO),
            JUPYTER_CONFIG_DIR=str(self.tmp / "jcfg"),
            JUPYTER_DATA_DIR=str(self.tmp / "jdata"),
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
            # Per-user agent configs (~/.jupyter/nbi/...) written through the API land here.
            HOME=str(self.tmp / "home"),
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
        if self.debug:
            command.append("--debug")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                if self.client.get("/api/status").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("jupyter server did not start")

    def stop(self) -> None:
        """SIGTERM: the server shuts down as on Ctrl-C (extensions stop, logs flush)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(method, path, json=body)
        log = self.log_path.read_text(errors="replace")[-4000:]
        assert response.status_code < 400, f"{response.text}\n--- server log ---\n{log}"
        return response.json()
