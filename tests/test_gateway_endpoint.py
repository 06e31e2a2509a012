"""The gateway's MCP endpoint at {base_url}dodo/mcp, on a real Jupyter server's port,
driven by the MCP SDK's own clients (2025-11-25 sessions and 2026-07-28 stateless), with
a fake gateway service behind it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from tornado.httpclient import HTTPClientError
from tornado.httputil import HTTPHeaders

from dodo_jupyter import tokens
from dodo_jupyter.exceptions import Unavailable, UpstreamError
from dodo_jupyter.gateway.caller import (
    HOP_HEADER,
    HOP_META_KEY,
    Caller,
    ProgressFn,
    current_caller,
)
from dodo_jupyter.gateway.endpoint import GatewayEndpoint
from dodo_jupyter.gateway.host import EndpointHost
from dodo_jupyter.gateway.live import LiveSessions
from dodo_jupyter.handlers import gateway as gateway_handlers
from dodo_jupyter.runtime import DodoRuntime

from .hub_identity import hub_server_config, hub_user
from .mcp_peers import INITIALIZE

SERVICE_TOKEN = "service-token-for-tests-0123456789"
OTHER = "someone-else"
MCP_ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _tool(name: str) -> types.Tool:
    return types.Tool(
        name=name,
        description=f"{name} (fake)",
        input_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
    )


class FakeGateway:
    """The GatewayService interface: per-user tools, one reporting progress, one failing."""

    def __init__(self, owner: str) -> None:
        self.tools = {
            owner: [
                _tool("fake__count"),
                _tool("fake__boom"),
                _tool("fake__bug"),
                _tool("fake__wait"),
            ],
            OTHER: [_tool("theirs__only")],
        }
        self.calls: list[tuple[str, str, dict[str, Any], Caller | None]] = []
        self.schema_lookups: list[tuple[str, str]] = []
        self.listings = 0
        self.waiting = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.live = LiveSessions(lambda: 0)

    async def list_tools(self, username: str) -> list[types.Tool]:
        self.listings += 1
        return list(self.tools.get(username, []))

    async def call_tool(
        self,
        username: str,
        name: str,
        arguments: dict[str, Any],
        progress: ProgressFn | None = None,
        context: Any = None,
        relay: Any = None,
    ) -> types.CallToolResult:
        self.calls.append((username, name, arguments, current_caller()))
        if name not in {t.name for t in self.tools.get(username, [])}:
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=f"No tool named {name!r}")],
                is_error=True,
            )
        if name == "fake__boom":
            raise UpstreamError("weather: the server answered 500; try again later.")
        if name == "fake__bug":
            raise RuntimeError("secret-internal-detail")
        if name == "fake__wait":
            self.waiting.set()
            if progress is not None:
                await progress(1.0, None, "waiting")
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        n = int(arguments.get("n", 3))
        for i in range(1, n + 1):
            if progress is not None:
                await progress(float(i), float(n), f"step {i}")
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"counted {n}")])

    def input_schema(self, username: str, name: str) -> dict[str, Any] | None:
        self.schema_lookups.append((username, name))
        for tool in self.tools.get(username, []):
            if tool.name == name:
                return dict(tool.input_schema)
        return None


@pytest.fixture
def dodo_config(dodo_config: dict[str, Any]) -> dict[str, Any]:
    return {**dodo_config, "service_token": SERVICE_TOKEN}


@pytest.fixture
def runtime_(jp_serverapp: Any) -> DodoRuntime:
    runtime: DodoRuntime = jp_serverapp.web_app.settings["dodo"]
    return runtime


@pytest.fixture
def gateway(runtime_: DodoRuntime, jp_asyncio_loop: Any) -> Iterator[FakeGateway]:
    """The fake in place of the runtime's gateway service (put back afterwards)."""
    jp_asyncio_loop.run_until_complete(runtime_.mcp_ready())
    real = runtime_.gateway
    fake = FakeGateway(runtime_.resolver.owner)
    runtime_.gateway = fake  # type: ignore[assignment]
    yield fake
    runtime_.gateway = real


@pytest.fixture
def url(http_server_client: Any, jp_http_port: int, jp_base_url: str) -> str:
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}dodo/mcp"


async def _token(runtime: DodoRuntime, username: str | None = None) -> str:
    await runtime.ready()
    return (await runtime.tokens.create(username or runtime.resolver.owner, "test")).token


@contextlib.asynccontextmanager
async def legacy(url: str, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    """A 2025-11-25 session (initialize handshake, Mcp-Session-Id)."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def modern(url: str, headers: dict[str, str]) -> AsyncIterator[Client]:
    """The 2026-07-28 stateless protocol (no handshake, no session)."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10) as http,
        Client(streamable_http_client(url, http_client=http), mode="2026-07-28") as client,
    ):
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _post(url: str, body: Any, headers: dict[str, str], **kwargs: Any) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(url, content=json.dumps(body), headers={**MCP_ACCEPT, **headers})


def _sse_json(response: httpx2.Response) -> Any:
    """The JSON-RPC message of a (single-message) SSE or JSON response."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    data = [d for d in data if d]
    assert data, response.text
    return json.loads(data[-1])


def _who(caller: Caller | None) -> tuple[str, str, int] | None:
    """Whom a call acted for, how they authenticated, and the hop count."""
    return None if caller is None else (caller.username, caller.via, caller.hop)


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


# -- both protocol versions --------------------------------------------------------------


async def test_legacy_session_lists_and_calls(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway
) -> None:
    token = await _token(runtime_)
    async with legacy(url, _bearer(token)) as session:
        listed = await session.list_tools()
        assert [t.name for t in listed.tools] == [
            "fake__count",
            "fake__boom",
            "fake__bug",
            "fake__wait",
        ]

        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        result = await session.call_tool("fake__count", {"n": 3}, progress_callback=on_progress)
        assert not result.is_error and _text(result) == "counted 3"
        assert seen == [(1.0, 3.0, "step 1"), (2.0, 3.0, "step 2"), (3.0, 3.0, "step 3")]

        boom = await session.call_tool("fake__boom", {})
        assert boom.is_error
        assert _text(boom) == "fake__boom: weather: the server answered 500; try again later."
        bug = await session.call_tool("fake__bug", {})
        assert bug.is_error and "server log" in _text(bug)
        assert "secret-internal-detail" not in _text(bug)

    owner = runtime_.resolver.owner
    assert [(u, n) for u, n, _, _ in gateway.calls] == [
        (owner, "fake__count"),
        (owner, "fake__boom"),
        (owner, "fake__bug"),
    ]
    assert _who(gateway.calls[0][3]) == (owner, "token", 0)


async def test_stateless_2026_lists_and_calls(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway
) -> None:
    token = await _token(runtime_)
    async with modern(url, _bearer(token)) as client:
        assert client.session.protocol_version == "2026-07-28"
        listed = await client.list_tools()
        assert [t.name for t in listed.tools] == [
            "fake__count",
            "fake__boom",
            "fake__bug",
            "fake__wait",
        ]

        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        listings = gateway.listings
        result = await client.call_tool("fake__count", {"n": 2}, progress_callback=on_progress)
        assert _text(result) == "counted 2" and seen == [1.0, 2.0]
        boom = await client.call_tool("fake__boom", {"n": 1})
        assert boom.is_error and "answered 500" in _text(boom)
        # The SDK checks arguments against the cached schema, not a fresh tools/list.
        assert gateway.listings == listings
        assert (runtime_.resolver.owner, "fake__count") in gateway.schema_lookups


def _call_request(name: str, arguments: dict[str, Any], **meta: Any) -> tuple[dict[str, str], Any]:
    """The headers and body of a 2026-07-28 ``tools/call`` without a progress token (of
    ``tools/list`` when ``name`` is empty)."""
    headers = {
        **MCP_ACCEPT,
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call" if name else "tools/list",
    }
    if name:
        headers["Mcp-Name"] = name
    envelope = {
        types.PROTOCOL_VERSION_META_KEY: "2026-07-28",
        types.CLIENT_CAPABILITIES_META_KEY: {},
        types.CLIENT_INFO_META_KEY: {"name": "test", "version": "1"},
    }
    params: dict[str, Any] = {"_meta": {**envelope, **meta}}
    if name:
        params.update(name=name, arguments=arguments)
    body = {"jsonrpc": "2.0", "id": "call-1", "method": headers["Mcp-Method"], "params": params}
    return headers, body


async def test_the_json_and_sse_forms_answer_alike(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls and listings without a progress token take the SDK's JSON form; the
    SSE-capable form answers each of them the same way."""
    token = await _token(runtime_)
    endpoint = await runtime_.endpoint.endpoint()
    requests = [
        _call_request("fake__count", {"n": 2}),
        _call_request("fake__boom", {}),
        _call_request("fake__bug", {}),
        _call_request("theirs__only", {}),  # another user's tool: "No tool named"
        _call_request("fake__count", {"n": 1}, **{HOP_META_KEY: 4}),  # a gateway loop
        _call_request("", {}),  # tools/list
        _call_request("", {}, **{HOP_META_KEY: 4}),  # a listing in a loop: a JSON-RPC error
    ]
    answers: list[tuple[int, str, Any]] = []
    for headers, body in requests:
        raw = json.dumps(body)
        assert GatewayEndpoint.answers_in_json(HTTPHeaders(headers), raw.encode())
        both = []
        for in_json in (True, False):
            if not in_json:
                monkeypatch.setattr(endpoint, "answers_in_json", lambda *_: False)
            async with httpx2.AsyncClient(timeout=10) as http:
                response = await http.post(url, content=raw, headers={**headers, **_bearer(token)})
            monkeypatch.undo()
            both.append(
                (response.status_code, response.headers["content-type"], _sse_json(response))
            )
        assert both[0] == both[1], body
        assert both[0][1].startswith("application/json") and both[0][2]["id"] == "call-1"
        answers.append(both[0])
    *called, (list_status, _, listed), (loop_status, _, looped) = answers
    texts = [message["result"]["content"][0]["text"] for _, _, message in called]
    assert all(status == 200 for status, _, _ in called)
    assert "secret-internal-detail" not in json.dumps(texts)
    assert "Gateway loop" in texts[-1]  # answered without calling the gateway
    assert len(gateway.calls) == 2 * (len(called) - 1)
    assert list_status == 200 and listed["result"]["resultType"] == "complete"
    assert [t["name"] for t in listed["result"]["tools"]][:1] == ["fake__count"]
    assert loop_status == 400 and "Gateway loop" in looped["error"]["message"]


@pytest.mark.parametrize(
    ("change", "in_json"),
    [
        ({}, True),
        ({"Accept": "*/*"}, True),
        ({"Accept": "application/json"}, False),  # the SSE-capable form answers 406
        ({"MCP-Protocol-Version": "2025-11-25"}, False),
        ({"MCP-Protocol-Version": None}, False),
        ({"body": {"progressToken": "p"}}, False),
    ],
)
def test_which_requests_take_the_json_form(change: dict[str, Any], in_json: bool) -> None:
    headers, body = _call_request("fake__count", {"n": 1})
    if "body" in change:
        body["params"]["_meta"].update(change.pop("body"))
    for name, value in change.items():
        headers.pop(name, None)
        if value is not None:
            headers[name] = value
    raw = json.dumps(body).encode()
    assert GatewayEndpoint.answers_in_json(HTTPHeaders(headers), raw) is in_json


async def test_a_json_form_call_is_cancelled_when_its_client_goes_away(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway
) -> None:
    token = await _token(runtime_)
    headers, body = _call_request("fake__wait", {})
    async with httpx2.AsyncClient(timeout=10) as http:
        call = asyncio.ensure_future(
            http.post(url, content=json.dumps(body), headers={**headers, **_bearer(token)})
        )
        await asyncio.wait_for(gateway.waiting.wait(), 5)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
    await asyncio.wait_for(gateway.cancelled.wait(), 5)
    # The endpoint still answers calls afterwards.
    headers, body = _call_request("fake__count", {"n": 1})
    response = await _post(url, body, {**headers, **_bearer(token)})
    assert _sse_json(response)["result"]["content"][0]["text"] == "counted 1"


async def test_client_going_away_cancels_the_call(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway
) -> None:
    token = await _token(runtime_)
    async with modern(url, _bearer(token)) as client:
        started = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            started.set()

        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await client.call_tool("fake__wait", {}, progress_callback=on_progress)

            tg.start_soon(call)
            with anyio.fail_after(5):
                await started.wait()
            tg.cancel_scope.cancel()
        with anyio.fail_after(5):
            await gateway.cancelled.wait()
        # The endpoint still serves this client afterwards.
        assert _text(await client.call_tool("fake__count", {"n": 1})) == "counted 1"


async def test_users_see_only_their_own_tools(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway
) -> None:
    token = await _token(runtime_, OTHER)
    async with legacy(url, _bearer(token)) as session:
        assert [t.name for t in (await session.list_tools()).tools] == ["theirs__only"]
        result = await session.call_tool("fake__count", {"n": 1})
        assert result.is_error
    assert gateway.calls[-1][0] == OTHER


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer dodo_0123456789abcdef_" + "x" * 43},
        {"Authorization": "Bearer dodo_not-a-token"},
        {"Authorization": "Bearer something-else"},
        {"Authorization": f"Bearer {SERVICE_TOKEN}x"},
    ],
)
async def test_unauthenticated_gets_401(
    url: str, gateway: FakeGateway, headers: dict[str, str]
) -> None:
    response = await _post(url, INITIALIZE, headers)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="dodo"')
    presented = headers.get("Authorization", "").startswith("Bearer dodo_")
    assert ('error="invalid_token"' in challenge) == presented
    body = response.json()
    assert body["error"] == "unauthorized" and "Bearer dodo_" in body["message"]
    assert gateway.calls == []


async def test_cors_preflight_needs_no_credentials(url: str, gateway: FakeGateway) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.options(url, headers={"Access-Control-Request-Method": "POST"})
    assert response.status_code in (200, 204)


async def test_service_token_acts_as_owner_and_is_logged(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway, jp_serverapp: Any
) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep(level=logging.INFO)
    jp_serverapp.log.addHandler(keep)
    try:
        async with modern(url, _bearer(SERVICE_TOKEN)) as client:
            result = await client.call_tool("fake__count", {"n": 1})
    finally:
        jp_serverapp.log.removeHandler(keep)
    assert _text(result) == "counted 1"
    owner = runtime_.resolver.owner
    assert _who(gateway.calls[-1][3]) == (owner, "service", 0)
    lines = [r.getMessage() for r in records if "service token" in r.getMessage()]
    assert lines and all(SERVICE_TOKEN not in line for line in lines)
    assert repr(owner) in lines[0]


async def test_jupyter_token_is_the_owner(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway, jp_serverapp: Any
) -> None:
    headers = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    async with legacy(url, headers) as session:
        result = await session.call_tool("fake__count", {"n": 1})
    assert _text(result) == "counted 1"
    assert _who(gateway.calls[-1][3]) == (runtime_.resolver.owner, "jupyter", 0)


async def test_last_used_and_activity_are_recorded(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway, jp_serverapp: Any
) -> None:
    token = await _token(runtime_)
    settings = jp_serverapp.web_app.settings
    before = settings.get("api_last_activity")
    (info,) = await runtime_.tokens.list(runtime_.resolver.owner)
    assert info["last_used_at"] is None
    async with modern(url, _bearer(token)) as client:
        await client.list_tools()
    (info,) = await runtime_.tokens.list(runtime_.resolver.owner)
    assert info["last_used_at"] is not None
    assert settings["api_last_activity"] != before
    settings["api_last_activity"] = settings["api_last_activity"] - timedelta(hours=1)
    stale = settings["api_last_activity"]
    async with modern(url, _bearer(SERVICE_TOKEN)) as client:
        await client.list_tools()
    assert settings["api_last_activity"] > stale


# -- sessions ----------------------------------------------------------------------------


async def test_session_is_bound_to_its_user(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway
) -> None:
    mine, theirs = await _token(runtime_), await _token(runtime_, OTHER)
    opened = await _post(url, INITIALIZE, _bearer(mine))
    assert opened.status_code == 200, opened.text
    session_id = opened.headers["mcp-session-id"]
    session = {"Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-11-25"}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await _post(url, initialized, {**_bearer(mine), **session})).status_code == 202
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

    stolen = await _post(url, listing, {**_bearer(theirs), **session})
    assert stolen.status_code == 404
    service = await _post(url, listing, {**_bearer(SERVICE_TOKEN), **session})
    assert service.status_code == 200  # the service token acts as the owner
    own = await _post(url, listing, {**_bearer(mine), **session})
    assert own.status_code == 200
    assert _sse_json(own)["result"]["tools"][0]["name"] == "fake__count"

    async with httpx2.AsyncClient(timeout=10) as http:
        refused = await http.delete(url, headers={**_bearer(theirs), **session})
        assert refused.status_code == 404
        ended = await http.delete(url, headers={**_bearer(mine), **session})
        assert ended.status_code == 200
    assert (await _post(url, listing, {**_bearer(mine), **session})).status_code == 404


async def test_notification_stream_answers_before_any_event(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway
) -> None:
    # The GET stream may carry no event for a long time: its headers must not wait for one
    # (clients, and the conformance suite's token proxy, wait for them).
    token = await _token(runtime_)
    opened = await _post(url, INITIALIZE, _bearer(token))
    session = {
        **_bearer(token),
        "Mcp-Session-Id": opened.headers["mcp-session-id"],
        "MCP-Protocol-Version": "2025-11-25",
    }
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await _post(url, initialized, session)).status_code == 202
    async with httpx2.AsyncClient(timeout=10) as http:
        with anyio.fail_after(5):
            headers = {**session, "Accept": "text/event-stream"}
            async with http.stream("GET", url, headers=headers) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")


# -- hops, XSRF, stopping ------------------------------------------------------------------


async def test_hop_header(url: str, runtime_: DodoRuntime, gateway: FakeGateway) -> None:
    token = await _token(runtime_)
    too_deep = await _post(url, INITIALIZE, {**_bearer(token), HOP_HEADER: "4"})
    assert too_deep.status_code == 429
    assert too_deep.json()["error"] == "too_many_hops"
    bad = await _post(url, INITIALIZE, {**_bearer(token), HOP_HEADER: "many"})
    assert bad.status_code == 400 and HOP_HEADER in bad.json()["message"]

    async with modern(url, {**_bearer(token), HOP_HEADER: "3"}) as client:
        await client.call_tool("fake__count", {"n": 1})
    assert _who(gateway.calls[-1][3]) == (runtime_.resolver.owner, "token", 3)


def _cookies(response: Any, jar: dict[str, str]) -> None:
    for header in response.headers.get_list("Set-Cookie"):
        for key, morsel in SimpleCookie(header).items():
            jar[key] = morsel.value


async def _fetch(client: Any, path: str, **kwargs: Any) -> Any:
    try:
        return await client.fetch(path, raise_error=True, follow_redirects=False, **kwargs)
    except HTTPClientError as e:
        assert e.response is not None
        return e.response


async def test_cookie_requests_keep_xsrf(
    http_server_client: Any, jp_base_url: str, jp_serverapp: Any, gateway: FakeGateway
) -> None:
    jar: dict[str, str] = {}
    _cookies(await _fetch(http_server_client, f"{jp_base_url}login"), jar)
    form = urllib.parse.urlencode(
        {"password": jp_serverapp.identity_provider.token, "_xsrf": jar["_xsrf"]}
    )
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    login = await _fetch(
        http_server_client,
        f"{jp_base_url}login",
        method="POST",
        body=form,
        headers={"Cookie": cookie},
    )
    assert login.code == 302
    _cookies(login, jar)
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    path = f"{jp_base_url}dodo/mcp"
    body = json.dumps(INITIALIZE)

    refused = await _fetch(
        http_server_client, path, method="POST", body=body, headers={**MCP_ACCEPT, "Cookie": cookie}
    )
    assert refused.code == 403
    accepted = await _fetch(
        http_server_client,
        path,
        method="POST",
        body=body,
        headers={**MCP_ACCEPT, "Cookie": cookie, "X-XSRFToken": jar["_xsrf"]},
    )
    assert accepted.code == 200, accepted.body
    assert accepted.headers["mcp-session-id"]


async def test_503_while_stopping(url: str, runtime_: DodoRuntime, gateway: FakeGateway) -> None:
    token = await _token(runtime_)
    assert (await _post(url, INITIALIZE, _bearer(token))).status_code == 200
    await runtime_.endpoint.stop()
    response = await _post(url, INITIALIZE, _bearer(token))
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"


# -- hub mode: visitors ----------------------------------------------------------------------


class TestHubMode:
    @pytest.fixture(autouse=True)
    def _users(self, hub: Callable[..., None]) -> None:
        hub(alice=hub_user("alice"), bob=hub_user("bob", admin=True))

    @pytest.fixture
    def jp_server_config(self, dodo_config: dict[str, Any]) -> dict[str, Any]:
        return hub_server_config(dodo_config)

    async def test_visitor_is_refused(self, url: str, gateway: FakeGateway) -> None:
        visitor = await _post(url, INITIALIZE, {"Authorization": "token bob"})
        assert visitor.status_code == 403 and visitor.json()["error"] == "forbidden"
        async with legacy(url, {"Authorization": "token alice"}) as session:
            result = await session.call_tool("fake__count", {"n": 1})
        assert _text(result) == "counted 1"
        assert _who(gateway.calls[-1][3]) == ("alice", "jupyter", 0)

    async def test_service_token_is_the_owner(self, url: str, gateway: FakeGateway) -> None:
        async with modern(url, _bearer(SERVICE_TOKEN)) as client:
            assert (await client.list_tools()).tools[0].name == "fake__count"
            await client.call_tool("fake__count", {"n": 1})
        assert _who(gateway.calls[-1][3]) == ("alice", "service", 0)


# -- start-up cost ---------------------------------------------------------------------------


def test_server_start_imports_no_mcp_server() -> None:
    """The SDK's server side and SQLAlchemy load on threads after start, not at import."""
    code = (
        "import sys, dodo_jupyter.app; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'starlette'}), "
        "'mcp.server' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["[]", "False"], out.stdout
    assert gateway_handlers.TOKEN_PREFIX == tokens.TOKEN_PREFIX


@pytest.mark.asyncio
async def test_host_restarts_a_crashed_endpoint_and_refuses_while_stopping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dodo_jupyter.gateway import endpoint as endpoint_module

    runs = 0
    real_run = endpoint_module.GatewayEndpoint.run

    async def crashes_once(self: Any, started: Any, stop: Any) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("boom")
        await real_run(self, started, stop)

    monkeypatch.setattr(endpoint_module.GatewayEndpoint, "run", crashes_once)
    host = EndpointHost(lambda: FakeGateway("owner"))
    host.start()
    with pytest.raises(Unavailable):
        await host.endpoint()
    assert isinstance(await host.endpoint(), endpoint_module.GatewayEndpoint)
    assert runs == 2
    await host.stop()
    assert host.stopping
    with pytest.raises(Unavailable):
        await host.endpoint()


SPANS_PROBE = """
from opentelemetry import trace
from dodo_jupyter.gateway.endpoint import GatewayEndpoint

class Installed(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        return trace.NoOpTracer()

def spans():
    endpoint = GatewayEndpoint(lambda: None)
    return any(type(m).__name__ == "OpenTelemetryMiddleware" for m in endpoint.server.middleware)

before = spans()
trace.set_tracer_provider(Installed())
print(before, spans())
"""


def test_sdk_spans_are_emitted_only_when_tracing_is_configured() -> None:
    """No tracer provider: the SDK's per-message span middleware is dropped (it would cost
    time and go nowhere); once an OpenTelemetry provider is installed, it stays."""
    result = subprocess.run(
        [sys.executable, "-c", SPANS_PROBE], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


# -- error bodies ------------------------------------------------------------------------

#: JSON-RPC messages the gateway must refuse, each with a body a person can read.
_BAD_MESSAGES: list[Any] = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 5}},
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": []},
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 5}},
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": 3}},
    {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": ["x"]}},
    {"jsonrpc": "2.0", "id": 1, "method": "no/such/method", "params": {}},
    {"jsonrpc": "1.0", "id": 1, "method": "ping"},
    {"id": {"a": 1}, "method": 7},
    [1, 2, 3],
    "not an object",
]


@pytest.mark.parametrize("body", _BAD_MESSAGES, ids=range(len(_BAD_MESSAGES)))
@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
async def test_jsonrpc_errors_carry_no_library_internals(
    url: str, runtime_: DodoRuntime, gateway: FakeGateway, body: Any, version: str
) -> None:
    from .schemathesis_hooks import library_internals_in

    token = await _token(runtime_)
    headers = {**_bearer(token), "MCP-Protocol-Version": version}
    response = await _post(url, body, headers)
    assert response.status_code < 500, response.text
    assert not library_internals_in(response.text), response.text
