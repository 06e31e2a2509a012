"""``jupyter dodo demo`` as a process manager sees it: stopping the launcher stops
JupyterLab and the demo server (no orphan keeps their ports)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .jupyter_process import free_port


def answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_stops_jupyterlab_and_the_demo_server(tmp_path: Path) -> None:
    lab_port, demo_port = free_port(), free_port()
    launcher = Path(sys.executable).parent / "jupyter-dodo"
    command = [str(launcher), "demo", f"--port={lab_port}", f"--demo-port={demo_port}"]
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen([*command, "--no-browser"], cwd=tmp_path, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "demo.log").read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{lab_port}/api", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert answers(lab_port) and answers(demo_port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
        assert not answers(lab_port), "JupyterLab outlived the launcher"
        assert not answers(demo_port), "the demo server outlived the launcher"
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
