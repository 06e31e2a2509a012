"""ASGI middleware that adds to the SDK's OAuth endpoints what they do not do themselves.

One :class:`DemoHTTPMiddleware` wraps the whole Starlette app and looks at three paths:

``/authorize``
    Records the ``resource`` and ``scope`` the client sent (:class:`DemoStats`) and,
    with RFC 9207 on, adds ``iss`` to the SDK's own *error* redirects (the provider
    adds it to the success and ``access_denied`` redirects it builds).
``/token``
    Records ``resource`` and ``scope`` per grant type, and answers ``invalid_target``
    (RFC 8707 §2) to a ``resource`` other than the MCP URL: the SDK's token handler
    does not pass ``resource`` to the provider, so the provider cannot check it.
``/mcp`` (POST)
    Step-up authorization. The SDK has one scope list for the whole endpoint
    (``AuthSettings.required_scopes``), nothing per tool. So this reads the JSON-RPC
    body, and a ``tools/call`` of a guarded tool with a token lacking its scope gets
    ``403`` and ``WWW-Authenticate: Bearer error="insufficient_scope", scope="...",
    resource_metadata="..."`` (RFC 6750 §3.1, MCP authorization "scope challenge").
    It also adds ``scope="<default scopes>"`` to the SDK's 401 challenge so a client
    knows what to ask for first.

The body is buffered (at most :data:`MAX_INSPECTED_BODY` bytes) and replayed to the
app unchanged; a larger body passes through uninspected (the tool re-checks its scope).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .provider import DemoOAuthProvider, DemoStats, _same_url

__all__ = ["MAX_INSPECTED_BODY", "DemoHTTPMiddleware"]

#: Bodies up to this size are parsed; larger ones pass through uninspected.
MAX_INSPECTED_BODY = 1024 * 1024


async def _read_body(receive: Receive) -> tuple[bytes, list[Message], bool]:
    """Read the request body; return it, the messages read, and whether it is complete."""
    messages: list[Message] = []
    body = bytearray()
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return bytes(body), messages, False
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body), messages, True
        if len(body) > MAX_INSPECTED_BODY:
            return bytes(body), messages, False


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _first(form: Mapping[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


async def _send_json(send: Send, status: int, body: dict[str, Any], **headers: str) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    raw += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _add_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    query += [(k, v) for k, v in params.items() if k not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _tool_calls(body: bytes) -> list[str]:
    """Names of the tools a JSON-RPC message (or batch) calls."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return []
    messages = parsed if isinstance(parsed, list) else [parsed]
    names = []
    for message in messages:
        if isinstance(message, dict) and message.get("method") == "tools/call":
            params = message.get("params")
            if isinstance(params, dict) and isinstance(params.get("name"), str):
                names.append(params["name"])
    return names


class DemoHTTPMiddleware:
    """Wraps the demo's Starlette app; see the module docstring for what it adds.

    Parameters
    ----------
    app:
        The SDK's streamable HTTP Starlette app.
    provider:
        The demo provider (tokens are looked up through it).
    stats:
        Where to record requests and challenges.
    mcp_path:
        The MCP endpoint's path.
    resource_metadata_url:
        The RFC 9728 metadata URL named in challenges.
    guarded_tools:
        Tool name -> the scope a token needs to call it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        provider: DemoOAuthProvider,
        stats: DemoStats,
        mcp_path: str,
        resource_metadata_url: str,
        guarded_tools: Mapping[str, str],
    ) -> None:
        self.app = app
        self.provider = provider
        self.stats = stats
        self.mcp_path = mcp_path
        self.resource_metadata_url = resource_metadata_url
        self.guarded_tools = dict(guarded_tools)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        method = scope["method"]
        if path == "/authorize":
            await self._authorize(scope, receive, send)
        elif path == "/token" and method == "POST":
            await self._token(scope, receive, send)
        elif path == self.mcp_path:
            await self._mcp(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- /authorize ----------------------------------------------------------------------

    async def _authorize(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            body, messages, _ = await _read_body(receive)
            receive = _replaying(messages, receive)
            form = parse_qs(body.decode("latin-1"))
        else:
            form = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        self.stats.record_request(
            "authorize", resource=_first(form, "resource"), scope=_first(form, "scope")
        )
        if not self.provider.advertise_iss:
            await self.app(scope, receive, send)
            return
        issuer = self.provider.issuer_url

        async def add_iss(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (302, 303):
                headers = []
                for key, value in message.get("headers", []):
                    if key.lower() == b"location":
                        location = bytes(value).decode("latin-1")
                        if not location.startswith(issuer + "/"):
                            location = _add_query(location, iss=issuer)
                        value = location.encode("latin-1")
                    headers.append((key, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, add_iss)

    # -- /token --------------------------------------------------------------------------

    async def _token(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, messages, complete = await _read_body(receive)
        receive = _replaying(messages, receive)
        if complete:
            form = parse_qs(body.decode("latin-1"))
            grant_type = _first(form, "grant_type")
            resource = _first(form, "resource")
            kind = {"authorization_code": "token", "refresh_token": "refresh"}.get(grant_type or "")
            if kind is not None:
                self.stats.record_request(kind, resource=resource, scope=_first(form, "scope"))
            if resource is not None and not _same_url(resource, self.provider.resource_url):
                await _send_json(
                    send,
                    400,
                    {
                        "error": "invalid_target",
                        "error_description": f"unknown resource {resource!r}",
                    },
                    pragma="no-cache",
                )
                return
        await self.app(scope, receive, send)

    # -- /mcp ----------------------------------------------------------------------------

    async def _mcp(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST" and self.guarded_tools:
            body, messages, complete = await _read_body(receive)
            receive = _replaying(messages, receive)
            if complete and await self._challenge_step_up(scope, body, send):
                return
        await self.app(scope, receive, self._with_scope_hint(send))

    async def _challenge_step_up(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Answer 403 ``insufficient_scope`` if ``body`` calls a guarded tool the token
        may not call; return whether it did."""
        needed = [self.guarded_tools[n] for n in _tool_calls(body) if n in self.guarded_tools]
        if not needed:
            return False
        authorization = _header(scope, b"authorization") or ""
        if not authorization.lower().startswith("bearer "):
            return False  # the SDK answers 401
        token = await self.provider.load_access_token(authorization[7:])
        if token is None or not _same_url(token.resource or "", self.provider.resource_url):
            return False  # the SDK answers 401
        missing = [s for s in needed if s not in token.scopes]
        if not missing:
            return False
        wanted = set(token.scopes) | set(needed)
        ordered = [s for s in self.provider.scopes_supported if s in wanted]
        ordered += sorted(wanted - set(ordered))
        self.stats.bump("step_up_challenges")
        description = f"this tool needs scope {' '.join(missing)}"
        challenge = (
            f'Bearer error="insufficient_scope", scope="{" ".join(ordered)}", '
            f'resource_metadata="{self.resource_metadata_url}", '
            f'error_description="{description}"'
        )
        await _send_json(
            send,
            403,
            {"error": "insufficient_scope", "error_description": description},
            www_authenticate=challenge,
        )
        return True

    def _with_scope_hint(self, send: Send) -> Send:
        """Add ``scope="<default scopes>"`` to a 401 challenge that names none."""
        hint = " ".join(self.provider.default_scopes)

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401 and hint:
                headers = []
                for key, value in message.get("headers", []):
                    if key.lower() == b"www-authenticate" and b"scope=" not in value:
                        value = bytes(value) + f', scope="{hint}"'.encode()
                    headers.append((key, value))
                message = {**message, "headers": headers}
            await send(message)

        return wrapped
