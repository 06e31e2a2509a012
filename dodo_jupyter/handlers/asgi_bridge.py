"""Serving one tornado request with an ASGI app (:class:`ASGIBridge`): the gateway
handler is the ASGI server, the MCP SDK's session manager the app.

``receive()`` gives the whole body (tornado has read it), then blocks until the client
disconnects or the response is complete, and then says ``http.disconnect`` (the SDK's
SSE responses watch for it); ``send()`` writes status, headers and body chunks, flushing
each chunk so SSE streams as it is produced (and an SSE response's headers at once: a
GET notification stream may carry no event for a long time, and clients wait for the
headers to know the stream is open), and is a silent no-op once the response is finished
or the client is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tornado.httputil import split_host_and_port
from tornado.iostream import StreamClosedError
from tornado.web import HTTPError, RequestHandler

__all__ = ["ASGIApp", "ASGIBridge"]

#: An ASGI application bound to what it needs besides the three ASGI arguments.
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
#: Response headers tornado sets itself (framing) rather than copying them from the app.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection"})


class ASGIBridge(RequestHandler):
    """A request handler that can hand its request to an ASGI app (see the module doc)."""

    #: The response's content type, as the app set it.
    _content_type = "application/json"

    def initialize(self) -> None:
        #: Set when the client disconnected or the response is complete.
        self._gone = asyncio.Event()

    async def serve_asgi(self, app: ASGIApp) -> None:
        """Let ``app`` answer this request."""
        await app(self._scope(), self._receive_fn(), self._send)
        if not self._finished and not self._gone.is_set():
            if self._headers_written:
                self._finish_response()
            else:  # the app returned without answering
                raise HTTPError(500, "dodo's MCP endpoint sent no response.")

    def _scope(self) -> dict[str, Any]:
        request = self.request
        host, port = split_host_and_port(request.host)
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in request.headers.get_all()
        ]
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.version.removeprefix("HTTP/"),
            "method": request.method,
            "scheme": request.protocol,
            "path": request.path,
            "raw_path": request.path.encode("latin-1"),
            "root_path": "",
            "query_string": request.query.encode("latin-1"),
            "headers": headers,
            "client": (request.remote_ip, 0),
            "server": (host, port or (443 if request.protocol == "https" else 80)),
            "state": {},
        }

    def _receive_fn(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {
                    "type": "http.request",
                    "body": self.request.body or b"",
                    "more_body": False,
                }
            await self._gone.wait()
            return {"type": "http.disconnect"}

        return receive

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        if self._gone.is_set() or self._finished:
            return
        kind = message["type"]
        if kind == "http.response.start":
            self.set_status(int(message["status"]))
            seen: set[str] = set()
            for raw_name, raw_value in message.get("headers") or ():
                name = raw_name.decode("latin-1")
                key = name.lower()
                if key in _HOP_BY_HOP:
                    continue
                value = raw_value.decode("latin-1")
                if key == "content-type":
                    self._content_type = value
                if key in seen:
                    self.add_header(name, value)
                else:
                    seen.add(key)
                    self.set_header(name, value)
            if self._content_type.startswith("text/event-stream"):
                await self._flush()
        elif kind == "http.response.body":
            body = message.get("body") or b""
            if body:
                self.write(body)
            if message.get("more_body"):
                await self._flush()
            else:
                self._finish_response()

    async def _flush(self) -> None:
        try:
            await self.flush()
        except StreamClosedError:
            self._gone.set()

    def _finish_response(self) -> None:
        """Finish with the app's content type (a subclass may need to say it)."""
        self.finish()

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        result = super().finish(*args, **kwargs)
        self._gone.set()
        return result

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self._gone.set()
