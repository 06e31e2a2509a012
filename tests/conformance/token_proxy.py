"""A loopback proxy in front of ``/dodo/mcp`` for the server conformance suite.

``@modelcontextprotocol/conformance server --url <url>`` connects without credentials,
and the gateway answers 401 to a request that has none. This proxy forwards every
request to the gateway with ``Authorization: Bearer <dodo gateway token>`` added and
everything else as sent (``Host`` and ``Origin`` included, so Jupyter's own Host check
is what the ``dns-rebinding-protection`` scenario sees), and streams the response back
chunk by chunk (SSE stays SSE: progress notifications arrive while a call runs). When the
client goes away, the upstream response is closed, as the gateway would see it directly.

**Tool names.** The suite calls the reference server's tools by their names
(``test_simple_text``); the gateway names every tool ``<catalog id>__<tool>``
(:mod:`dodo_jupyter.gateway.naming`). With ``prefix`` set (``"conformance__"``) the
proxy plays a client that knows this: it prefixes the name of each ``tools/call``
request, and strips the prefix from the names in ``tools/list`` results (JSON or SSE
``data:`` lines). Nothing else in a message is touched.

Run standalone (``DODO_MCP_URL`` and ``DODO_MCP_TOKEN`` as kernels get them)::

    python -m tests.conformance.token_proxy [--port 8765] [--prefix conformance__]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import uvicorn
from starlette.types import Message, Receive, Scope, Send

__all__ = ["TokenProxy", "main", "running_proxy"]

#: Request headers not forwarded: hop-by-hop (RFC 9110 §7.6.1) and the length, which
#: httpx sets for the body it sends.
_DROP_REQUEST = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
    | {"proxy-authorization", "proxy-connection", "content-length", "authorization"}
)
#: Response headers not copied back: framing is the ASGI server's business.
_DROP_RESPONSE = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class TokenProxy:
    """ASGI app forwarding every request to ``target`` with a bearer token.

    Parameters
    ----------
    target:
        The gateway endpoint (``http://127.0.0.1:<port>/dodo/mcp``); every request path
        goes there.
    token:
        The dodo gateway token (``dodo_…``).
    prefix:
        Tool name prefix to add to ``tools/call`` and strip from ``tools/list`` results
        (see the module docstring); ``""`` forwards names unchanged.
    """

    def __init__(self, target: str, token: str, *, prefix: str = "") -> None:
        self.target = target
        self.prefix = prefix
        self._token = token
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # No timeout: a GET notification stream stays open as long as the client.
                self._client = httpx.AsyncClient(timeout=httpx.Timeout(None))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._client is not None
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        body, lists = self._rewrite_request(body)
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name.decode("latin-1").lower() not in _DROP_REQUEST
        ]
        headers.append(("Authorization", f"Bearer {self._token}"))
        query = scope.get("query_string", b"").decode("latin-1")
        request = self._client.build_request(
            scope["method"],
            self.target + (f"?{query}" if query else ""),
            headers=headers,
            content=body,
        )
        response = await self._client.send(request, stream=True)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (name.encode("latin-1"), value.encode("latin-1"))
                        for name, value in response.headers.multi_items()
                        if name.lower() not in _DROP_RESPONSE
                    ],
                }
            )
            chunks = response.aiter_raw()
            if lists:
                chunks = self._rewrite_lists(chunks, response.headers.get("content-type", ""))
            # Relay until the response ends or the client goes away, whichever is first.
            relay = asyncio.ensure_future(self._relay(chunks, send))
            gone = asyncio.ensure_future(_disconnected(receive))
            done, _ = await asyncio.wait({relay, gone}, return_when=asyncio.FIRST_COMPLETED)
            for task in (relay, gone):
                task.cancel()
            await asyncio.gather(relay, gone, return_exceptions=True)
            if relay in done:
                relay.result()  # a broken upstream stream is an error, not a short answer
        finally:
            await response.aclose()

    @staticmethod
    async def _relay(chunks: AsyncIterator[bytes], send: Send) -> None:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- tool names -------------------------------------------------------------------

    def _rewrite_request(self, body: bytes) -> tuple[bytes, bool]:
        """Prefix ``tools/call`` names; also says whether a ``tools/list`` was asked."""
        if not self.prefix or not body:
            return body, False
        try:
            data = json.loads(body)
        except ValueError:
            return body, False
        messages = data if isinstance(data, list) else [data]
        lists = changed = False
        for message in messages:
            if not isinstance(message, dict):
                continue
            params = message.get("params")
            if message.get("method") == "tools/list":
                lists = True
            elif message.get("method") == "tools/call" and isinstance(params, dict):
                params["name"] = f"{self.prefix}{params.get('name', '')}"
                changed = True
        return (json.dumps(data).encode() if changed else body), lists

    def _strip(self, message: Any) -> bool:
        tools = message.get("result", {}).get("tools") if isinstance(message, dict) else None
        if not isinstance(tools, list):
            return False
        for tool in tools:
            name = tool.get("name") if isinstance(tool, dict) else None
            if isinstance(name, str) and name.startswith(self.prefix):
                tool["name"] = name.removeprefix(self.prefix)
        return True

    async def _rewrite_lists(
        self, chunks: AsyncIterator[bytes], content_type: str
    ) -> AsyncIterator[bytes]:
        if "text/event-stream" not in content_type:
            body = b"".join([chunk async for chunk in chunks])
            try:
                data = json.loads(body)
            except ValueError:
                yield body
                return
            stripped = [self._strip(m) for m in (data if isinstance(data, list) else [data])]
            if any(stripped):
                body = json.dumps(data).encode()
            yield body
            return
        pending = b""
        async for chunk in chunks:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if lines:
                yield b"".join(self._rewrite_sse_line(line) + b"\n" for line in lines)
        if pending:
            yield self._rewrite_sse_line(pending)

    def _rewrite_sse_line(self, line: bytes) -> bytes:
        if not line.startswith(b"data:"):
            return line
        try:
            data = json.loads(line[5:])
        except ValueError:
            return line
        return b"data: " + json.dumps(data).encode() if self._strip(data) else line


async def _disconnected(receive: Receive) -> None:
    message: Message = {"type": ""}
    while message["type"] != "http.disconnect":
        message = await receive()


@contextlib.contextmanager
def running_proxy(target: str, token: str, *, prefix: str = "", port: int = 0) -> Iterator[str]:
    """Serve a :class:`TokenProxy` on a loopback port in a thread; yields its URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(
        uvicorn.Config(
            TokenProxy(target, token, prefix=prefix),
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="token-proxy", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the token proxy did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def main(argv: list[str] | None = None) -> None:
    """Run the proxy in the foreground (``DODO_MCP_URL``, ``DODO_MCP_TOKEN``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--prefix", default="", help="tool name prefix, like conformance__")
    args = parser.parse_args(argv)
    url, token = os.environ.get("DODO_MCP_URL"), os.environ.get("DODO_MCP_TOKEN")
    if not url or not token:
        parser.error("set DODO_MCP_URL and DODO_MCP_TOKEN (a gateway token, dodo_…)")
    with running_proxy(url, token, prefix=args.prefix, port=args.port) as proxy:
        print(f"forwarding {proxy} -> {url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
