"""``jupyter dodo demo``: JupyterLab with dodo and the demo OAuth MCP server, offline.

Starts the demo server (:mod:`dodo_jupyter.demo`) as a child process on loopback, writes
a throwaway Jupyter config in a temporary directory that lists it in the catalog and
allows its loopback host, and runs ``jupyter lab`` with that config in the foreground.
Its database and key live in the same temporary directory, so the demo leaves nothing
behind in your real Jupyter data. Stopping JupyterLab stops the demo server; stopping
the launcher (Ctrl-C, or SIGTERM from a process manager) stops both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

__all__ = ["demo_config", "run_demo"]


def demo_config(workdir: Path, demo_url: str) -> dict[str, object]:
    """The Jupyter config the demo runs with."""
    return {
        "DodoApp": {
            "db_url": f"sqlite:///{workdir / 'dodo.sqlite'}",
            "key_file": str(workdir / "crypt.key"),
            "default_catalog": False,
            "allow_insecure_loopback": True,
            "catalog": [
                {
                    "id": "demo",
                    "display_name": "Dodo demo server",
                    "description": "A local OAuth-protected MCP server with a few tools",
                    "url": demo_url,
                    "setup_guide": "Click Connect, then Approve on the consent page.",
                }
            ],
        }
    }


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the demo server exited with code {process.returncode}")
        try:
            if httpx2.get(url, timeout=1.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the demo server did not answer at {url} within {timeout:.0f} s")


def run_demo(*, lab_port: int, demo_port: int, lab_args: list[str]) -> int:
    """Run the demo server and JupyterLab until JupyterLab exits; returns its exit code."""
    workdir = Path(tempfile.mkdtemp(prefix="dodo-demo-"))
    demo_base = f"http://127.0.0.1:{demo_port}"
    demo = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "dodo_jupyter.demo",
            "--port",
            str(demo_port),
            "--log-level",
            "warning",
        ],
    )
    try:
        _wait_ready(f"{demo_base}/.well-known/oauth-authorization-server", demo)
        config = workdir / "jupyter_server_config.json"
        config.write_text(json.dumps(demo_config(workdir, f"{demo_base}/mcp"), indent=2))
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--config={config}",
            f"--port={lab_port}",
            "--ip=127.0.0.1",
            *lab_args,
        ]
        if hasattr(os, "getuid") and os.getuid() == 0 and "--allow-root" not in lab_args:
            command.append("--allow-root")
        print(
            f"dodo demo: MCP demo server at {demo_base}/mcp; starting JupyterLab "
            f"(config in {workdir})",
            flush=True,
        )
        lab = subprocess.Popen(command)  # noqa: S603 - jupyter lab with the user's own arguments
        signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            return lab.wait()
        finally:
            _stop(lab)
    except KeyboardInterrupt:
        return 130
    finally:
        _stop(demo)


def _exit_on_signal(signum: int, frame: object) -> None:
    """SIGTERM ends the launcher as Ctrl-C does: its children are stopped first."""
    raise SystemExit(128 + signum)


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Terminate a child (JupyterLab shuts down cleanly on SIGTERM), killing it after
    10 seconds."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
