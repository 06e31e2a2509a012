#!/usr/bin/env python
"""Shared harness of the gateway benchmarks (gateway_overhead.py, fanout.py, load.py).

Pieces, all on 127.0.0.1:

* **upstream MCP servers**: ``python bench/_mcp_bench.py upstream --ports P1,P2,...`` runs
  one MCP SDK ``MCPServer`` per port (uvicorn, one thread each) in a child process. Tools:
  ``echo(text)`` (the trivial tool), and ``invalidate()``, which sends
  ``notifications/tools/list_changed`` on its own response stream (so a client's cached
  tool list is dropped deterministically, before the result arrives). An ASGI middleware
  (:class:`ToolsListDelay`) delays ``tools/list`` by ``--list-delay-ms`` and counts the
  ``tools/list`` requests it saw; ``GET /stats`` answers ``{"tools_list": n}``.
* **a fastmcp proxy**: ``python bench/_mcp_bench.py fastmcp-proxy --upstream URL --port P``
  connects ONE fastmcp ``Client`` to the upstream and serves ``create_proxy(client)``: the
  proxy reuses that connected client for every request, fastmcp's fastest configuration
  (the default builds a fresh backend client per request).
* **a Jupyter server with dodo** (:class:`JupyterGateway`): a ``jupyter server``
  subprocess whose temp config lists the upstreams as catalog entries (``auth_type:
  "none"``, ``allow_insecure_loopback``), other server extensions disabled, every Jupyter
  directory in the temp dir. :meth:`JupyterGateway.connect` runs ``start-auth`` for an
  entry; :meth:`JupyterGateway.gateway_token` mints a gateway token.
* **MCP clients** (:func:`open_mcp`): ``"2025-11-25"`` opens an SDK ``ClientSession``
  (initialize handshake, ``Mcp-Session-Id``); ``"2026-07-28"`` an SDK ``mcp.Client`` with
  ``mode="auto"`` (``server/discover``, then stateless requests; its response cache off).
  Both expose ``list_tools()`` and ``call_tool(name, arguments)``.

Nothing here measures anything; the benchmarks do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer

REPO_ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
#: Installed server extensions turned off so only jupyter_server and dodo load.
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
READY_TIMEOUT_S = 60.0
PROTOCOLS = ("2025-11-25", "2026-07-28")

__all__ = [
    "OTHER_EXTENSIONS",
    "PROTOCOLS",
    "JupyterGateway",
    "McpClient",
    "cpu_seconds",
    "exit_cleanly_on_sigterm",
    "free_port",
    "open_mcp",
    "percentile",
    "rss_mb",
    "spawn",
    "start_fastmcp_proxy",
    "start_upstream_processes",
    "start_upstreams",
    "stop_process",
    "wait_http",
]


# -- small helpers ------------------------------------------------------------------------


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM (``timeout``, ``kill``) into SystemExit, so a benchmark's ``finally``
    blocks still stop the servers it started instead of leaving them running."""

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank on sorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("config", "data", "runtime"):
        (tmp / name).mkdir(exist_ok=True)
    env["JUPYTER_CONFIG_DIR"] = str(tmp / "config")
    env["JUPYTER_DATA_DIR"] = str(tmp / "data")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    env["HOME"] = str(tmp)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    for name in list(env):
        if name.startswith("DODO_"):
            env.pop(name)
    return env


def spawn(cmd: list[str], tmp: Path, log_name: str) -> subprocess.Popen[bytes]:
    with open(tmp / log_name, "wb") as log:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            cmd,
            env=child_env(tmp),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_http(
    url: str, proc: subprocess.Popen[bytes], *, headers: dict[str, str] | None = None
) -> None:
    """Poll ``url`` until it answers 200 (the child must stay alive meanwhile)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(headers=headers, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited early with code {proc.returncode}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer 200 within {READY_TIMEOUT_S:.0f} s")


# -- upstream MCP servers (child process) ------------------------------------------------


class ToolsListDelay:
    """ASGI middleware: count ``tools/list`` requests and delay each by ``delay`` seconds;
    ``GET /stats`` answers the count as JSON."""

    def __init__(self, app: Any, delay: float) -> None:
        self.app = app
        self.delay = delay
        self.tools_list = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/stats":
            body = json.dumps({"tools_list": self.tools_list}).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        messages: list[dict[str, Any]] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        if b'"tools/list"' in body:
            self.tools_list += 1
            if self.delay:
                await asyncio.sleep(self.delay)

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _upstream_app(name: str, delay: float) -> ToolsListDelay:
    server = MCPServer(name)

    @server.tool()
    def echo(text: str) -> str:
        """Return text unchanged."""
        return text

    @server.tool()
    async def invalidate(ctx: Context) -> str:
        """Tell this session's client that the tool list changed."""
        await ctx.session.send_notification(
            types.ToolListChangedNotification(), related_request_id=ctx.request_id
        )
        return "ok"

    return ToolsListDelay(server.streamable_http_app(host="127.0.0.1"), delay)


def _serve_upstreams(ports: list[int], delay: float) -> None:
    import uvicorn

    servers: list[uvicorn.Server] = []
    threads: list[threading.Thread] = []
    for i, port in enumerate(ports):
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto is
        # IPPROTO_TCP, and accepted sockets copy the listener's. With socket.socket()'s
        # proto 0, Nagle holds each JSON body behind its headers for a delayed ACK (40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(256)
        config = uvicorn.Config(
            _upstream_app(f"up{i}", delay),
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append(server)
        threads.append(thread)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.should_exit = True
    for thread in threads:
        thread.join(timeout=5)


def start_upstreams(
    tmp: Path, count: int, *, list_delay_ms: float = 0.0, log_name: str = "upstreams.log"
) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start ``count`` upstream MCP servers in one child process; their ``/mcp`` URLs."""
    ports = [free_port() for _ in range(count)]
    cmd = [
        sys.executable,
        str(HERE),
        "upstream",
        "--ports",
        ",".join(map(str, ports)),
        "--list-delay-ms",
        str(list_delay_ms),
    ]
    proc = spawn(cmd, tmp, log_name)
    try:
        for port in ports:
            wait_http(f"http://127.0.0.1:{port}/stats", proc)
    except BaseException:
        stop_process(proc)
        raise
    return proc, [f"http://127.0.0.1:{port}/mcp" for port in ports]


def start_upstream_processes(
    tmp: Path, count: int, *, list_delay_ms: float = 0.0
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """Start ``count`` upstream MCP servers, each in its own child process (as separate
    servers would be: one's work does not wait for another's GIL); their ``/mcp`` URLs."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for i in range(count):
            proc, (url,) = start_upstreams(
                tmp, 1, list_delay_ms=list_delay_ms, log_name=f"upstream-{i}.log"
            )
            procs.append(proc)
            urls.append(url)
    except BaseException:
        for proc in procs:
            stop_process(proc)
        raise
    return procs, urls


@functools.cache
def _stats_client() -> httpx.Client:
    """One client for the upstreams' counters: ``httpx.get`` would build a TLS context
    (about 20 ms of CPU, and garbage) for every question."""
    return httpx.Client(timeout=5.0)


def upstream_tools_list_count(url: str) -> int:
    stats = _stats_client().get(url.removesuffix("/mcp") + "/stats").json()
    return int(stats["tools_list"])


# -- fastmcp proxy (child process) ---------------------------------------------------------


async def _serve_fastmcp_proxy(upstream: str, port: int, backend_mode: str) -> None:
    from fastmcp import Client as FastClient
    from fastmcp.server import create_proxy

    async with FastClient(upstream, mode=backend_mode) as backend:
        proxy = create_proxy(backend, name="fastmcp-proxy")
        await proxy.run_http_async(
            show_banner=False, host="127.0.0.1", port=port, log_level="warning"
        )


def start_fastmcp_proxy(
    tmp: Path, upstream: str, *, backend_mode: str = "legacy"
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the fastmcp proxy child; its ``/mcp`` URL. Raises when fastmcp is missing."""
    port = free_port()
    cmd = [
        sys.executable,
        str(HERE),
        "fastmcp-proxy",
        "--upstream",
        upstream,
        "--port",
        str(port),
        "--backend-mode",
        backend_mode,
    ]
    proc = spawn(cmd, tmp, "fastmcp-proxy.log")
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (tmp / "fastmcp-proxy.log").read_text(errors="replace")[-600:]
                raise RuntimeError(f"the fastmcp proxy exited ({proc.returncode}): {tail}")
            try:
                httpx.get(url, timeout=1.0)  # any answer means it listens
                return proc, url
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the fastmcp proxy did not start")
    except BaseException:
        stop_process(proc)
        raise


# -- Jupyter server with dodo ---------------------------------------------------------------


class JupyterGateway:
    """A ``jupyter server`` subprocess with dodo and the given upstreams in its catalog.

    Parameters
    ----------
    tmp:
        The temp dir (store, config, logs, Jupyter dirs).
    upstreams:
        ``{catalog id: MCP URL}``; each becomes an ``auth_type: "none"`` entry.
    policies:
        ``{catalog id: tool_policy}`` for entries that have one (the others are open).
    settings:
        More ``DodoApp`` settings (they win over the ones set here).
    """

    def __init__(
        self,
        tmp: Path,
        upstreams: dict[str, str],
        policies: dict[str, dict[str, Any]] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.tmp = tmp
        self.policies = policies or {}
        self.settings = settings or {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/"
        self.mcp_url = f"{self.base}dodo/mcp"
        self.jupyter_token = secrets.token_hex(24)
        self.upstreams = upstreams
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"token {self.jupyter_token}"},
            timeout=30.0,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _config(self) -> Path:
        extensions: dict[str, bool] = {name: False for name in OTHER_EXTENSIONS}
        extensions["dodo_jupyter"] = True
        catalog = [
            {
                "id": cid,
                "url": url,
                "display_name": cid,
                "auth_type": "none",
                **({"tool_policy": self.policies[cid]} if cid in self.policies else {}),
            }
            for cid, url in self.upstreams.items()
        ]
        config = {
            "ServerApp": {"jpserver_extensions": extensions, "open_browser": False},
            "DodoApp": {
                "db_url": f"sqlite:///{self.tmp / 'dodo.sqlite'}",
                "key_file": str(self.tmp / "crypt.key"),
                "default_catalog": False,
                "allow_insecure_loopback": True,
                "kernel_access": False,
                "catalog": catalog,
                **self.settings,
            },
        }
        path = self.tmp / "server_config.json"
        path.write_text(json.dumps(config, indent=2))
        return path

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--allow-root",
            "--no-browser",
            f"--config={self._config()}",
            "--ServerApp.ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.jupyter_token}",
            f"--ServerApp.root_dir={self.tmp}",
        ]
        self.proc = spawn(cmd, self.tmp, "jupyter-server.log")
        headers = {"Authorization": f"token {self.jupyter_token}"}
        wait_http(f"{self.base}api/status", self.proc, headers=headers)
        wait_http(f"{self.base}dodo/api/mcp-catalog", self.proc, headers=headers)

    def log_tail(self, chars: int = 2000) -> str:
        return (self.tmp / "jupyter-server.log").read_text(errors="replace")[-chars:]

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(path, json=body)
        if response.status_code == 503:  # seen once at the first start-auth: say so, retry once
            print(f"note: POST {path} answered 503; retrying once. Server log tail:")
            print(self.log_tail())
            time.sleep(0.5)
            response = self.http.post(path, json=body)
        if response.status_code >= 400:
            raise RuntimeError(
                f"POST {path} answered {response.status_code}: {response.text}\n{self.log_tail()}"
            )
        return response.json()

    def connect(self, catalog_id: str) -> str:
        """``start-auth`` for an entry; the connection id (it must connect at once)."""
        result = self._post("dodo/api/mcp/start-auth", {"catalog_id": catalog_id})
        if result.get("state") != "connected":
            raise RuntimeError(f"{catalog_id!r} did not connect: {result}")
        return str(result["connection_id"])

    def disconnect(self, connection_id: str) -> None:
        self._post("dodo/api/mcp/delete-auth", {"connection_id": connection_id})

    def gateway_token(self, label: str = "bench") -> str:
        return str(self._post("dodo/api/user/mcp-tokens", {"label": label})["token"])

    def stop(self) -> None:
        self.http.close()
        stop_process(self.proc)


# -- MCP clients ------------------------------------------------------------------------------


class McpClient(Protocol):
    """What the benchmarks use of an SDK ``ClientSession`` or ``mcp.Client``."""

    async def list_tools(self) -> Any: ...

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> Any: ...


@contextlib.asynccontextmanager
async def open_mcp(
    url: str, protocol: str, headers: dict[str, str] | None = None, *, http_timeout: float = 30.0
) -> AsyncIterator[McpClient]:
    """An MCP client speaking ``protocol`` ("2025-11-25" or "2026-07-28") to ``url``."""
    import httpx2
    from mcp import Client, ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers=headers or {}, timeout=http_timeout) as http:
        if protocol == "2025-11-25":
            async with (
                streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                result = await session.initialize()
                if result.protocol_version != protocol:
                    raise RuntimeError(f"{url} negotiated {result.protocol_version!r}")
                yield session
        elif protocol == "2026-07-28":
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, mode="auto", cache=None) as client:
                if client.session.protocol_version != protocol:
                    raise RuntimeError(f"{url} negotiated {client.session.protocol_version!r}")
                yield client
        else:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")


def tool_text(result: Any) -> str:
    """The text of a tool result; raises on an ``isError`` result."""
    text = "".join(getattr(block, "text", "") for block in result.content)
    if result.is_error:
        raise RuntimeError(f"tool error: {text[:300]}")
    return text


# -- child entry points -------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Child processes of the gateway benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upstream", help="serve upstream MCP servers")
    up.add_argument("--ports", required=True, help="comma-separated ports")
    up.add_argument("--list-delay-ms", type=float, default=0.0)
    proxy = sub.add_parser("fastmcp-proxy", help="serve a fastmcp proxy of one upstream")
    proxy.add_argument("--upstream", required=True)
    proxy.add_argument("--port", type=int, required=True)
    proxy.add_argument("--backend-mode", default="legacy")
    args = parser.parse_args(argv)
    if args.command == "upstream":
        _serve_upstreams([int(p) for p in args.ports.split(",")], args.list_delay_ms / 1000.0)
    else:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_fastmcp_proxy(args.upstream, args.port, args.backend_mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
