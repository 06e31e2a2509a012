#!/usr/bin/env python
"""Gateway ``tools/list`` over 10 slow upstreams: is the fan-out parallel, is the cache hit?

Setup, all on 127.0.0.1 in a temp dir: ``--servers`` (default 10) upstream MCP servers, each
in its own child process (MCP SDK ``MCPServer`` under uvicorn; see ``bench/_mcp_bench.py``;
``--shared-process`` puts them all in one, where their GIL serializes the answers), each
answering ``tools/list`` after ``--delay-ms`` (default 50, an ASGI middleware that also
counts the ``tools/list`` requests each server saw), and a ``jupyter server`` subprocess
with dodo, every upstream in its catalog (``auth_type: "none"``) and connected with
``start-auth``. The gateway is listed by an SDK ``mcp.Client`` speaking 2026-07-28
(stateless, its response cache off), one ``tools/list`` at a time.

Measured:

* one server's latency: ``tools/list`` straight to one upstream on an open 2025-11-25
  session (what the gateway's upstream sessions do), p50 of ``--direct`` listings; and
  the same from nothing (connect, initialize, list) for the "fresh" comparison;
* ``fanout_first_ms``: the first gateway listing after the server started and the
  entries connected (sessions to open, caches empty);
* **cold, sessions open** (the headline): before each of ``--cold`` listings the
  gateway's cached tool lists are dropped while its upstream sessions stay open: the
  bench calls every server's ``invalidate`` tool through the gateway, which answers
  with ``notifications/tools/list_changed`` (``UpstreamSession._on_message`` drops the
  cache). ``fanout_cold_ratio`` = its p50 / one server's open-session listing p50 (goal
  <= 1.3);
* **cold from nothing**: before each of ``--fresh`` listings every connection is deleted
  (``delete-auth``, which closes its session) and connected again (``start-auth``), so
  the listing opens 10 sessions and lists 10 servers. ``fanout_cold_fresh_ratio`` = its
  p50 / one server's connect+initialize+list p50;
* **warm**: ``--warm`` listings with the cache fresh (the gateway's TTL is 300 s):
  ``fanout_warm_p50_ms`` (goal <= 2), how many ``tools/list`` reached upstreams
  meanwhile (``fanout_warm_upstream_lists``, expected 0), and the CPU per listing of
  the bench's own SDK client and of the Jupyter server.

Also printed: CPU milliseconds per cold listing of the Jupyter server and of the upstreams'
processes together, which on a small machine bound how parallel a fan-out can be.

Figures only; nothing is asserted. Run from the repository root::

    /work/venv/bin/python bench/fanout.py
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _mcp_bench import (
    JupyterGateway,
    McpClient,
    cpu_seconds,
    exit_cleanly_on_sigterm,
    open_mcp,
    percentile,
    start_upstream_processes,
    start_upstreams,
    stop_process,
    tool_text,
    upstream_tools_list_count,
)

PROTOCOL = "2026-07-28"


async def timed_list(client: McpClient, expected: int) -> float:
    t0 = time.perf_counter()
    result = await client.list_tools()
    elapsed = (time.perf_counter() - t0) * 1000.0
    if len(result.tools) != expected:
        names = [t.name for t in result.tools]
        raise RuntimeError(f"listed {len(result.tools)} tools, expected {expected}: {names}")
    return elapsed


async def direct_open(url: str, count: int) -> list[float]:
    """tools/list on one open 2025-11-25 session to one upstream."""
    async with open_mcp(url, "2025-11-25") as client:
        await timed_list(client, 2)
        return [await timed_list(client, 2) for _ in range(count)]


async def direct_fresh(url: str, count: int) -> list[float]:
    """Connect, initialize and list one upstream, from nothing."""
    out: list[float] = []
    for _ in range(count + 1):
        t0 = time.perf_counter()
        async with open_mcp(url, "2025-11-25") as client:
            await client.list_tools()
            out.append((time.perf_counter() - t0) * 1000.0)
    return out[1:]  # the first pays imports and the like


def upstream_lists(urls: list[str]) -> int:
    return sum(upstream_tools_list_count(url) for url in urls)


async def gateway_runs(
    gateway: JupyterGateway,
    ids: list[str],
    urls: list[str],
    connections: dict[str, str],
    args: argparse.Namespace,
    upstream_pids: list[int],
) -> dict[str, list[float] | int]:
    headers = {"Authorization": f"Bearer {gateway.gateway_token()}"}
    tools = 2 * len(ids)
    out: dict[str, list[float] | int] = {}
    async with open_mcp(gateway.mcp_url, PROTOCOL, headers) as client:
        out["first"] = [await timed_list(client, tools)]

        before = upstream_lists(urls)
        client_cpu = time.process_time()
        gateway_cpu = cpu_seconds(gateway.pid)
        out["warm"] = [await timed_list(client, tools) for _ in range(args.warm)]
        warm_n = max(1, args.warm)
        out["warm_cpu_ms"] = [
            1000.0 * (time.process_time() - client_cpu) / warm_n,
            1000.0 * (cpu_seconds(gateway.pid) - gateway_cpu) / warm_n,
        ]
        out["warm_upstream_lists"] = upstream_lists(urls) - before

        cold: list[float] = []
        cold_lists = 0
        cpu = {"gateway": 0.0, "upstream": 0.0}
        pids = {"gateway": [gateway.pid], "upstream": upstream_pids}

        def cpu_now() -> dict[str, float]:
            return {name: sum(map(cpu_seconds, group)) for name, group in pids.items()}

        for _ in range(args.cold):
            for cid in ids:
                tool_text(await client.call_tool(f"{cid}__invalidate", {}))
            before = upstream_lists(urls)
            cpu_before = cpu_now()
            cold.append(await timed_list(client, tools))
            cpu_after = cpu_now()
            for name in cpu:
                cpu[name] += cpu_after[name] - cpu_before[name]
            cold_lists += upstream_lists(urls) - before
        out["cold"] = cold
        out["cold_upstream_lists"] = cold_lists
        out["cold_cpu_ms"] = [1000.0 * cpu[name] / max(1, args.cold) for name in cpu]

        fresh: list[float] = []
        fresh_lists = 0
        for _ in range(args.fresh):
            for cid in ids:
                gateway.disconnect(connections[cid])
                connections[cid] = gateway.connect(cid)
            before = upstream_lists(urls)
            fresh.append(await timed_list(client, tools))
            fresh_lists += upstream_lists(urls) - before
        out["fresh"] = fresh
        out["fresh_upstream_lists"] = fresh_lists
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=10, help="upstream servers")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="tools/list delay")
    parser.add_argument("--direct", type=int, default=20, help="direct listings to time")
    parser.add_argument("--cold", type=int, default=10, help="cold (sessions open) listings")
    parser.add_argument("--fresh", type=int, default=5, help="cold-from-nothing listings")
    parser.add_argument("--warm", type=int, default=200, help="warm listings")
    parser.add_argument(
        "--shared-process", action="store_true", help="all upstreams in one child process"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()

    tmp = Path(tempfile.mkdtemp(prefix="dodo-bench-fanout-"))
    upstreams: list[subprocess.Popen[bytes]] = []
    gateway: JupyterGateway | None = None
    try:
        if args.shared_process:
            shared, urls = start_upstreams(tmp, args.servers, list_delay_ms=args.delay_ms)
            upstreams = [shared]
        else:
            upstreams, urls = start_upstream_processes(
                tmp, args.servers, list_delay_ms=args.delay_ms
            )
        ids = [f"s{i}" for i in range(args.servers)]
        gateway = JupyterGateway(tmp, dict(zip(ids, urls, strict=True)))
        gateway.start()
        connections = {cid: gateway.connect(cid) for cid in ids}

        one_open = asyncio.run(direct_open(urls[0], args.direct))
        one_fresh = asyncio.run(direct_fresh(urls[0], max(3, args.fresh)))
        pids = [proc.pid for proc in upstreams]
        runs = asyncio.run(gateway_runs(gateway, ids, urls, connections, args, pids))
    finally:
        if gateway is not None:
            gateway.stop()
        for proc in upstreams:
            stop_process(proc)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def ms(key: str) -> list[float]:
        value = runs[key]
        assert isinstance(value, list)
        return value

    one = percentile(one_open, 50)
    one_new = percentile(one_fresh, 50)
    cold = percentile(ms("cold"), 50)
    fresh = percentile(ms("fresh"), 50)
    placement = "one process" if args.shared_process else "one process each"
    print(
        f"servers={args.servers} ({placement}) delay_ms={args.delay_ms:.0f} client={PROTOCOL} "
        f"(cold n={len(ms('cold'))}, fresh n={len(ms('fresh'))}, warm n={len(ms('warm'))})"
    )
    print(f"one_server_list_p50_ms={one:.3f} (open 2025-11-25 session)")
    print(f"one_server_fresh_list_p50_ms={one_new:.3f} (connect + initialize + list)")
    print(f"fanout_first_ms={ms('first')[0]:.3f} (first listing after start + connect)")
    print(f"fanout_cold_p50_ms={cold:.3f} fanout_cold_max_ms={max(ms('cold')):.3f}")
    print(f"fanout_cold_upstream_lists={runs['cold_upstream_lists']} (expected {args.servers}/run)")
    gateway_cpu, upstream_cpu = ms("cold_cpu_ms")
    print(
        f"fanout_cold_cpu_ms_per_listing gateway={gateway_cpu:.1f} upstreams={upstream_cpu:.1f} "
        "(CPU time, 10 ms clock ticks)"
    )
    print(f"fanout_cold_fresh_p50_ms={fresh:.3f} fanout_cold_fresh_max_ms={max(ms('fresh')):.3f}")
    print(f"fanout_cold_fresh_ratio={fresh / one_new:.2f} (from nothing / one fresh listing)")
    print(f"fanout_cold_fresh_vs_list_ratio={fresh / one:.2f} (from nothing / one open listing)")
    print(f"fanout_warm_upstream_lists={runs['warm_upstream_lists']} (expected 0)")
    print(f"fanout_warm_p95_ms={percentile(ms('warm'), 95):.3f}")
    client_ms, server_ms = ms("warm_cpu_ms")
    print(
        f"fanout_warm_cpu_ms_per_listing client={client_ms:.2f} gateway={server_ms:.2f} "
        "(the SDK client's own parsing is part of every warm listing)"
    )
    print(
        f"fanout_cold_ratio={cold / one:.2f} "
        "(cold with sessions open, tool cache empty / one open listing; goal <= 1.3)"
    )
    print(f"fanout_warm_p50_ms={percentile(ms('warm'), 50):.3f} (goal <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
