"""The gateway service through the tools API: aggregation, switches, calls, failures,
refresh, change notifications and reconnection — against real MCP servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server
from dodo_jupyter.gateway.caller import HOP_META_KEY
from dodo_jupyter.tool_results import STRUCTURED_ONLY_META_KEY

from .conftest import Api
from .mcp_peers import SlowToolList, running_mcp_server
from .test_oauth_e2e import connect, expire_access_token, runtime_of

TOOLS = "dodo/api/mcp/tools"
CALL = "dodo/api/mcp/tools/call"
START = "dodo/api/mcp/start-auth"

pytestmark = pytest.mark.usefixtures("upstreams_closed_first")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo() -> Iterator[DemoHandle]:
    with running_demo_server(DemoConfig(port=0)) as handle:
        yield handle


@pytest.fixture
def slow() -> SlowToolList:
    return SlowToolList(None)  # type: ignore[arg-type]


@pytest.fixture
def open_port() -> int:
    return free_port()


class Restartable:
    """A plain MCP server on a fixed port that a test can stop and start again."""

    def __init__(self, port: int, slow: SlowToolList) -> None:
        self.port, self.slow = port, slow
        self._stack: contextlib.ExitStack | None = None
        self.url = f"http://127.0.0.1:{port}/mcp"

    def start(self) -> None:
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(running_mcp_server(port=self.port, slow=self.slow))

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


@pytest.fixture
def open_server(open_port: int, slow: SlowToolList) -> Iterator[Restartable]:
    server = Restartable(open_port, slow)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dodo_config(
    dodo_config: dict[str, Any], demo: DemoHandle, open_server: Restartable
) -> dict[str, Any]:
    return {
        **dodo_config,
        "catalog": [
            {"id": "demo", "url": demo.url},
            {"id": "open", "url": open_server.url, "auth_type": "none"},
        ],
    }


async def connect_all(api: Api, jp_fetch: Any) -> str:
    demo_id = await connect(api, jp_fetch)
    status, body = await api("POST", START, {"catalog_id": "open"})
    assert body["state"] == "connected"
    return demo_id


async def test_tools_are_aggregated_and_callable(api: Api, jp_fetch: Any) -> None:
    await connect_all(api, jp_fetch)
    status, body = await api("GET", TOOLS)
    assert status == 200
    tools = {t["name"]: t for t in body["tools"]}
    assert {"demo__add", "demo__echo", "open__greet", "open__double"} <= set(tools)
    add = tools["demo__add"]
    assert add["server_id"] == "demo" and add["original_name"] == "add" and add["enabled"]
    assert add["input_schema"]["properties"].keys() >= {"a", "b"} and add["description"]

    status, result = await api("POST", CALL, {"name": "demo__add", "arguments": {"a": 2, "b": 3}})
    assert status == 200 and not result.get("isError")
    assert "5" in result["content"][0]["text"]
    status, result = await api("POST", CALL, {"name": "open__double", "arguments": {"n": 21}})
    assert "42" in result["content"][0]["text"]


async def test_switch_hides_a_tool_from_agents(api: Api, jp_fetch: Any, jp_serverapp: Any) -> None:
    await connect_all(api, jp_fetch)
    status, reply = await api("PUT", f"{TOOLS}/demo__echo", {"enabled": False})
    assert (status, reply) == (200, {"name": "demo__echo", "enabled": False})
    tools = {t["name"]: t for t in (await api("GET", TOOLS))[1]["tools"]}
    assert tools["demo__echo"]["enabled"] is False
    status, result = await api("POST", CALL, {"name": "demo__echo", "arguments": {"text": "x"}})
    assert result["isError"] and "switched off" in result["content"][0]["text"]
    gateway = runtime_of(jp_serverapp).gateway
    owner = runtime_of(jp_serverapp).resolver.owner
    assert "demo__echo" not in {t.name for t in await gateway.list_tools(owner)}
    assert (await api("PUT", f"{TOOLS}/demo__echo", {"enabled": True}))[0] == 200
    assert "demo__echo" in {t.name for t in await gateway.list_tools(owner)}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", f"{TOOLS}/nope__nothing", {"enabled": False}, 404),
        ("PUT", f"{TOOLS}/demo__echo", {"enabled": "no"}, 400),
        ("POST", CALL, {"arguments": {}}, 400),
        ("POST", CALL, {"name": "demo__echo", "arguments": []}, 400),
    ],
)
async def test_bad_requests(
    api: Api, jp_fetch: Any, method: str, path: str, body: Any, status: int
) -> None:
    await connect_all(api, jp_fetch)
    got, reply = await api(method, path, body)
    assert got == status and reply["message"]


async def test_unknown_tool_and_tool_errors_are_tool_results(api: Api, jp_fetch: Any) -> None:
    await connect_all(api, jp_fetch)
    status, result = await api("POST", CALL, {"name": "demo__missing", "arguments": {}})
    assert status == 200 and result["isError"] and "No tool named" in result["content"][0]["text"]
    status, result = await api("POST", CALL, {"name": "demo__add", "arguments": {"a": "x"}})
    assert status == 200 and result["isError"]


async def test_expired_token_is_refreshed_on_use(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    conn_id = await connect_all(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)

    await expire_access_token(runtime, conn_id)
    status, result = await api("POST", CALL, {"name": "demo__add", "arguments": {"a": 1, "b": 1}})
    assert not result.get("isError") and demo.stats.snapshot()["refreshes"] == 1


async def test_a_token_the_server_forgot_is_refreshed_after_its_401(
    api: Api, jp_fetch: Any, demo: DemoHandle
) -> None:
    await connect_all(api, jp_fetch)
    status, result = await api("POST", CALL, {"name": "demo__add", "arguments": {"a": 1, "b": 1}})
    assert not result.get("isError")  # the session is open; the call reuses it
    demo.provider._access.clear()  # as a server that lost its access tokens in a restart
    status, result = await api("POST", CALL, {"name": "demo__add", "arguments": {"a": 2, "b": 2}})
    assert not result.get("isError"), result
    assert demo.stats.snapshot()["refreshes"] == 1


async def test_a_refused_refresh_asks_for_a_new_sign_in(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    conn_id = await connect_all(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    await runtime.gateway.pool.discard(conn_id)  # the next use opens a session, refreshing
    for grant_id in list(demo.provider._grants):
        demo.provider._revoke_grant(grant_id)  # as an administrator ending the sign-in would
    await expire_access_token(runtime, conn_id)
    status, result = await api("POST", CALL, {"name": "demo__echo", "arguments": {"text": "x"}})
    assert result["isError"] and "connect again" in result["content"][0]["text"]
    names = {t["name"] for t in (await api("GET", TOOLS))[1]["tools"]}
    assert "demo__echo" not in names and "open__greet" in names
    servers = {s["catalog_id"]: s for s in (await api("GET", "dodo/api/mcp/servers"))[1]["servers"]}
    assert servers["demo"]["state"] == "needs_auth" and "connect again" in servers["demo"]["error"]
    status, result = await api("POST", CALL, {"name": "demo__echo", "arguments": {"text": "x"}})
    assert result["isError"] and "connect again" in result["content"][0]["text"]


async def test_disconnecting_ends_the_upstream_session_while_its_token_works(
    api: Api, jp_fetch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    conn_id = await connect_all(api, jp_fetch)
    status, result = await api("POST", CALL, {"name": "demo__echo", "arguments": {"text": "x"}})
    assert not result.get("isError")  # an upstream session is open
    status, body = await api("POST", "dodo/api/mcp/delete-auth", {"connection_id": conn_id})
    assert status == 200 and body["revoked"] is True
    failed = [r.getMessage() for r in caplog.records if "termination failed" in r.getMessage()]
    assert failed == []


async def test_list_changed_notification_refreshes_the_tool_list(api: Api, jp_fetch: Any) -> None:
    await connect_all(api, jp_fetch)
    names = {t["name"] for t in (await api("GET", TOOLS))[1]["tools"]}
    assert "demo__shout" not in names
    status, result = await api("POST", CALL, {"name": "demo__toggle_extra_tool", "arguments": {}})
    assert not result.get("isError"), result
    for _ in range(50):
        names = {t["name"] for t in (await api("GET", TOOLS))[1]["tools"]}
        if "demo__shout" in names:
            break
        await asyncio.sleep(0.05)
    assert "demo__shout" in names


async def test_listing_again_after_list_changed_reads_no_database(
    api: Api, jp_fetch: Any, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await connect_all(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    await api("GET", TOOLS)
    queries: list[str] = []
    read = runtime.store.db.read

    async def counted(work: Any, *args: Any, **kwargs: Any) -> Any:
        queries.append(getattr(work, "__qualname__", ""))
        return await read(work, *args, **kwargs)

    monkeypatch.setattr(runtime.store.db, "read", counted)

    def listing_queries() -> list[str]:
        return [
            q for q in queries if q.startswith(("ConnectionRows.of_user", "GatewayService._sw"))
        ]

    status, result = await api("POST", CALL, {"name": "demo__toggle_extra_tool", "arguments": {}})
    assert not result.get("isError"), result
    for _ in range(50):  # list_changed: the next listing asks the demo server again
        names = {t["name"] for t in (await api("GET", TOOLS))[1]["tools"]}
        if "demo__shout" in names:
            break
        await asyncio.sleep(0.05)
    assert "demo__shout" in names
    assert listing_queries() == []  # ...but its connections and switches are as they were
    assert (await api("PUT", f"{TOOLS}/demo__add", {"enabled": False}))[0] == 200
    await api("GET", TOOLS)
    assert len(listing_queries()) == 2  # a switch changed: both are read again


async def test_a_slow_server_does_not_hold_up_the_others(
    api: Api, jp_fetch: Any, jp_serverapp: Any, slow: SlowToolList
) -> None:
    await connect_all(api, jp_fetch)
    gateway = runtime_of(jp_serverapp).gateway
    gateway.server_timeout = 0.5
    await gateway.pool.discard(
        (await gateway.routes(runtime_of(jp_serverapp).resolver.owner))["open__greet"].connection_id
    )
    slow.delay = 3.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, body = await api("GET", TOOLS)
    elapsed = loop.time() - started
    names = {t["name"] for t in body["tools"]}
    assert "demo__add" in names and "open__greet" not in names
    assert elapsed < 2.5
    servers = {s["catalog_id"]: s for s in (await api("GET", "dodo/api/mcp/servers"))[1]["servers"]}
    assert servers["open"]["state"] == "error" and "within" in servers["open"]["error"]
    assert servers["demo"]["state"] == "connected"
    slow.delay = 0.0
    await gateway.pool.discard(servers["open"]["id"])
    names = {t["name"] for t in (await api("GET", TOOLS))[1]["tools"]}
    assert "open__greet" in names  # recovered by itself
    servers = {s["catalog_id"]: s for s in (await api("GET", "dodo/api/mcp/servers"))[1]["servers"]}
    assert servers["open"]["state"] == "connected"


async def test_the_check_after_connecting_has_the_listing_deadline(
    api: Api, jp_serverapp: Any, slow: SlowToolList
) -> None:
    runtime = runtime_of(jp_serverapp)
    await runtime.mcp_ready()
    runtime.connections.check_timeout = 0.5
    slow.delay = 3.0
    status, body = await api("POST", START, {"catalog_id": "open"})
    assert status == 504, body  # within 0.5 s, not after the server's 3 s
    assert "within 0.5 s" in body["message"] and "tools/list" in body["message"]
    servers = (await api("GET", "dodo/api/mcp/servers"))[1]["servers"]
    assert [s["state"] for s in servers if s["catalog_id"] == "open"] == ["error"]
    slow.delay = 0.0
    status, body = await api("POST", START, {"catalog_id": "open"})
    assert body["state"] == "connected"


async def test_reconnects_after_the_upstream_restarts(
    api: Api, jp_fetch: Any, open_server: Restartable
) -> None:
    await connect_all(api, jp_fetch)
    call = {"name": "open__greet", "arguments": {"who": "ada"}}
    assert "hello ada" in (await api("POST", CALL, call))[1]["content"][0]["text"]
    # A fresh server process forgets every session: the next call meets a stale session id.
    await asyncio.to_thread(open_server.stop)
    await asyncio.to_thread(open_server.start)
    status, result = await api("POST", CALL, call)
    assert status == 200 and not result.get("isError"), result
    assert "hello ada" in result["content"][0]["text"]


async def test_a_stopped_server_becomes_an_error_and_recovers(
    api: Api, jp_fetch: Any, open_server: Restartable
) -> None:
    await connect_all(api, jp_fetch)
    await api("GET", TOOLS)  # the route table knows open__greet
    await asyncio.to_thread(open_server.stop)
    status, result = await api("POST", CALL, {"name": "open__greet", "arguments": {"who": "x"}})
    assert status == 200 and result["isError"], result
    assert result["content"][0]["text"].startswith("open:")
    names = {t["name"] for t in (await api("GET", TOOLS))[1]["tools"]}
    assert "demo__add" in names and "open__greet" not in names  # the others stay available
    servers = {s["catalog_id"]: s for s in (await api("GET", "dodo/api/mcp/servers"))[1]["servers"]}
    assert servers["open"]["state"] == "error" and servers["open"]["error"]
    await asyncio.to_thread(open_server.start)
    for _ in range(40):  # the session retries after its backoff
        names = {t["name"] for t in (await api("GET", TOOLS))[1]["tools"]}
        if "open__greet" in names:
            break
        await asyncio.sleep(0.25)
    assert "open__greet" in names


async def test_hop_count_travels_in_request_meta(api: Api, jp_fetch: Any) -> None:
    await connect_all(api, jp_fetch)
    status, result = await api("POST", CALL, {"name": "open__request_meta", "arguments": {}})
    assert not result.get("isError"), result
    meta = json.loads(result["content"][0]["text"])
    assert meta[HOP_META_KEY] == 1


class TestGatewayLoop:
    """A catalog entry pointing at the gateway itself ends in a clear error, not a hang."""

    @pytest.fixture
    def dodo_config(
        self, dodo_config: dict[str, Any], jp_http_port: int, jp_base_url: str
    ) -> dict[str, Any]:
        url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}dodo/mcp"
        return {
            **dodo_config,
            "catalog": [
                {
                    "id": "self",
                    "url": url,
                    "auth_type": "static_headers",
                    "headers": [{"name": "Authorization"}],
                }
            ],
        }

    async def test_self_loop_is_stopped(self, api: Api, jp_serverapp: Any) -> None:
        status, token = await api("POST", "dodo/api/user/mcp-tokens", {"label": "loop"})
        status, conn = await asyncio.wait_for(
            api(
                "POST",
                "dodo/api/mcp/configs",
                {"catalog_id": "self", "headers": {"Authorization": f"Bearer {token['token']}"}},
            ),
            30,
        )
        assert status == 200
        status, body = await asyncio.wait_for(api("GET", TOOLS), 30)
        assert status == 200
        servers = (await api("GET", "dodo/api/mcp/servers"))[1]["servers"]
        text = json.dumps(servers) + json.dumps(body)
        assert body["tools"] == []
        (server,) = servers
        assert server["state"] == "error" and "Gateway loop" in server["error"], text
        # Resources and prompts carry the hop count too: the loop ends at once, empty.
        runtime = runtime_of(jp_serverapp)
        directory, owner = runtime.gateway.directory, runtime.resolver.owner
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(directory.list_resources(owner), 30) == []
        assert await asyncio.wait_for(directory.list_prompts(owner), 30) == []
        assert asyncio.get_running_loop().time() - started < 5


class TestSSEFallback:
    """HTTP+SSE only for entries whose transport says so."""

    @pytest.fixture
    def sse_server(self) -> Iterator[Any]:
        with running_mcp_server(sse=True) as server:
            yield server

    @pytest.fixture
    def dodo_config(self, dodo_config: dict[str, Any], sse_server: Any) -> dict[str, Any]:
        return {
            **dodo_config,
            "catalog": [
                {"id": "legacy", "url": sse_server.url, "auth_type": "none", "transport": "sse"},
                {"id": "strict", "url": sse_server.url + "?strict", "auth_type": "none"},
            ],
        }

    async def test_sse_entry_falls_back_and_works(self, api: Api) -> None:
        status, body = await api("POST", START, {"catalog_id": "legacy"})
        assert body["state"] == "connected", body
        status, body = await api("POST", START, {"catalog_id": "strict"})
        assert status == 502 and "405" in body["message"]
        names = {t["name"] for t in (await api("GET", TOOLS))[1]["tools"]}
        assert {"legacy__greet", "legacy__double"} <= names
        status, result = await api(
            "POST", CALL, {"name": "legacy__greet", "arguments": {"who": "sse"}}
        )
        assert "hello sse" in result["content"][0]["text"]


async def test_idle_sessions_are_closed_and_reopen(
    api: Api, jp_fetch: Any, jp_serverapp: Any
) -> None:
    await connect_all(api, jp_fetch)
    call = {"name": "open__greet", "arguments": {"who": "x"}}
    assert not (await api("POST", CALL, call))[1].get("isError")
    pool = runtime_of(jp_serverapp).gateway.pool
    open_sessions = len(pool._sessions)
    assert open_sessions == 2  # listing the routes opened both servers' sessions
    pool.idle_timeout = 0.0
    kept = next(iter(pool._sessions))  # as if a client had subscribed to its resources
    assert await pool.reap(keep=lambda key: key == kept) == open_sessions - 1
    assert list(pool._sessions) == [kept]
    assert await pool.reap() == 1 and pool._sessions == {}
    pool.idle_timeout = 600.0
    assert "hello x" in (await api("POST", CALL, call))[1]["content"][0]["text"]


async def test_mcp_clients_get_upstream_tools_and_progress_through_the_endpoint(
    api: Api, jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    from .test_gateway_endpoint import legacy, modern

    await connect_all(api, jp_fetch)
    token = (await api("POST", "dodo/api/user/mcp-tokens", {"label": "agent"}))[1]["token"]
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}dodo/mcp"
    headers = {"Authorization": f"Bearer {token}"}
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    async with legacy(url, headers) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert {"demo__add", "open__count_slowly"} <= names
        result = await session.call_tool("open__count_slowly", {"n": 3}, progress_callback=progress)
    assert not result.is_error and "counted to 3" in result.content[0].text
    assert [v for v, _, _ in seen] == [1, 2, 3] and seen[-1][1:] == (3, "step 3")

    async with modern(url, headers) as client:
        result = await client.call_tool("demo__add", {"a": 1.5, "b": 2})
    assert not result.is_error and "3.5" in result.content[0].text


async def test_a_caller_reading_only_structured_content_gets_no_text_repeating_it(
    api: Api, jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    """The kernel's typed functions read only a result's structured content and say so in
    the request's ``_meta``: a successful result comes without its text blocks, an error
    with them; other callers get the whole result."""
    from .test_gateway_endpoint import modern

    await connect_all(api, jp_fetch)
    token = (await api("POST", "dodo/api/user/mcp-tokens", {"label": "agent"}))[1]["token"]
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}dodo/mcp"
    only = {STRUCTURED_ONLY_META_KEY: True}
    async with modern(url, {"Authorization": f"Bearer {token}"}) as client:
        whole = await client.call_tool("demo__add", {"a": 1.5, "b": 2})
        lean = await client.call_tool("demo__add", {"a": 1.5, "b": 2}, meta=only)
        failed = await client.call_tool("demo__add", {"a": "x", "b": 2}, meta=only)
    assert [c.type for c in whole.content] == ["text"] and whole.structured_content == {
        "result": 3.5
    }
    assert lean.content == [] and lean.structured_content == whole.structured_content
    assert not lean.is_error
    assert failed.is_error and failed.content and failed.content[0].type == "text"
