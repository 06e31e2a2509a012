"""Run the demo server inside a test: in a background thread, or on the test's own loop.

::

    with running_demo_server(DemoConfig(port=0, access_token_ttl=1)) as demo:
        httpx2.get(demo.base_url + "/.well-known/oauth-authorization-server")
        ...
        assert demo.stats.snapshot()["token_exchanges"] == 1

The socket is bound *before* the app is built, so ``port=0`` works: the kernel picks
a free port, and the metadata documents name it. The helper waits until the RFC 8414
metadata URL answers 200, and on exit asks uvicorn to stop and waits for it.

:func:`running_demo_server` suits synchronous tests and async tests alike (the
server has its own event loop in its thread); :func:`async_running_demo_server`
serves on the caller's loop instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import uvicorn

from .provider import DemoOAuthProvider, DemoStats
from .server import DemoConfig, DemoServer, build_demo_server

__all__ = ["DemoHandle", "async_running_demo_server", "running_demo_server"]

#: How long to wait for the server to answer before giving up, in seconds.
STARTUP_TIMEOUT = 10.0


@dataclass
class DemoHandle:
    """A running demo server.

    Attributes
    ----------
    url:
        The MCP endpoint (``http://127.0.0.1:<port>/mcp``).
    base_url:
        ``http://127.0.0.1:<port>``: the issuer and the root of every other route.
    config:
        The configuration it runs with (``port`` is the real one).
    server:
        The built :class:`~dodo_jupyter.demo.server.DemoServer`.
    """

    url: str
    base_url: str
    config: DemoConfig
    server: DemoServer

    @property
    def stats(self) -> DemoStats:
        """The live counters (read them with ``.snapshot()``)."""
        return self.server.stats

    @property
    def provider(self) -> DemoOAuthProvider:
        """The authorization server state (clients, tokens)."""
        return self.server.provider


def _prepare(
    config: DemoConfig | None, overrides: dict[str, Any]
) -> tuple[socket.socket, DemoHandle, uvicorn.Server]:
    config = (config or DemoConfig(port=0)).replace(**overrides)
    sock = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.listen(128)
    sock.setblocking(False)
    config = config.replace(port=sock.getsockname()[1])
    server = build_demo_server(config)
    uv = uvicorn.Server(uvicorn.Config(server, log_level="warning", lifespan="on"))
    handle = DemoHandle(url=config.mcp_url, base_url=config.base_url, config=config, server=server)
    return sock, handle, uv


def _metadata_url(handle: DemoHandle) -> str:
    return handle.base_url + "/.well-known/oauth-authorization-server"


@contextlib.contextmanager
def running_demo_server(config: DemoConfig | None = None, **overrides: Any) -> Iterator[DemoHandle]:
    """Serve the demo in a background thread for the ``with`` block.

    Parameters
    ----------
    config:
        The settings; defaults to ``DemoConfig(port=0)`` (a free port).
    **overrides:
        Fields to change on ``config``, e.g. ``auto_approve=True``.

    Raises
    ------
    RuntimeError
        If the server does not answer within :data:`STARTUP_TIMEOUT` seconds.
    """
    sock, handle, uv = _prepare(config, overrides)
    thread = threading.Thread(
        target=uv.run, kwargs={"sockets": [sock]}, name="dodo-demo-server", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with httpx2.Client(trust_env=False, timeout=1.0) as client:  # loopback: no proxies
            while True:
                try:
                    if client.get(_metadata_url(handle)).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the demo server at {handle.base_url} did not start")
                time.sleep(0.02)
        yield handle
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.asynccontextmanager
async def async_running_demo_server(
    config: DemoConfig | None = None, **overrides: Any
) -> AsyncIterator[DemoHandle]:
    """Serve the demo on the running event loop for the ``async with`` block.

    Same parameters as :func:`running_demo_server`.
    """
    sock, handle, uv = _prepare(config, overrides)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        async with httpx2.AsyncClient(trust_env=False, timeout=1.0) as client:
            while True:
                try:
                    if (await client.get(_metadata_url(handle))).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if task.done() or time.monotonic() > deadline:
                    raise RuntimeError(f"the demo server at {handle.base_url} did not start")
                await asyncio.sleep(0.02)
        yield handle
    finally:
        uv.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
        sock.close()
