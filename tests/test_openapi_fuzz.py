"""schemathesis against a live ``jupyter server`` with dodo: every documented operation,
generated requests, every check (``--checks all``): no 5xx, no answer the document does
not describe, every request the document allows accepted, every request it forbids
refused, a 405 with ``Allow`` for a method it does not list. The one check left out is
``missing_required_header``: without credentials Jupyter answers 403 by design.

Where whether a request is acceptable depends on stored data or the server's
configuration (a PUT's ``id`` must be the path's; an ``If-Match`` must name the entry's
current revision; the headers a catalog entry asks for; the outbound rules for a URL; an
OAuth ``state`` this server issued), no JSON Schema can say it; tests/schemathesis.toml
lists those operations, each with its reason, and lets them answer 400 (or 412) to a
request the document allows.

One check is dodo's own, ``no_library_internals`` (tests/schemathesis_hooks.py): no error
body of any operation, for any of the bad inputs generated, carries a pydantic dump or a
Python exception class name.

The server is a real process (tests/jupyter_process.py) on loopback, authenticated with
its Jupyter token, with the demo MCP server in its catalog (so ``start-auth`` with the
example ``catalog_id: demo`` really starts an OAuth flow). The local owner is an
administrator, so the admin endpoints are reachable. The schema is the one the server
serves (``GET dodo/api/openapi.json``), so its ``servers`` entry is exercised too.

Left out of the fuzzing: ``/dodo/mcp`` and ``/dodo/mcp/codemode``. Their bodies are MCP
JSON-RPC messages, which the document does not describe field by field (the MCP
specification does), so generated bodies would only test the SDK's JSON-RPC parsing; the
official MCP conformance suite covers the gateway (tests/conformance/run-server.sh), and
tests/test_codemode_*.py code mode. Their presence in the document is checked by
tests/test_openapi.py like every other route. Also left out: the approvals
long poll (``waitForApprovals``), which by design answers a generated ``wait`` of up to
30 s only then; tests/test_governance_gateway.py drives it.

It runs once on SQLite and once on PostgreSQL (``postgres``), about a minute each: the
two refuse different values (PostgreSQL's INTEGER is 32 bits, its text cannot hold a
NUL character).

Deterministic: one worker and ``--generation-deterministic`` (no seed, no example
database), so a run sends the same requests in the same order every time. Operations
that change state (DELETE of tokens and entries, import) are fine on this throwaway
server. ``SCHEMATHESIS_MAX_EXAMPLES`` raises the number of examples per operation for a
longer local run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import running_demo_server

from .jupyter_process import TOKEN, ServerProcess

pytestmark = pytest.mark.schemathesis

#: Every schemathesis check makes a run fail except these: without credentials Jupyter
#: answers 403 by design, which the document does not list for every operation.
EXCLUDED_CHECKS = ("missing_required_header",)
#: Per-operation settings: the 400s that depend on stored data (see the file).
CONFIG = Path(__file__).with_name("schemathesis.toml")
#: The custom check ``no_library_internals`` (tests/schemathesis_hooks.py).
HOOKS_ENV = {
    "NO_COLOR": "1",
    "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
    "PYTHONPATH": os.pathsep.join(
        p for p in (str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")) if p
    ),
}
#: Not fuzzed; see the module docstring.
EXCLUDED_PATHS = ("/dodo/mcp", "/dodo/mcp/codemode")
EXCLUDED_OPERATIONS = ("waitForApprovals",)
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "50"))
#: The whole run must stay well within CI's time.
TIME_LIMIT = 300


def schemathesis_command(schema_url: str) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        schema_url,
        "--header",
        f"Authorization: token {TOKEN}",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    for path in EXCLUDED_PATHS:
        command += ["--exclude-path", path]
    for operation in EXCLUDED_OPERATIONS:
        command += ["--exclude-operation-id", operation]
    return command


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_schemathesis_finds_nothing(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    db_url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    with running_demo_server(DemoConfig(port=0)) as demo:
        server = ServerProcess(tmp_path, demo, db_url=db_url)
        server.start()
        try:
            started = time.monotonic()
            result = subprocess.run(
                schemathesis_command(f"{server.base}/dodo/api/openapi.json"),
                cwd=tmp_path,  # no schemathesis.toml of anyone else's; reports stay here
                capture_output=True,
                text=True,
                timeout=TIME_LIMIT,
                env={**os.environ, **HOOKS_ENV},
            )
            elapsed = time.monotonic() - started
        finally:
            server.stop()
    output = result.stdout + result.stderr
    log = server.log_path.read_text(errors="replace")[-4000:]
    assert result.returncode == 0, f"{output}\n--- server log ---\n{log}"
    print(f"schemathesis: {elapsed:.0f} s\n{output[-2500:]}")
