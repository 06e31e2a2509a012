"""dodo's log lines, in real processes at their default log level: a Jupyter server's
and the hub catalog service's lines carry Jupyter's level and timestamp, INFO shows, and
the service's --help-all says the level that applies."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server
from dodo_jupyter.logs import join_app_log, leave_app_log, shown_level

from .jupyter_process import REPO, ServerProcess, free_port

#: A line in Jupyter's format: ``[I 2026-11-26 18:00:00.123 name] message``.
LINE = re.compile(
    r"^\[(?P<level>[DIWEC]) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (?P<name>[\w.]+)\] "
    r"(?P<message>.*)$"
)


def lines(log: str) -> list[tuple[str, str, str]]:
    """(level, logger, message) of each line in Jupyter's format."""
    return [(m["level"], m["name"], m["message"]) for m in map(LINE.match, log.splitlines()) if m]


@pytest.fixture
def demo() -> Iterator[DemoHandle]:
    with running_demo_server(DemoConfig(port=0)) as handle:
        yield handle


def test_a_jupyter_servers_dodo_lines_are_in_jupyters_format_at_info(
    tmp_path: Path, demo: DemoHandle
) -> None:
    bad = {"id": "bad", "url": "ftp://bad.example/mcp"}
    server = ServerProcess(tmp_path, demo, more_catalog=[bad])  # Jupyter's default level
    server.start()
    try:
        deadline = time.monotonic() + 20
        while "kernels reach the MCP gateway" not in server.log_path.read_text():
            assert time.monotonic() < deadline, server.log_path.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    seen = lines(log)
    dodo = [(level, message) for level, name, message in seen if name.startswith("dodo_jupyter")]
    assert ("I", "dodo catalog from configuration: 1 added, 0 updated, 0 removed") in dodo, log
    assert any(level == "I" and "kernels reach the MCP gateway" in m for level, m in dodo), log
    assert any(level == "W" and m.startswith("Catalog entry 'bad'") for level, m in dodo), log
    # No dodo line without time and level (Python's last-resort handler prints bare ones).
    bare = [line for line in log.splitlines() if "Catalog entry 'bad'" in line]
    assert bare and all(LINE.match(line) for line in bare), bare


def test_the_hub_services_lines_are_in_jupyters_format(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "DODO_"))}
    env["PYTHONPATH"] = str(REPO)
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dodo_jupyter.hub", f"--bind-url=http://127.0.0.1:{port}"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        health = f"http://127.0.0.1:{port}/services/dodo/"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(health, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        assert httpx.get(health + "nothing", timeout=5).status_code == 404
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    log = log_path.read_text(errors="replace")
    seen = lines(log)
    names = {name for _, name, _ in seen}
    assert {"DodoHubApp", "dodo_jupyter.hub.service", "dodo_jupyter.hub.access"} <= names, log
    assert ("I", "DodoHubApp", "dodo hub catalog: stopping") in seen
    not_found = [m for level, name, m in seen if level == "W" and "/services/dodo/nothing" in m]
    assert len(not_found) == 1, log  # one line per 404 (tornado's own is not repeated)
    # Every line but the continuations of a multi-line message is in the format.
    starts = [line for line in log.splitlines() if line.startswith("[")]
    assert starts and all(LINE.match(line) for line in starts), starts


def test_the_hub_services_help_says_the_default_log_level() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dodo_jupyter.hub", "--help-all"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    block = result.stdout[result.stdout.index("--log-level") :].split("\n--", 1)[0]
    assert "INFO (20, the default" in block and "Default: 20" in block, block
    assert "Equivalent to: [--DodoHubApp.log_level]" in block
    fmt = result.stdout[result.stdout.index("--DodoHubApp.log_format") :].split("\n--", 1)[0]
    assert "%(color)s[%(levelname)1.1s %(asctime)s.%(msecs).03d" in fmt, fmt


def test_join_and_leave_the_app_log() -> None:
    app_log = logging.getLogger("test-app")
    handler = logging.NullHandler()
    app_log.addHandler(handler)
    app_log.setLevel(logging.INFO)
    try:
        dodo = join_app_log(app_log, "dodo_jupyter.test_logs")
        join_app_log(app_log, "dodo_jupyter.test_logs")  # twice: still one handler
        assert dodo.handlers == [handler] and dodo.level == logging.INFO and dodo.propagate
        leave_app_log(app_log, "dodo_jupyter.test_logs")
        assert dodo.handlers == [] and dodo.level == logging.NOTSET
    finally:
        app_log.removeHandler(handler)


def test_the_level_shown_is_the_handlers_not_only_the_loggers() -> None:
    # What traitlets builds for an application: the logger at DEBUG, the handler at the
    # application's log_level. Debug records would be made and then dropped.
    app_log = logging.getLogger("test-app-shown")
    app_log.propagate = False
    handler = logging.NullHandler(logging.INFO)
    app_log.addHandler(handler)
    app_log.setLevel(logging.DEBUG)
    try:
        assert app_log.isEnabledFor(logging.DEBUG)
        assert shown_level(app_log) == logging.INFO
        dodo = join_app_log(app_log, "dodo_jupyter.test_logs_shown")
        assert dodo.level == logging.INFO and not dodo.isEnabledFor(logging.DEBUG)
        handler.setLevel(logging.DEBUG)  # --debug
        assert shown_level(app_log) == logging.DEBUG
        app_log.setLevel(logging.WARNING)
        assert shown_level(app_log) == logging.WARNING
        # Without a handler of its own, the ones it propagates to decide.
        child = logging.getLogger("test-app-shown.child")
        child.setLevel(logging.DEBUG)
        assert shown_level(child) == logging.DEBUG
        app_log.removeHandler(handler)
        assert shown_level(child) == logging.WARNING  # Python's last resort
    finally:
        app_log.removeHandler(handler)
        leave_app_log(app_log, "dodo_jupyter.test_logs_shown")
