"""The whole of MCP through the real gateway (``/dodo/mcp`` on a real Jupyter server),
with the MCP SDK's client and fastmcp's, against two real upstreams that use every part
of the protocol (:mod:`.protocol_peer`) and collide in every name: resources, templates,
prompts and completion from both; elicitation, sampling and roots answered by the
gateway's client; logs; a cancelled call stopping upstream; list changes and resource
updates reaching an open session."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import mcp_types as types
import pytest
from fastmcp import Client as FastMCPClient
from fastmcp.client.transports import StreamableHttpTransport
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from dodo_jupyter.gateway.uris import ORIGIN_KEY
from dodo_jupyter.runtime import DodoRuntime

from .conftest import Api
from .mcp_peers import RunningServer
from .protocol_peer import BLOB, PeerLog, running_protocol_peer
from .scripted_server import until

pytestmark = [
    pytest.mark.usefixtures("upstreams_closed_first"),
    # Logging, sampling and resources/subscribe are what 2025-11-25 sessions use; the SDK
    # warns that the stateless 2026-07-28 protocol replaces them.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

START = "dodo/api/mcp/start-auth"
#: How soon an open session must hear of a change (the issue's promise).
CHANGE_SECONDS = 2.0


@pytest.fixture
def peers() -> Iterator[dict[str, tuple[RunningServer, PeerLog]]]:
    with running_protocol_peer("north") as north, running_protocol_peer("south") as south:
        yield {"north": north, "south": south}


@pytest.fixture
def gone_port() -> int:
    """A port for a server a test starts, connects and stops (catalog entry ``gone``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dodo_config(
    dodo_config: dict[str, Any], peers: dict[str, tuple[RunningServer, PeerLog]], gone_port: int
) -> dict[str, Any]:
    gone = {"id": "gone", "url": f"http://127.0.0.1:{gone_port}/mcp", "auth_type": "none"}
    return {
        **dodo_config,
        "catalog": [
            *(
                {"id": name, "url": server.url, "auth_type": "none"}
                for name, (server, _) in peers.items()
            ),
            gone,
        ],
    }


async def connect_peers(api: Api) -> str:
    """Connect both peers; a gateway token for the test's client."""
    for name in ("north", "south"):
        status, body = await api("POST", START, {"catalog_id": name})
        assert body["state"] == "connected", body
    status, created = await api("POST", "dodo/api/user/mcp-tokens", {"label": "protocol"})
    assert status == 201
    return str(created["token"])


async def connection_id(api: Api, catalog_id: str) -> str:
    """The id of the user's connection to catalog entry ``catalog_id``."""
    status, servers = await api("GET", "dodo/api/mcp/servers")
    (row,) = [s for s in servers["servers"] if s.get("catalog_id") == catalog_id]
    return str(row["id"])


class Heard:
    """What the gateway told a client session on its own (notifications)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logs: list[types.LoggingMessageNotificationParams] = []
        self.arrived = asyncio.Event()

    async def message(self, message: Any) -> None:
        self.messages.append(message)
        self.arrived.set()

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)

    def methods(self) -> list[str]:
        return [getattr(m, "method", "") for m in self.messages]

    async def wait_for(self, method: str, seconds: float = CHANGE_SECONDS) -> Any:
        async with asyncio.timeout(seconds):
            while True:
                for message in self.messages:
                    if getattr(message, "method", None) == method:
                        return message
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def session(gateway_url: str, token: str, **callbacks: Any) -> AsyncIterator[ClientSession]:
    """An SDK client session (protocol 2025-11-25) to the gateway."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(gateway_url, http_client=http) as (read, write),
        ClientSession(read, write, **callbacks) as opened,
    ):
        await opened.initialize()
        yield opened


async def test_resources_and_prompts_of_two_servers_with_the_same_names(
    gateway_url: str, api: Api
) -> None:
    token = await connect_peers(api)
    async with session(gateway_url, token) as client:
        listed = (await client.list_resources()).resources
        uris = sorted(r.uri for r in listed)
        assert uris == [
            "dodo://north/note://logo",
            "dodo://north/note://readme",
            "dodo://south/note://logo",
            "dodo://south/note://readme",
        ]
        readme = next(r for r in listed if r.uri == "dodo://south/note://readme")
        assert readme.meta[ORIGIN_KEY] == {"server": "south", "uri": "note://readme"}

        for name in ("north", "south"):
            read = await client.read_resource(f"dodo://{name}/note://readme")
            (text,) = read.contents
            assert isinstance(text, types.TextResourceContents)
            assert text.text == f"readme of {name}"
            assert text.uri == f"dodo://{name}/note://readme"  # readable again as given
        (blob,) = (await client.read_resource("dodo://north/note://logo")).contents
        assert isinstance(blob, types.BlobResourceContents)
        assert base64.b64decode(blob.blob) == BLOB and blob.mime_type == "image/png"

        templates = (await client.list_resource_templates()).resource_templates
        assert sorted(t.uri_template for t in templates) == [
            "dodo://north/note://items/{id}",
            "dodo://south/note://items/{id}",
        ]
        (item,) = (await client.read_resource("dodo://south/note://items/7")).contents
        assert isinstance(item, types.TextResourceContents) and item.text == "item 7"

        with pytest.raises(MCPError) as missing:
            await client.read_resource("dodo://north/note://nothing")
        assert missing.value.error.code == -32002  # the server's own error, as it said it
        assert missing.value.error.message == "Resource not found: note://nothing"
        with pytest.raises(MCPError) as unknown:
            await client.read_resource("dodo://west/note://readme")
        assert "No connected server 'west'" in unknown.value.error.message
        with pytest.raises(MCPError) as foreign:
            await client.read_resource("note://readme")
        assert "dodo://<server>/<uri>" in foreign.value.error.message

        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {
            f"{server}__{prompt}"
            for server in ("north", "south")
            for prompt in ("greeting", "with_image", "with_resource")
        }
        assert prompts["north__greeting"].arguments[0].name == "who"
        got = await client.get_prompt("south__greeting", {"who": "ada"})
        assert got.messages[0].content.text == "Hello ada, from south"
        image = (await client.get_prompt("north__with_image")).messages[0].content
        assert isinstance(image, types.ImageContent) and base64.b64decode(image.data) == BLOB
        embedded = (await client.get_prompt("north__with_resource")).messages[0].content
        assert isinstance(embedded, types.EmbeddedResource)
        with pytest.raises(MCPError) as no_prompt:
            await client.get_prompt("east__greeting")
        assert "No prompt named 'east__greeting'" in no_prompt.value.error.message

        completed = await client.complete(
            types.PromptReference(type="ref/prompt", name="north__greeting"),
            {"name": "who", "value": "a"},
        )
        assert completed.completion.values == ["ada", "alan"]
        completed = await client.complete(
            types.ResourceTemplateReference(
                type="ref/resource", uri="dodo://south/note://items/{id}"
            ),
            {"name": "id", "value": "g"},
        )
        assert completed.completion.values == ["grace"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # 2025-11-25 and 2026-07-28
async def test_fastmcp_client_reads_resources_and_prompts(
    gateway_url: str, api: Api, mode: Any
) -> None:
    token = await connect_peers(api)
    transport = StreamableHttpTransport(gateway_url, headers={"Authorization": f"Bearer {token}"})
    async with FastMCPClient(transport, mode=mode) as client:
        uris = {str(r.uri) for r in await client.list_resources()}
        assert {"dodo://north/note://readme", "dodo://south/note://readme"} <= uris
        (text,) = await client.read_resource("dodo://north/note://readme")
        assert text.text == "readme of north"
        got = await client.get_prompt("north__greeting", {"who": "alan"})
        assert got.messages[0].content.text == "Hello alan, from north"


async def test_elicitation_sampling_and_roots_are_answered_by_the_calling_client(
    gateway_url: str, api: Api, peers: dict[str, tuple[RunningServer, PeerLog]]
) -> None:
    token = await connect_peers(api)
    asked: list[types.ElicitRequestParams] = []

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        if isinstance(params, types.ElicitRequestURLParams):
            return types.ElicitResult(action="accept")
        return types.ElicitResult(action="accept", content={"colour": "blue"})

    async def sample(context: Any, params: types.CreateMessageRequestParams) -> Any:
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="4"), model="test"
        )

    async def roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///home/nb/work")])

    async with session(
        gateway_url,
        token,
        elicitation_callback=elicit,
        sampling_callback=sample,
        list_roots_callback=roots,
    ) as client:
        result = await client.call_tool("north__ask", {})
        assert not result.is_error and result.content[0].text == "accept: {'colour': 'blue'}"
        assert asked[0].message == "Which colour?"
        result = await client.call_tool("north__ask_url", {})
        assert result.content[0].text == "url accept"
        assert isinstance(asked[1], types.ElicitRequestURLParams)
        assert asked[1].url == "https://example.invalid/consent"
        result = await client.call_tool("north__ask_http", {})
        assert result.is_error and len(asked) == 2  # refused before reaching the client
        result = await client.call_tool("south__think", {})
        assert result.content[0].text == "model said 4"
        result = await client.call_tool("south__roots", {})
        assert result.content[0].text == "file:///home/nb/work"
    declared = peers["north"][1].client_capabilities[0]
    assert {"elicitation", "sampling", "roots"} <= set(declared)


async def test_a_client_without_the_capability_gets_a_prompt_error_not_a_hang(
    gateway_url: str, api: Api, peers: dict[str, tuple[RunningServer, PeerLog]]
) -> None:
    token = await connect_peers(api)
    async with session(gateway_url, token) as client:
        async with asyncio.timeout(10):
            result = await client.call_tool("north__ask", {})
    assert result.is_error
    assert peers["north"][1].client_capabilities[-1] == {}  # nothing was declared upstream


async def test_a_cancelled_call_stops_upstream(
    gateway_url: str, api: Api, peers: dict[str, tuple[RunningServer, PeerLog]]
) -> None:
    token = await connect_peers(api)
    log = peers["north"][1]
    async with session(gateway_url, token) as client:
        call = asyncio.ensure_future(client.call_tool("north__slow", {}))
        await asyncio.to_thread(log.started.wait, 10)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        assert await asyncio.to_thread(log.cancelled.wait, 5), "the upstream call went on"


async def test_an_open_session_hears_of_list_changes(gateway_url: str, api: Api) -> None:
    token = await connect_peers(api)
    heard = Heard()
    async with session(gateway_url, token, message_handler=heard.message) as client:
        before = {t.name for t in (await client.list_tools()).tools}
        await client.call_tool("north__change", {})  # the upstream changes its tools
        await heard.wait_for("notifications/tools/list_changed")
        after = {t.name for t in (await client.list_tools()).tools}
        assert after - before == {"north__added_0"}

        heard.messages.clear()
        south_id = await connection_id(api, "south")
        status, _ = await api("POST", "dodo/api/mcp/delete-auth", {"connection_id": south_id})
        assert status == 200
        await heard.wait_for("notifications/tools/list_changed")
        await heard.wait_for("notifications/prompts/list_changed")
        await heard.wait_for("notifications/resources/list_changed")
        assert not any(t.name.startswith("south__") for t in (await client.list_tools()).tools)


async def test_logs_are_relayed_at_the_level_the_session_set(
    gateway_url: str, api: Api, peers: dict[str, tuple[RunningServer, PeerLog]]
) -> None:
    token = await connect_peers(api)
    heard = Heard()
    async with session(gateway_url, token, logging_callback=heard.log) as client:
        await client.set_logging_level("info")
        assert peers["north"][1].levels == ["info"] and peers["south"][1].levels == ["info"]
        await client.call_tool("north__chatty", {})
    assert [(m.level, m.logger, m.data) for m in heard.logs] == [
        ("info", "north/work", "info line"),
        ("error", "north/work", "error line"),
    ]


async def test_a_subscribed_resource_update_reaches_the_session(
    gateway_url: str, api: Api, peers: dict[str, tuple[RunningServer, PeerLog]]
) -> None:
    token = await connect_peers(api)
    heard = Heard()
    async with session(gateway_url, token, message_handler=heard.message) as client:
        await client.subscribe_resource("dodo://north/note://readme")
        assert peers["north"][1].subscribed == ["note://readme"]
        await client.call_tool("north__touch", {})
        updated = await heard.wait_for("notifications/resources/updated")
        assert updated.params.uri == "dodo://north/note://readme"
        await client.unsubscribe_resource("dodo://north/note://readme")
        assert peers["north"][1].unsubscribed == ["note://readme"]


async def test_subscriptions_and_the_log_level_outlive_a_new_upstream_session(
    gateway_url: str,
    api: Api,
    peers: dict[str, tuple[RunningServer, PeerLog]],
    runtime_: DodoRuntime,
) -> None:
    token = await connect_peers(api)
    north = peers["north"][1]
    heard = Heard()
    async with session(gateway_url, token, message_handler=heard.message) as client:
        await client.subscribe_resource("dodo://north/note://readme")
        await client.set_logging_level("error")
        north_id = await connection_id(api, "north")
        # What a new sign-in, new header values or a refresh do: the connection's
        # upstream session is closed and a new one takes its place.
        await runtime_.gateway.forget(north_id)
        # The new session is opened at once and asked again for both, with no request.
        await until(lambda: north.subscribed == ["note://readme"] * 2)
        assert north.levels == ["error", "error"]
        await client.call_tool("north__touch", {})
        updated = await heard.wait_for("notifications/resources/updated")
        assert updated.params.uri == "dodo://north/note://readme"
        assert runtime_.gateway.directory.keeps(north_id)


async def test_a_session_that_ends_subscribed_is_unsubscribed_at_the_server(
    gateway_url: str,
    api: Api,
    peers: dict[str, tuple[RunningServer, PeerLog]],
    runtime_: DodoRuntime,
) -> None:
    token = await connect_peers(api)
    north = peers["north"][1]
    async with session(gateway_url, token) as first, session(gateway_url, token) as second:
        await first.subscribe_resource("dodo://north/note://readme")
        await second.subscribe_resource("dodo://north/note://readme")
    # Both ended without unsubscribing: once the last one is gone, so is the subscription
    # (until then the other session still wanted it).
    await until(lambda: north.unsubscribed == ["note://readme"])
    assert not runtime_.gateway.directory.keeps(await connection_id(api, "north"))


async def test_a_stateless_client_listening_hears_of_list_changes_and_updates(
    gateway_url: str, api: Api
) -> None:
    token = await connect_peers(api)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(gateway_url, http_client=http), mode="2026-07-28") as client,
        client.listen(
            tools_list_changed=True, resource_subscriptions=["dodo://north/note://readme"]
        ) as events,
    ):
        assert events.honored.tools_list_changed
        await client.call_tool("north__change", {})
        async with asyncio.timeout(CHANGE_SECONDS):
            first = await anext(aiter(events))
        assert type(first).__name__ == "ToolsListChanged"
        await client.call_tool("north__touch", {})
        async with asyncio.timeout(CHANGE_SECONDS):
            second = await anext(aiter(events))
        assert getattr(second, "uri", None) == "dodo://north/note://readme"


async def test_a_server_that_stays_down_does_not_make_sessions_list_in_a_loop(
    gateway_url: str, api: Api, gone_port: int
) -> None:
    token = await connect_peers(api)
    with running_protocol_peer("gone", port=gone_port):
        assert (await api("POST", START, {"catalog_id": "gone"}))[1]["state"] == "connected"
    heard = Heard()
    async with session(gateway_url, token, message_handler=heard.message) as client:
        for _ in range(3):  # each listing finds the server down, with a new retry delay
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "north__ask" in tools and not any(t.startswith("gone__") for t in tools)
        await asyncio.sleep(1.5)
    assert "notifications/tools/list_changed" not in heard.methods()


async def test_the_servers_log_at_the_most_verbose_level_any_session_asked_for(
    gateway_url: str, api: Api, peers: dict[str, tuple[RunningServer, PeerLog]]
) -> None:
    token = await connect_peers(api)
    chatty, quiet = Heard(), Heard()
    async with (
        session(gateway_url, token, logging_callback=chatty.log) as first,
        session(gateway_url, token, logging_callback=quiet.log) as second,
    ):
        await first.set_logging_level("debug")
        await second.set_logging_level("error")  # the servers still log debug for `first`
        assert peers["north"][1].levels == ["debug", "debug"]
        await first.call_tool("north__chatty", {})
        await second.call_tool("north__chatty", {})
    assert [m.level for m in chatty.logs] == ["debug", "info", "error"]
    assert [m.level for m in quiet.logs] == ["error"]
