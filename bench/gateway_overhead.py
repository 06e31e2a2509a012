#!/usr/bin/env python
"""What the gateway adds to one ``tools/call``: direct vs ``/dodo/mcp`` vs a fastmcp proxy.

Setup, all on 127.0.0.1 in a temp dir: one upstream MCP server (the MCP SDK's
``MCPServer`` under uvicorn, in a child process; see ``bench/_mcp_bench.py``) with a
trivial ``echo(text)`` tool; a ``jupyter server`` subprocess with dodo, the upstream in
its catalog (``auth_type: "none"``), connected with ``start-auth``, and a gateway token;
and a fastmcp proxy in a child process in its best configuration: ``create_proxy`` over
ONE already-connected fastmcp ``Client`` that every request reuses (its backend session
speaks ``--fastmcp-backend-mode``, default ``legacy``, as dodo's upstream sessions do).

For each protocol version the client speaks (``2025-11-25``: an SDK ``ClientSession``
with the initialize handshake; ``2026-07-28``: an SDK ``mcp.Client`` with ``mode="auto"``,
stateless), three clients are opened (direct, gateway, proxy), each lists its tools and
makes ``--warmup`` calls, then ``--n`` (default 500) sequential ``tools/call`` of ``echo``
are timed per target, interleaved in blocks of ``--block`` calls whose order rotates, so
all three see the same machine conditions. The upstream leg of the gateway is always a
2025-11-25 session (``dodo_jupyter.gateway.upstream_sessions``), whatever the client speaks.

Printed per version (keys suffixed ``_2025_11_25`` / ``_2026_07_28``, and the 2026-07-28
figures again without suffix): ``direct_p50_ms``, ``gateway_p50_ms``, ``fastmcp_p50_ms``,
``gateway_overhead_p50_ms`` = gateway p50 - direct p50 (goal <= 2.0 with 2026-07-28;
stretch 1.0), ``fastmcp_proxy_overhead_p50_ms`` = proxy p50 - direct p50, and
``overhead_vs_fastmcp_ratio`` = gateway overhead / proxy overhead (goal <= 0.5); also
p95s and the Jupyter server's CPU time per gateway call. The same upstream tool is also
called through a second catalog entry whose ``tool_policy`` allows it (allow and deny
globs, a rate limit, review of new tools), interleaved with the others:
``gateway_policy_p50_ms`` and ``policy_on_vs_off_ratio`` = its overhead / the open
entry's (goal <= 1.10: governance with a policy costs at most 10% more). Without
fastmcp installed the proxy keys print ``unavailable``. Figures only; nothing is
asserted. Run from the repository root::

    /work/venv/bin/python bench/gateway_overhead.py [--n 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _mcp_bench import (
    PROTOCOLS,
    JupyterGateway,
    McpClient,
    cpu_seconds,
    exit_cleanly_on_sigterm,
    open_mcp,
    percentile,
    start_fastmcp_proxy,
    start_upstreams,
    stop_process,
    tool_text,
)

CATALOG_ID = "up"
#: The same upstream tool behind an entry with a tool policy that lets ``echo`` through.
POLICY_ID = "upp"
POLICY = {
    "allow": ["echo", "get_*"],
    "deny": ["delete_*", "*_admin_*"],
    "calls_per_minute": 100_000,
    "review_new_tools": True,
}
TOOL = "echo"


async def timed_call(client: McpClient, tool: str) -> float:
    t0 = time.perf_counter()
    result = await client.call_tool(tool, {"text": "ping"})
    elapsed = (time.perf_counter() - t0) * 1000.0
    if tool_text(result) != "ping":
        raise RuntimeError(f"{tool} answered {tool_text(result)!r}")
    return elapsed


async def measure(
    protocol: str,
    targets: dict[str, tuple[str, dict[str, str], str]],
    *,
    n: int,
    block: int,
    warmup: int,
    gateway_pid: int,
) -> tuple[dict[str, list[float]], float]:
    """Timed calls per target, and the Jupyter server's CPU seconds while they ran (only
    the gateway calls reach it)."""
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, McpClient] = {}
        for name, (url, headers, _tool) in targets.items():
            clients[name] = await stack.enter_async_context(open_mcp(url, protocol, headers))
            await clients[name].list_tools()
        for name, client in clients.items():
            for _ in range(warmup):
                await timed_call(client, targets[name][2])
        samples: dict[str, list[float]] = {name: [] for name in clients}
        order = list(clients)
        cpu_before = cpu_seconds(gateway_pid)
        for _ in range(4 * n):  # bounded
            if all(len(v) >= n for v in samples.values()):
                break
            for name in order:
                for _ in range(min(block, n - len(samples[name]))):
                    samples[name].append(await timed_call(clients[name], targets[name][2]))
            order.append(order.pop(0))  # rotate who goes first
        cpu = cpu_seconds(gateway_pid) - cpu_before
    return samples, cpu


def report(
    protocol: str, samples: dict[str, list[float]], gateway_cpu_s: float, *, plain: bool
) -> None:
    suffix = "_" + protocol.replace("-", "_")
    calls = len(samples["gateway"]) + len(samples.get("gateway_policy", []))
    direct = percentile(samples["direct"], 50)
    gateway = percentile(samples["gateway"], 50)
    figures: dict[str, str] = {
        "direct_p50_ms": f"{direct:.3f}",
        "direct_p95_ms": f"{percentile(samples['direct'], 95):.3f}",
        "gateway_p50_ms": f"{gateway:.3f}",
        "gateway_p95_ms": f"{percentile(samples['gateway'], 95):.3f}",
        "gateway_overhead_p50_ms": f"{gateway - direct:.3f}",
        "gateway_cpu_per_call_ms": f"{gateway_cpu_s * 1000.0 / calls:.3f}",
    }
    if "gateway_policy" in samples:
        with_policy = percentile(samples["gateway_policy"], 50)
        figures["gateway_policy_p50_ms"] = f"{with_policy:.3f}"
        off, on = gateway - direct, with_policy - direct
        figures["policy_on_vs_off_ratio"] = f"{on / off:.2f}" if off > 0 else "nan"
    if "fastmcp" in samples:
        proxy = percentile(samples["fastmcp"], 50)
        figures["fastmcp_p50_ms"] = f"{proxy:.3f}"
        figures["fastmcp_p95_ms"] = f"{percentile(samples['fastmcp'], 95):.3f}"
        figures["fastmcp_proxy_overhead_p50_ms"] = f"{proxy - direct:.3f}"
        overhead = proxy - direct
        ratio = (gateway - direct) / overhead if overhead > 0 else float("nan")
        figures["overhead_vs_fastmcp_ratio"] = f"{ratio:.2f}"
    else:
        for key in ("fastmcp_p50_ms", "fastmcp_proxy_overhead_p50_ms", "overhead_vs_fastmcp_ratio"):
            figures[key] = "unavailable"
    goals = {
        "gateway_overhead_p50_ms": " (goal <= 2.0 with 2026-07-28; stretch 1.0)",
        "overhead_vs_fastmcp_ratio": " (goal <= 0.5)",
        "policy_on_vs_off_ratio": " (goal <= 1.10)",
    }
    counts = {name: len(v) for name, v in samples.items()}
    print(f"protocol {protocol}: calls per target {counts}")
    for key, value in figures.items():
        print(f"{key}{suffix}={value}")
    if plain:
        for key, value in figures.items():
            print(f"{key}={value}{goals.get(key, '')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="timed calls per target and version")
    parser.add_argument("--block", type=int, default=25, help="calls per interleaved block")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls per target")
    parser.add_argument(
        "--protocols", default=",".join(PROTOCOLS), help="comma-separated client versions"
    )
    parser.add_argument(
        "--fastmcp-backend-mode",
        default="legacy",
        help="mode of the proxy's upstream client ('legacy', 'auto' or a version)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    protocols = [p for p in args.protocols.split(",") if p]

    tmp = Path(tempfile.mkdtemp(prefix="dodo-bench-overhead-"))
    upstreams: subprocess.Popen[bytes] | None = None
    proxy: subprocess.Popen[bytes] | None = None
    gateway: JupyterGateway | None = None
    try:
        upstreams, (upstream_url, policy_url) = start_upstreams(tmp, 2)
        targets: dict[str, tuple[str, dict[str, str], str]] = {
            "direct": (upstream_url, {}, TOOL),
        }
        if importlib.util.find_spec("fastmcp") is None:
            print("fastmcp is not installed: proxy figures unavailable")
        else:
            proxy, proxy_url = start_fastmcp_proxy(
                tmp, upstream_url, backend_mode=args.fastmcp_backend_mode
            )
            targets["fastmcp"] = (proxy_url, {}, TOOL)
        gateway = JupyterGateway(
            tmp, {CATALOG_ID: upstream_url, POLICY_ID: policy_url}, {POLICY_ID: POLICY}
        )
        gateway.start()
        gateway.connect(CATALOG_ID)
        gateway.connect(POLICY_ID)
        bearer = {"Authorization": f"Bearer {gateway.gateway_token()}"}
        targets["gateway"] = (gateway.mcp_url, bearer, f"{CATALOG_ID}__{TOOL}")
        targets["gateway_policy"] = (gateway.mcp_url, bearer, f"{POLICY_ID}__{TOOL}")

        for protocol in protocols:
            samples, cpu = asyncio.run(
                measure(
                    protocol,
                    targets,
                    n=args.n,
                    block=args.block,
                    warmup=args.warmup,
                    gateway_pid=gateway.pid,
                )
            )
            report(protocol, samples, cpu, plain=protocol == "2026-07-28")
    finally:
        if gateway is not None:
            gateway.stop()
        stop_process(proxy)
        stop_process(upstreams)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
