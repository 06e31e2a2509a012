"""REST: resources and prompts (``dodo/api/mcp/resources``, ``…/resources/read``,
``dodo/api/mcp/prompts``, ``…/prompts/get``) through a real Jupyter server against two
real MCP servers on loopback (:func:`.mcp_peers.content_server`) whose resource URIs and
prompt names collide; what a person sees when something is wrong; who may call."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from dodo_jupyter.handlers.directory import upstream_error

from .conftest import Api
from .hub_identity import hub_server_config, hub_user
from .mcp_peers import DATA_BIN, RunningServer, content_server, running_mcp_server

pytestmark = pytest.mark.usefixtures("upstreams_closed_first")

RESOURCES = "dodo/api/mcp/resources"
READ = "dodo/api/mcp/resources/read"
PROMPTS = "dodo/api/mcp/prompts"
GET_PROMPT = "dodo/api/mcp/prompts/get"
#: What no answer may show a person.
INTERNALS = ("MCPError", "Traceback", "pydantic", "-326")


@pytest.fixture
def upstreams() -> Iterator[dict[str, RunningServer]]:
    north = content_server("north").streamable_http_app(host="127.0.0.1")
    south = content_server("south").streamable_http_app(host="127.0.0.1")
    with running_mcp_server(app=north) as n, running_mcp_server(app=south) as s:
        yield {"north": n, "south": s}


@pytest.fixture
def dodo_config(dodo_config: dict[str, Any], upstreams: dict[str, RunningServer]) -> dict[str, Any]:
    return {
        **dodo_config,
        "catalog": [
            {"id": name, "url": server.url, "auth_type": "none"}
            for name, server in upstreams.items()
        ],
    }


async def connect_both(api: Api) -> None:
    for name in ("north", "south"):
        status, body = await api("POST", "dodo/api/mcp/start-auth", {"catalog_id": name})
        assert body["state"] == "connected", body


def assert_clean(reply: dict[str, Any]) -> None:
    for internal in INTERNALS:
        assert internal not in reply["message"], reply


async def test_nothing_connected_lists_nothing(api: Api) -> None:
    assert await api("GET", RESOURCES) == (200, {"resources": [], "templates": []})
    assert await api("GET", PROMPTS) == (200, {"prompts": []})


async def test_resources_of_two_servers_with_the_same_uris(api: Api) -> None:
    await connect_both(api)
    status, listed = await api("GET", RESOURCES)
    assert status == 200
    by_uri = {r["uri"]: r for r in listed["resources"]}
    assert sorted(by_uri) == sorted(
        f"dodo://{server}/note://{name}"
        for server in ("north", "south")
        for name in ("readme", "config.json", "logo.png", "data.bin")
    )
    readme = by_uri["dodo://south/note://readme"]
    assert (readme["server_id"], readme["original_uri"]) == ("south", "note://readme")
    assert readme["mimeType"] == "text/markdown" and readme["description"] == "Read me first."
    assert [t["uriTemplate"] for t in listed["templates"]] == [
        "dodo://north/note://items/{item}",
        "dodo://south/note://items/{item}",
    ]
    assert listed["templates"][0]["original_uri_template"] == "note://items/{item}"

    for server in ("north", "south"):
        status, read = await api("GET", READ, uri=f"dodo://{server}/note://readme")
        assert status == 200
        (text,) = read["contents"]
        assert text["text"] == f"# {server}\n\nreadme of {server}"
        assert text["uri"] == f"dodo://{server}/note://readme"  # readable again as given
    (config,) = (await api("GET", READ, uri="dodo://north/note://config.json"))[1]["contents"]
    assert config["mimeType"] == "application/json"
    assert json.loads(config["text"]) == {"server": "north", "limits": {"calls": 3}}
    (logo,) = (await api("GET", READ, uri="dodo://south/note://logo.png"))[1]["contents"]
    assert logo["mimeType"] == "image/png" and "text" not in logo
    assert base64.b64decode(logo["blob"]).startswith(b"\x89PNG\r\n\x1a\n")
    (data,) = (await api("GET", READ, uri="dodo://south/note://data.bin"))[1]["contents"]
    assert base64.b64decode(data["blob"]) == DATA_BIN
    # An expanded template is read like any other URI.
    (item,) = (await api("GET", READ, uri="dodo://north/note://items/7"))[1]["contents"]
    assert item["text"] == "item 7 of north"


async def test_reading_what_cannot_be_read_says_why(api: Api) -> None:
    await connect_both(api)
    status, reply = await api("GET", READ)
    assert status == 400 and reply["fields"] == {"uri": "required"}
    assert "GET mcp/resources" in reply["message"]
    status, reply = await api("GET", READ, uri="note://readme")
    assert status == 400 and "dodo://<server>/<uri>" in reply["message"]
    status, reply = await api("GET", READ, uri="dodo://west/note://readme")
    assert status == 404 and "No connected server 'west'" in reply["message"]
    # The server's own "not found", without the protocol's internals.
    status, reply = await api("GET", READ, uri="dodo://north/note://nothing")
    assert (status, reply["error"]) == (404, "not_found"), reply
    assert "Unknown resource: note://nothing" in reply["message"]
    assert_clean(reply)
    # A server that fails answers 502 with its own words.
    status, reply = await api("GET", READ, uri="dodo://south/note://items/broken")
    assert (status, reply["error"]) == (502, "upstream_error"), reply
    assert "the item store is on fire" in reply["message"]
    assert_clean(reply)


async def test_prompts_of_two_servers_with_the_same_names(api: Api) -> None:
    await connect_both(api)
    status, listed = await api("GET", PROMPTS)
    assert status == 200
    prompts = {p["name"]: p for p in listed["prompts"]}
    assert sorted(prompts) == [
        f"{server}__{name}"
        for server in ("north", "south")
        for name in ("greeting", "with_image", "with_resource")
    ]
    greeting = prompts["north__greeting"]
    assert (greeting["server_id"], greeting["original_name"]) == ("north", "greeting")
    assert greeting["arguments"] == [
        {"name": "who", "required": True},
        {"name": "mood", "required": False},
    ]

    status, got = await api(
        "POST", GET_PROMPT, {"name": "south__greeting", "arguments": {"who": "ada", "mood": "calm"}}
    )
    assert status == 200
    assert got["messages"] == [
        {"role": "user", "content": {"type": "text", "text": "Hello ada, from south (calm)"}}
    ]
    status, got = await api("POST", GET_PROMPT, {"name": "north__with_image"})
    image, answer = got["messages"]
    assert image["content"]["type"] == "image" and image["content"]["mimeType"] == "image/png"
    assert base64.b64decode(image["content"]["data"]).startswith(b"\x89PNG")
    assert answer == {"role": "assistant", "content": {"type": "text", "text": "A square."}}
    status, got = await api("POST", GET_PROMPT, {"name": "south__with_resource", "arguments": {}})
    (embedded,) = got["messages"]
    assert embedded["content"]["type"] == "resource"
    assert embedded["content"]["resource"]["text"] == "readme of south"


async def test_bad_prompt_requests_say_what_to_fix(api: Api) -> None:
    await connect_both(api)
    status, reply = await api("POST", GET_PROMPT, {"arguments": {}})
    assert status == 400 and reply["fields"] == {"name": "required string"}
    status, reply = await api("POST", GET_PROMPT, {"name": "north__greeting", "arguments": []})
    assert status == 400 and reply["fields"] == {"arguments": "object required"}
    status, reply = await api(
        "POST", GET_PROMPT, {"name": "north__greeting", "arguments": {"who": 3, "mood": None}}
    )
    assert status == 400 and "Prompt arguments are text" in reply["message"]
    assert reply["fields"] == {
        "arguments.mood": "string required",
        "arguments.who": "string required",
    }
    status, reply = await api("POST", GET_PROMPT, raw=b"not json")
    assert status == 400 and "not valid JSON" in reply["message"]
    status, reply = await api("POST", GET_PROMPT, {"name": "east__greeting"})
    assert status == 404 and "No prompt named 'east__greeting'" in reply["message"]
    # The server fails on a missing argument; the answer names it.
    status, reply = await api("POST", GET_PROMPT, {"name": "north__greeting"})
    assert (status, reply["error"]) == (400, "invalid"), reply
    assert reply["message"] == "The prompt 'north__greeting' needs 'who'."
    assert reply["fields"] == {"arguments.who": "required"}


@pytest.mark.parametrize(
    ("code", "asked", "status"),
    [
        (-32002, "resource", 404),  # MCP 2025-11-25's "resource not found"
        (-32602, "resource", 404),  # SEP-2164's
        (-32602, "prompt", 400),
        (-32601, "prompt", 404),  # a server without prompts
        (-32603, "resource", 502),
        (-1, "prompt", 502),
    ],
)
def test_upstream_errors_map_to_statuses(code: int, asked: Any, status: int) -> None:
    noisy = "it broke\n  [type=value_error, input_value='x', input_type=str]"
    error = upstream_error(MCPError(code, noisy), asked)
    assert error.status == status
    assert error.message.endswith(": it broke"), error.message


class TestHubMode:
    @pytest.fixture(autouse=True)
    def _users(self, hub: Callable[..., None]) -> None:
        hub(alice=hub_user("alice"), bob=hub_user("bob"), root=hub_user("root", admin=True))

    @pytest.fixture
    def jp_server_config(self, dodo_config: dict[str, Any]) -> dict[str, Any]:
        return hub_server_config(dodo_config)

    async def test_only_the_owner_sees_resources_and_prompts(self, api: Api) -> None:
        calls = [
            ("GET", RESOURCES, None, {}),
            ("GET", READ, None, {"uri": "dodo://north/note://readme"}),
            ("GET", PROMPTS, None, {}),
            ("POST", GET_PROMPT, {"name": "north__greeting", "arguments": {"who": "x"}}, {}),
        ]
        for method, path, body, query in calls:
            for visitor in ("bob", "root"):  # a hub admin visiting is still a visitor
                headers = {"Authorization": f"token {visitor}"}
                status, reply = await api(method, path, body, headers=headers, **query)
                assert status == 403, (visitor, method, path)
                assert f"{visitor!r} is not the owner of this server" in reply["message"]
        alice = {"Authorization": "token alice"}
        assert (await api("GET", RESOURCES, headers=alice))[0] == 200
        assert (await api("GET", PROMPTS, headers=alice))[0] == 200
