"""The rig for the server conformance run: dodo's gateway behind a token proxy.

``run-server.sh`` starts ``python -m tests.conformance.server_rig serve <url-file>`` and
points ``@modelcontextprotocol/conformance server`` at the URL it writes. The rig starts,
all on free loopback ports:

1. the upstream MCP server with the reference tools, resources, prompts, completion
   and logging (:mod:`.upstream`, :mod:`.upstream_content`, in a thread);
2. a real ``jupyter server`` with dodo (a subprocess: temporary SQLite store, key file
   and ``JUPYTER_*`` directories, a random Jupyter token, ``PYTHONPATH`` = this working
   tree), whose catalog holds one entry, ``conformance``, for the upstream
   (``auth_type: none``, loopback allowed);
3. through dodo's REST API with the Jupyter token: the connection
   (``POST /dodo/api/mcp/start-auth``) and a gateway token
   (``POST /dodo/api/user/mcp-tokens``);
4. the token proxy (:mod:`.token_proxy`, in a thread) in front of ``/dodo/mcp``,
   giving tool and prompt names the gateway's prefix ``conformance__`` and resource
   URIs the gateway's ``dodo://conformance/`` (and taking them off what comes back).

Then it writes the proxy's URL to ``<url-file>`` and serves until SIGTERM or SIGINT,
when it stops Jupyter and removes its temporary directory. Jupyter's log goes to
``jupyter.log`` next to ``<url-file>``.

``python -m tests.conformance.server_rig judge <results-dir> <scenario>...`` judges the
scenarios whose ``checks.json`` the suite wrote under ``<results-dir>/<scenario>/``, one
tab-separated line each: ``<scenario> PASS`` or ``<scenario> FAIL <reasons>``. A
scenario passes when some check succeeded and none is a FAILURE or a WARNING (the
suite's own rule); for :data:`EXPECTED_TEXT` scenarios the results must also carry the
upstream's own text, so a gateway error ("No tool named ...", itself ``isError``) cannot
pass for the upstream's, nor an empty list or completion (which the suite accepts) for
what the upstream offers.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from .token_proxy import running_proxy
from .upstream import ERROR_TEXT, running_upstream
from .upstream_content import COMPLETED, PROMPTS, RESOURCES

__all__ = ["CATALOG_ID", "EXPECTED_TEXT", "judge", "main", "serve"]

REPO = Path(__file__).resolve().parents[2]
#: The catalog entry of the upstream; at the gateway its tools and prompts are
#: ``conformance__<name>`` and its resources ``dodo://conformance/<uri>``.
CATALOG_ID = "conformance"
#: Text a scenario's checks must contain, besides having no failure.
EXPECTED_TEXT = {
    "tools-call-error": ERROR_TEXT,
    "resources-list": RESOURCES[0].uri,
    "prompts-list": PROMPTS[0].name,
    "completion-complete": COMPLETED,
}
STARTUP_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _jupyter(tmp: Path, upstream: str, log_path: Path) -> Iterator[tuple[str, str]]:
    """A Jupyter server with dodo, logging to ``log_path``; yields its base URL and
    Jupyter token."""
    port, token = _free_port(), secrets.token_hex(16)
    config = tmp / "config.json"
    config.write_text(
        json.dumps(
            {
                "ServerApp": {"jpserver_extensions": {"dodo_jupyter": True}},
                "DodoApp": {
                    "db_url": f"sqlite:///{tmp / 'dodo.sqlite'}",
                    "key_file": str(tmp / "crypt.key"),
                    "default_catalog": False,
                    "allow_insecure_loopback": True,
                    "catalog": [{"id": CATALOG_ID, "url": upstream, "auth_type": "none"}],
                },
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "DODO_"))}
    env.update(
        PYTHONPATH=str(REPO),
        JUPYTER_CONFIG_DIR=str(tmp / "jcfg"),
        JUPYTER_DATA_DIR=str(tmp / "jdata"),
        JUPYTER_RUNTIME_DIR=str(tmp / "jrun"),
    )
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--config={config}",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        "--no-browser",
        f"--ServerApp.root_dir={tmp}",
        "--ServerApp.port_retries=0",
    ]
    if os.getuid() == 0:
        command.append("--allow-root")
    base = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=tmp)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/api/status", params={"token": token}).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter server did not answer within {STARTUP_TIMEOUT} s")
            time.sleep(0.1)
        yield base, token
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _connect(base: str, token: str) -> str:
    """Connect the upstream and create a gateway token; returns the token."""
    with httpx.Client(
        base_url=base, timeout=30, headers={"Authorization": f"token {token}"}
    ) as client:
        started = client.post("/dodo/api/mcp/start-auth", json={"catalog_id": CATALOG_ID})
        if started.status_code >= 400 or started.json().get("state") != "connected":
            raise RuntimeError(f"start-auth did not connect the upstream: {started.text}")
        created = client.post(
            "/dodo/api/user/mcp-tokens", json={"label": "conformance", "expires_in_days": 1}
        )
        if created.status_code != 201:
            raise RuntimeError(f"could not create a gateway token: {created.text}")
        return str(created.json()["token"])


def serve(url_file: Path) -> None:
    """Start everything, write the proxy URL to ``url_file``, serve until signalled."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    tmp = Path(tempfile.mkdtemp(prefix="dodo-conformance-server."))
    try:
        with (
            running_upstream() as upstream,
            _jupyter(tmp, upstream, url_file.with_name("jupyter.log")) as (base, jupyter_token),
            running_proxy(
                f"{base}/dodo/mcp",
                _connect(base, jupyter_token),
                prefix=f"{CATALOG_ID}__",
                uri_prefix=f"dodo://{CATALOG_ID}/",
            ) as proxy,
        ):
            partial = url_file.with_name(url_file.name + ".tmp")
            partial.write_text(proxy + "\n")
            partial.replace(url_file)  # the script sees the whole URL or none
            stop.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def judge(scenario: str, checks: list[dict[str, Any]]) -> list[str]:
    """Why the scenario failed; empty when it passed."""
    reasons = [
        f"{check.get('status')} {check.get('id')}: "
        f"{check.get('errorMessage') or check.get('description')}"
        for check in checks
        if check.get("status") in ("FAILURE", "WARNING")
    ]
    if not any(check.get("status") == "SUCCESS" for check in checks):
        reasons.append("no check succeeded")
    expected = EXPECTED_TEXT.get(scenario)
    if expected is not None and expected not in json.dumps(checks):
        reasons.append(f"the result does not carry the upstream's text {expected!r}")
    return reasons


def _judge_all(results: Path, scenarios: list[str]) -> None:
    for scenario in scenarios:
        found = sorted((results / scenario).glob("**/checks.json"))
        if found:
            reasons = judge(scenario, json.loads(found[-1].read_text()))
        else:
            reasons = ["the suite wrote no checks.json"]
        verdict = "FAIL\t" + "; ".join(reasons) if reasons else "PASS"
        print(f"{scenario}\t{verdict}".replace("\n", " "))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "serve":
        serve(Path(args[1]))
        return 0
    if len(args) >= 2 and args[0] == "judge":
        _judge_all(Path(args[1]), args[2:])
        return 0
    print(
        "usage: python -m tests.conformance.server_rig serve <url-file>\n"
        "       python -m tests.conformance.server_rig judge <results-dir> <scenario>...",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
