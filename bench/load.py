#!/usr/bin/env python
"""The gateway under load: 100 concurrent MCP clients x 20 ``tools/call`` each.

Setup, all on 127.0.0.1 in a temp dir: one upstream MCP server (MCP SDK ``MCPServer``
under uvicorn, in a child process; see ``bench/_mcp_bench.py``) with a trivial
``echo(text)`` tool, and a ``jupyter server`` subprocess with dodo, the upstream in its
catalog (``auth_type: "none"``) and connected with ``start-auth``. Every client gets its
own gateway token (``POST /dodo/api/user/mcp-tokens``), as separate agents would.

``--clients`` (default 100) MCP clients speaking ``--protocol`` (default 2026-07-28, the
SDK's ``mcp.Client`` with ``mode="auto"``; ``2025-11-25`` opens a session each; ``mixed``
alternates) are opened and each lists its tools; then, all released at once, each makes
``--calls`` (default 20) sequential calls of ``up__echo`` through ``/dodo/mcp``, each
bounded by ``--call-timeout`` seconds. Every client runs in this one process (asyncio),
so on a small machine the clients compete with the server for CPU: the CPU seconds of
the bench process, the Jupyter server and the upstream during the call phase are printed
to show which one was the bottleneck.

Printed: ``load_errors`` (exceptions, timeouts, ``isError`` or wrong results; goal 0),
``load_calls_per_s`` (successful calls / wall time of the call phase), ``load_p50_ms``,
``load_p95_ms`` (per call, as each client saw it) and ``gateway_rss_mb`` (``VmRSS`` of
the Jupyter server process after the run; also before the clients connected). Figures
only; nothing is asserted. Run from the repository root::

    /work/venv/bin/python bench/load.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _mcp_bench import (
    PROTOCOLS,
    JupyterGateway,
    McpClient,
    cpu_seconds,
    exit_cleanly_on_sigterm,
    open_mcp,
    percentile,
    rss_mb,
    start_upstreams,
    stop_process,
    tool_text,
)

CATALOG_ID = "up"
TOOL = f"{CATALOG_ID}__echo"


@dataclass
class Results:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)


async def one_client(
    client: McpClient, index: int, calls: int, limit_s: float, go: asyncio.Event, out: Results
) -> None:
    await go.wait()
    for i in range(calls):
        text = f"c{index}-{i}"
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(limit_s):
                result = await client.call_tool(TOOL, {"text": text})
            if tool_text(result) != text:
                raise RuntimeError(f"wrong result {tool_text(result)!r}")
        except Exception as e:
            out.errors.append(f"{type(e).__name__}: {e}"[:200])
            continue
        out.latencies_ms.append((time.perf_counter() - t0) * 1000.0)


async def run_load(
    gateway: JupyterGateway, tokens: list[str], args: argparse.Namespace, upstream_pid: int
) -> Results:
    out = Results()
    go = asyncio.Event()
    protocols = PROTOCOLS if args.protocol == "mixed" else (args.protocol,)
    async with contextlib.AsyncExitStack() as stack:
        clients: list[McpClient] = []
        for i, token in enumerate(tokens):
            headers = {"Authorization": f"Bearer {token}"}
            protocol = protocols[i % len(protocols)]
            client = await stack.enter_async_context(
                open_mcp(gateway.mcp_url, protocol, headers, http_timeout=args.call_timeout)
            )
            await client.list_tools()
            clients.append(client)
        tasks = [
            asyncio.create_task(one_client(c, i, args.calls, args.call_timeout, go, out))
            for i, c in enumerate(clients)
        ]
        pids = {"gateway": gateway.pid, "upstream": upstream_pid}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        bench_before = time.process_time()
        t0 = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
        out.wall_s = time.perf_counter() - t0
        out.cpu_s = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        out.cpu_s["bench_clients"] = time.process_time() - bench_before
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="concurrent MCP clients")
    parser.add_argument("--calls", type=int, default=20, help="calls per client")
    parser.add_argument(
        "--protocol", choices=[*PROTOCOLS, "mixed"], default="2026-07-28", help="client version"
    )
    parser.add_argument("--call-timeout", type=float, default=60.0, help="seconds per call")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()

    tmp = Path(tempfile.mkdtemp(prefix="dodo-bench-load-"))
    upstreams: subprocess.Popen[bytes] | None = None
    gateway: JupyterGateway | None = None
    try:
        upstreams, (upstream_url,) = start_upstreams(tmp, 1)
        gateway = JupyterGateway(tmp, {CATALOG_ID: upstream_url})
        gateway.start()
        gateway.connect(CATALOG_ID)
        tokens = [gateway.gateway_token(f"load {i}") for i in range(args.clients)]
        rss_before = rss_mb(gateway.pid)
        results = asyncio.run(run_load(gateway, tokens, args, upstreams.pid))
        rss_after = rss_mb(gateway.pid)
    finally:
        if gateway is not None:
            gateway.stop()
        stop_process(upstreams)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    ok = results.latencies_ms
    print(
        f"clients={args.clients} calls_per_client={args.calls} protocol={args.protocol} "
        f"ok={len(ok)} wall_s={results.wall_s:.2f}"
    )
    cpu = " ".join(f"{name}={value:.2f}" for name, value in results.cpu_s.items())
    print(f"cpu_s during calls: {cpu}")
    for error in sorted(set(results.errors))[:5]:
        print(f"error: {error}")
    print(f"load_p50_ms={percentile(ok, 50):.3f}")
    print(f"gateway_rss_before_mb={rss_before:.1f} (tokens made, before the clients)")
    print(f"load_errors={len(results.errors)} (goal 0)")
    print(f"load_calls_per_s={len(ok) / results.wall_s:.1f}")
    print(f"load_p95_ms={percentile(ok, 95):.3f}")
    print(f"gateway_rss_mb={rss_after:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
