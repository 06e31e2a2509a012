"""Peers for OAuth tests: a person clicking "Approve", and a misbehaving MCP/OAuth server.

Every server here listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from tornado import httpserver, web
from tornado.netutil import bind_sockets

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


async def consent(authorize_url: str, decision: str = "approve") -> str:
    """Do what a person does in the popup: open the authorization URL, click the
    decision on the demo's consent page, and return where the browser is sent next
    (the callback URL with ``code``, ``state`` and ``iss``)."""
    import html

    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as client:
        response = await client.get(authorize_url)
        while (
            response.status_code in (302, 303, 307) and "/consent" in response.headers["location"]
        ):
            response = await client.get(httpx.URL(authorize_url).join(response.headers["location"]))
        if response.status_code in (302, 303):
            return response.headers["location"]  # auto-approved
        assert response.status_code == 200, response.text
        assert "Approve" in response.text
        form = {k: html.unescape(v) for k, v in _HIDDEN.findall(response.text)}
        form["decision"] = decision
        action = re.search(r'<form method="post" action="([^"]+)"', response.text)
        assert action is not None
        posted = await client.post(httpx.URL(authorize_url).join(action.group(1)), data=form)
        assert posted.status_code in (302, 303), posted.text
        return posted.headers["location"]


def callback_query(callback_url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}


class FakeServer:
    """A configurable MCP server + authorization server that gets things wrong on purpose.

    ``routes`` maps a path to a handler function ``(request) -> (status, headers, body)``
    or to a JSON-able value served with 200; ``delay`` maps a path to seconds of delay.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Any] = {}
        self.delay: dict[str, float] = {}
        self.requests: list[tuple[str, str]] = []
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._server = httpserver.HTTPServer(web.Application([(r"/.*", _Handler, {"fake": self})]))
        self._server.add_sockets(sockets)

    @property
    def mcp_url(self) -> str:
        return self.base + "/mcp"

    def standard(self, **as_metadata: Any) -> FakeServer:
        """A well-behaved setup: 401 from /mcp, resource metadata, AS metadata, DCR."""
        base = self.base
        self.routes["/mcp"] = lambda req: (
            401,
            {
                "WWW-Authenticate": f'Bearer resource_metadata="{base}/.well-known/'
                'oauth-protected-resource/mcp"'
            },
            b"",
        )
        self.routes["/.well-known/oauth-protected-resource/mcp"] = {
            "resource": self.mcp_url,
            "authorization_servers": [base],
        }
        self.routes["/.well-known/oauth-authorization-server"] = {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "registration_endpoint": f"{base}/register",
            "code_challenge_methods_supported": ["S256"],
            "response_types_supported": ["code"],
            **as_metadata,
        }
        self.routes["/register"] = lambda req: (
            201,
            {},
            json.dumps(
                {
                    "client_id": "fake-client",
                    "client_secret": "fake-secret",
                    "redirect_uris": json.loads(req.body)["redirect_uris"],
                }
            ).encode(),
        )
        return self

    def stop(self) -> None:
        self._server.stop()


class _Handler(web.RequestHandler):
    def initialize(self, fake: FakeServer) -> None:
        self.fake = fake

    def check_xsrf_cookie(self) -> None:
        return None

    async def _serve(self) -> None:
        path = self.request.path
        self.fake.requests.append((self.request.method or "", path))
        if path in self.fake.delay:
            await asyncio.sleep(self.fake.delay[path])
        route = self.fake.routes.get(path)
        if route is None:
            self.set_status(404)
            self.finish(b"not here")
            return
        if callable(route):
            status, headers, body = route(self.request)
        else:
            status, headers, body = (
                200,
                {"Content-Type": "application/json"},
                json.dumps(route).encode(),
            )
        self.set_status(status)
        for key, value in headers.items():
            self.set_header(key, value)
        self.finish(body)

    get = post = _serve  # type: ignore[assignment]


Route = Callable[[Any], tuple[int, dict[str, str], bytes]]
