"""A loopback proxy in front of ``/dodo/mcp`` for the server conformance suite.

``@modelcontextprotocol/conformance server --url <url>`` connects without credentials,
and the gateway answers 401 to a request that has none. This proxy forwards every
request to the gateway with ``Authorization: Bearer <dodo gateway token>`` added and
everything else as sent (``Host`` and ``Origin`` included, so Jupyter's own Host check
is what the ``dns-rebinding-protection`` scenario sees), and streams the response back
chunk by chunk (SSE stays SSE: progress notifications arrive while a call runs). When the
client goes away, the upstream response is closed, as the gateway would see it directly.

**Names and URIs.** The suite asks for the reference server's tools and prompts by
their names (``test_simple_text``) and its resources by their URIs
(``test://static-text``); the gateway names every tool and prompt
``<catalog id>__<name>`` (:mod:`dodo_jupyter.gateway.naming`) and every resource
``dodo://<catalog id>/<uri>`` (:mod:`dodo_jupyter.gateway.uris`). With ``prefix``
(``"conformance__"``) and ``uri_prefix`` (``"dodo://conformance/"``) set, the proxy
plays a client that knows this. In requests it prefixes

* the ``name`` of ``tools/call`` and ``prompts/get`` and of a ``completion/complete``
  ``ref/prompt``;
* the ``uri`` of ``resources/read``, ``resources/subscribe``, ``resources/unsubscribe``
  and of a ``completion/complete`` ``ref/resource``;

and in every response (JSON, or each SSE ``data:`` line; the ``GET`` stream too) it
strips them from the names in ``tools/list`` and ``prompts/list`` results, the ``uri``
of ``resources/list`` results and of ``resources/read`` contents, the ``uriTemplate`` of
``resources/templates/list`` results, and the ``uri`` of
``notifications/resources/updated``. Nothing else in a message is touched.

Run standalone (``DODO_MCP_URL`` and ``DODO_MCP_TOKEN`` as kernels get them)::

    python -m tests.conformance.token_proxy [--port 8765] [--prefix conformance__]
        [--uri-prefix dodo://conformance/]
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
#: Requests naming a tool or prompt (``params.name``) and a resource (``params.uri``).
_NAMING = frozenset({"tools/call", "prompts/get"})
_ADDRESSING = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})
#: Results carrying the gateway's names: result key -> (item key, whether it is a URI).
_NAMED_ITEMS = {
    "tools": ("name", False),
    "prompts": ("name", False),
    "resources": ("uri", True),
    "resourceTemplates": ("uriTemplate", True),
    "contents": ("uri", True),
}


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
        Tool and prompt name prefix to add in requests and strip from results (see the
        module docstring); ``""`` forwards names unchanged.
    uri_prefix:
        Resource URI prefix to add in requests and strip from results and
        notifications; ``""`` forwards URIs unchanged.
    """

    def __init__(self, target: str, token: str, *, prefix: str = "", uri_prefix: str = "") -> None:
        self.target = target
        self.prefix = prefix
        self.uri_prefix = uri_prefix
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
        body = self._rewrite_request(body)
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
            if self.prefix or self.uri_prefix:
                chunks = self._rewrite_response(chunks, response.headers.get("content-type", ""))
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

    # -- names and URIs ---------------------------------------------------------------

    def _rewrite_request(self, body: bytes) -> bytes:
        """The request with the suite's names and URIs made the gateway's."""
        if not (self.prefix or self.uri_prefix) or not body:
            return body
        try:
            data = json.loads(body)
        except ValueError:
            return body
        changed = False
        for message in data if isinstance(data, list) else [data]:
            params = message.get("params") if isinstance(message, dict) else None
            if not isinstance(params, dict):
                continue
            method = message.get("method")
            if method in _NAMING:
                changed |= _add_prefix(params, "name", self.prefix)
            elif method in _ADDRESSING:
                changed |= _add_prefix(params, "uri", self.uri_prefix)
            elif method == "completion/complete" and isinstance(ref := params.get("ref"), dict):
                if ref.get("type") == "ref/prompt":
                    changed |= _add_prefix(ref, "name", self.prefix)
                elif ref.get("type") == "ref/resource":
                    changed |= _add_prefix(ref, "uri", self.uri_prefix)
        return json.dumps(data).encode() if changed else body

    def _strip(self, message: Any) -> bool:
        """Strip the gateway's names and URIs from one message; whether it changed."""
        if not isinstance(message, dict):
            return False
        if message.get("method") == "notifications/resources/updated":
            return _strip_prefix(message.get("params"), "uri", self.uri_prefix)
        result = message.get("result")
        if not isinstance(result, dict):
            return False
        changed = False
        for key, (item_key, is_uri) in _NAMED_ITEMS.items():
            items = result.get(key)
            if isinstance(items, list):
                prefix = self.uri_prefix if is_uri else self.prefix
                for item in items:
                    changed |= _strip_prefix(item, item_key, prefix)
        return changed

    async def _rewrite_response(
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


def _add_prefix(item: dict[str, Any], key: str, prefix: str) -> bool:
    value = item.get(key)
    if not prefix or not isinstance(value, str):
        return False
    item[key] = prefix + value
    return True


def _strip_prefix(item: Any, key: str, prefix: str) -> bool:
    value = item.get(key) if isinstance(item, dict) else None
    if not prefix or not isinstance(value, str) or not value.startswith(prefix):
        return False
    item[key] = value.removeprefix(prefix)
    return True


async def _disconnected(receive: Receive) -> None:
    message: Message = {"type": ""}
    while message["type"] != "http.disconnect":
        message = await receive()


@contextlib.contextmanager
def running_proxy(
    target: str, token: str, *, prefix: str = "", uri_prefix: str = "", port: int = 0
) -> Iterator[str]:
    """Serve a :class:`TokenProxy` on a loopback port in a thread; yields its URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(
        uvicorn.Config(
            TokenProxy(target, token, prefix=prefix, uri_prefix=uri_prefix),
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
    parser.add_argument(
        "--prefix", default="", help="tool and prompt name prefix, like conformance__"
    )
    parser.add_argument(
        "--uri-prefix", default="", help="resource URI prefix, like dodo://conformance/"
    )
    args = parser.parse_args(argv)
    url, token = os.environ.get("DODO_MCP_URL"), os.environ.get("DODO_MCP_TOKEN")
    if not url or not token:
        parser.error("set DODO_MCP_URL and DODO_MCP_TOKEN (a gateway token, dodo_…)")
    with running_proxy(
        url, token, prefix=args.prefix, uri_prefix=args.uri_prefix, port=args.port
    ) as proxy:
        print(f"forwarding {proxy} -> {url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
