#!/usr/bin/env python
"""Code mode against the classic way: what a model reads, and how long a workflow takes.

Setup, all on 127.0.0.1 in a temp dir: an issue tracker as an upstream MCP server whose
answers have realistic sizes (``bench/_issues_upstream.py``: 500 issues, about 160 kB of
JSON for the open ones); a ``jupyter server`` subprocess with dodo, the tracker in its
catalog and code mode on; a gateway token.

The workflow has ten dependent steps (:data:`_issues_upstream.WORKFLOW`): list the open
issues, keep the P1 bugs, fetch the three most discussed in full and their comments,
look up the owners of the first two, post a summary, answer the summary.

* **classic**: an MCP client on ``/dodo/mcp`` lists the tools and makes the ten
  ``tools/call`` requests itself, as an agent host does for a model. What the model reads
  is every tool definition (the ``tools/list`` result) and the text of every result.
* **code mode**: an MCP client on ``/dodo/mcp/codemode`` lists its three tools, calls
  ``search_tools`` once (signatures) and ``run_python`` once with the workflow's code,
  which makes the calls that need only the issue list together (``.aio`` and
  ``asyncio.gather``), as a program can. What the model reads is those three tools'
  definitions, the search text and the run's answer (the summary).
* **sequential**: code mode again, with code that makes the ten calls one after the
  other (for the figure without concurrency).

Printed: ``classic_model_bytes``, ``codemode_model_bytes`` and
``codemode_model_bytes_ratio`` = code mode / classic (goal <= 0.2); the bytes the model
writes in each (arguments, the code) for information; ``classic_wall_ms``,
``codemode_wall_ms`` (medians over ``--rounds`` interleaved rounds, the kernel warm) and
``codemode_wall_ratio`` = code mode / classic (goal <= 0.7); the same for the sequential
code (``codemode_sequential_wall_ms``, ``codemode_sequential_wall_ratio``);
``codemode_kernel_start_s`` (the first ``run_python`` of a new session: the agent kernel
starts); and the model turns each way takes (``classic_model_turns=11``,
``codemode_model_turns=3``). The model's own time is not part of either wall time: with
no model in the loop both ways make the same ten calls through the gateway, so the wall
ratio measures what code mode adds (the search and a kernel round trip) against what it
saves (the client's round trips, and the wait for calls that can run together). Figures only;
nothing is asserted. Run from the repository root::

    .venv/bin/python bench/codemode.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _issues_upstream import WORKFLOW, WORKFLOW_SEQUENTIAL
from _mcp_bench import (
    JupyterGateway,
    McpClient,
    exit_cleanly_on_sigterm,
    free_port,
    open_mcp,
    spawn,
    stop_process,
    tool_text,
    wait_http,
)

SERVER = "tracker"
PROTOCOL = "2025-11-25"  # a session: code mode keeps one kernel per session
#: What turns code mode on for the benchmark's server.
CODE_MODE_SETTINGS: dict[str, Any] = {"code_mode": True, "kernel_access": False}
#: The ways timed: the classic client, the workflow's code (independent steps together),
#: the same code one call after the other.
WAYS = ["classic", "codemode", "sequential"]
HERE = Path(__file__).resolve().parent


def _definitions_bytes(listed: Any) -> int:
    return sum(len(t.model_dump_json(by_alias=True, exclude_none=True)) for t in listed.tools)


class Reading:
    """Bytes a model reads (definitions, results) and writes (arguments, code)."""

    def __init__(self) -> None:
        self.read = 0
        self.written = 0

    async def call(self, client: McpClient, name: str, arguments: dict[str, Any]) -> Any:
        """Call a tool; count its arguments as written and its text blocks as read (what
        a host puts before the model); the result."""
        self.written += len(json.dumps(arguments))
        result = await client.call_tool(name, arguments)
        self.read += len(tool_text(result).encode())
        return result


async def classic(client: McpClient) -> Reading:
    """The ten steps as a host runs them for a model: one ``tools/call`` per step."""
    reading = Reading()
    reading.read += _definitions_bytes(await client.list_tools())

    async def call(tool: str, **arguments: Any) -> Any:
        """The structured result (the host's code reads it; the model read the text)."""
        value = (await reading.call(client, f"{SERVER}__{tool}", arguments)).structured_content
        # The SDK wraps a list result as {"result": [...]}.
        return value["result"] if isinstance(value, dict) and set(value) == {"result"} else value

    issues = await call("list_issues", state="open")
    bugs = [i for i in issues if "bug" in i["labels"] and "p1" in i["labels"]]
    top = sorted(bugs, key=lambda i: -i["comments"])[:3]
    details = [await call("get_issue", number=i["number"]) for i in top]
    threads = [await call("list_comments", number=i["number"]) for i in top]
    owners = [await call("get_user", login=d["assignee"]) for d in details[:2]]
    lines = [
        f"#{d['number']} {d['title']} ({len(c)} comments, {d['reactions']['+1']} +1)"
        for d, c in zip(details, threads, strict=True)
    ]
    lines += [f"owner: {u['name']} ({u['team']}, {u['timezone']})" for u in owners]
    await call("add_comment", number=1, body="Top open P1 bugs:\n" + "\n".join(lines))
    return reading


async def code_mode(client: McpClient, workflow: str = WORKFLOW) -> tuple[Reading, str]:
    """The same as a model does it in code mode: one search, one run of ``workflow``."""
    reading = Reading()
    reading.read += _definitions_bytes(await client.list_tools())
    search = {"query": "issues comments user", "detail": "signatures"}
    await reading.call(client, "search_tools", search)
    run = {"code": workflow.format(server=SERVER), "timeout_s": 60}
    return reading, tool_text(await reading.call(client, "run_python", run))


async def measure(gateway: JupyterGateway, token: str, rounds: int) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    async with contextlib.AsyncExitStack() as stack:
        plain = await stack.enter_async_context(open_mcp(gateway.mcp_url, PROTOCOL, headers))
        coded = await stack.enter_async_context(
            open_mcp(f"{gateway.mcp_url}/codemode", PROTOCOL, headers)
        )
        started = time.perf_counter()
        tool_text(await coded.call_tool("run_python", {"code": "1 + 1", "timeout_s": 120}))
        kernel_start = time.perf_counter() - started
        walls: dict[str, list[float]] = {way: [] for way in WAYS}
        readings: dict[str, Reading] = {}
        answers: dict[str, str] = {}
        for index in range(rounds + 1):  # the first round warms all up, untimed
            shift = index % len(WAYS)
            for way in WAYS[shift:] + WAYS[:shift]:
                t0 = time.perf_counter()
                if way == "classic":
                    readings[way] = await classic(plain)
                else:
                    workflow = WORKFLOW if way == "codemode" else WORKFLOW_SEQUENTIAL
                    readings[way], answers[way] = await code_mode(coded, workflow)
                if index:
                    walls[way].append((time.perf_counter() - t0) * 1000.0)
    for way, answer in answers.items():
        if "Top open P1 bugs" not in answer:
            raise RuntimeError(f"the {way} run did not answer the summary: {answer[:500]}")
    values = {way: answer.partition(": ")[2] for way, answer in answers.items()}  # no Out[n]
    if values["codemode"] != values["sequential"]:
        raise RuntimeError(f"the two codes answered differently: {answers}")
    classic_ms = statistics.median(walls["classic"])
    coded_ms = statistics.median(walls["codemode"])
    sequential_ms = statistics.median(walls["sequential"])
    return {
        "classic_model_bytes": str(readings["classic"].read),
        "codemode_model_bytes": str(readings["codemode"].read),
        "codemode_model_bytes_ratio": f"{readings['codemode'].read / readings['classic'].read:.4f}",
        "classic_model_written_bytes": str(readings["classic"].written),
        "codemode_model_written_bytes": str(readings["codemode"].written),
        "classic_wall_ms": f"{classic_ms:.1f}",
        "codemode_wall_ms": f"{coded_ms:.1f}",
        "codemode_wall_ratio": f"{coded_ms / classic_ms:.3f}",
        "codemode_sequential_wall_ms": f"{sequential_ms:.1f}",
        "codemode_sequential_wall_ratio": f"{sequential_ms / classic_ms:.3f}",
        "codemode_kernel_start_s": f"{kernel_start:.2f}",
        # What the model must do in between: write each call after reading the last
        # result (ten calls and the answer), or the search, the code and the answer.
        "classic_model_turns": "11",
        "codemode_model_turns": "3",
    }


def start_tracker(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = spawn(
        [sys.executable, str(HERE / "_issues_upstream.py"), "--port", str(port)], tmp, "tracker.log"
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
    except BaseException:
        stop_process(proc)
        raise
    return proc, f"http://127.0.0.1:{port}/mcp"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds of each way")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="dodo-bench-codemode-"))
    tracker: subprocess.Popen[bytes] | None = None
    gateway: JupyterGateway | None = None
    try:
        tracker, url = start_tracker(tmp)
        gateway = JupyterGateway(tmp, {SERVER: url}, settings=CODE_MODE_SETTINGS)
        gateway.start()
        gateway.connect(SERVER)
        figures = asyncio.run(measure(gateway, gateway.gateway_token(), args.rounds))
    finally:
        if gateway is not None:
            gateway.stop()
        stop_process(tracker)
    goals = {"codemode_model_bytes_ratio": "0.2", "codemode_wall_ratio": "0.7"}
    for key, value in figures.items():
        print(f"{key}={value}")
    for key, goal in goals.items():
        print(f"# {key} goal <= {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
