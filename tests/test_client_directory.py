"""Resources and prompts from code and from ``%dodo``: :class:`AsyncDodoClient`,
:class:`DodoClient` and the magics against a real gateway (a real Jupyter server with
dodo) and two real MCP servers on loopback whose URIs and prompt names collide; how what
they answer displays in a notebook."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError

from dodo_jupyter.client import (
    AsyncDodoClient,
    DodoClient,
    DodoClientError,
    Endpoint,
    PromptResult,
    ResourceContent,
    ResourceResult,
    ResourceTemplate,
)
from dodo_jupyter.magics import DodoMagics, Table

from .conftest import Api
from .mcp_peers import DATA_BIN, RunningServer, content_server, running_mcp_server

pytestmark = pytest.mark.usefixtures("upstreams_closed_first")


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


async def connected(api: Api, gateway_url: str) -> Endpoint:
    """The gateway, with a token, once both servers are connected."""
    for name in ("north", "south"):
        status, body = await api("POST", "dodo/api/mcp/start-auth", {"catalog_id": name})
        assert body["state"] == "connected", body
    status, created = await api("POST", "dodo/api/user/mcp-tokens", {"label": "client"})
    assert status == 201
    return Endpoint(gateway_url, {"Authorization": f"Bearer {created['token']}"}, source="test")


async def test_resources_from_code(api: Api, gateway_url: str) -> None:
    endpoint = await connected(api, gateway_url)
    dodo = AsyncDodoClient(endpoint, timeout=30)
    resources = {r.uri: r for r in await dodo.list_resources()}
    assert len(resources) == 8
    logo = resources["dodo://south/note://logo.png"]
    assert (logo.server_id, logo.original_uri, logo.mime_type) == (
        "south",
        "note://logo.png",
        "image/png",
    )
    templates = await dodo.list_resource_templates()
    assert [t.uri_template for t in templates] == [
        "dodo://north/note://items/{item}",
        "dodo://south/note://items/{item}",
    ]
    assert templates[1].variables == ["item"]

    readme = await dodo.read_resource("dodo://north/note://readme")
    assert readme.text == "# north\n\nreadme of north" and readme.value == readme.text
    assert readme.mime_type == "text/markdown"
    config = await dodo.read_resource("dodo://south/note://config.json")
    assert config.value == config.json() == {"server": "south", "limits": {"calls": 3}}
    image = await dodo.read_resource("dodo://south/note://logo.png")
    assert image.data.startswith(b"\x89PNG") and image.value == image.data and image.text == ""
    data = await dodo.read_resource("dodo://north/note://data.bin")
    assert data.data == DATA_BIN
    item = await dodo.read_resource(templates[1].expand(item="a b/c"))
    assert item.text == "item a b/c of south"  # percent-encoded in the URI, decoded upstream

    with pytest.raises(DodoClientError) as missing:
        await dodo.read_resource("dodo://north/note://nothing")
    message = str(missing.value)
    assert message.startswith("dodo://north/note://nothing: ")
    assert "Unknown resource: note://nothing" in message and "MCPError" not in message
    with pytest.raises(DodoClientError, match="No connected server 'west'"):
        await dodo.read_resource("dodo://west/note://readme")


async def test_prompts_from_code(api: Api, gateway_url: str) -> None:
    endpoint = await connected(api, gateway_url)
    dodo = AsyncDodoClient(endpoint, timeout=30)
    prompts = {p.name: p for p in await dodo.list_prompts()}
    assert len(prompts) == 6
    greeting = prompts["south__greeting"]
    assert (greeting.server_id, greeting.original_name) == ("south", "greeting")
    assert [(a.name, a.required) for a in greeting.arguments] == [("who", True), ("mood", False)]

    got = await dodo.get_prompt("south__greeting", who="ada", mood=3)  # 3 is sent as "3"
    assert got.text == "Hello ada, from south (3)"
    assert got.description == "Greet someone."
    image = await dodo.get_prompt("north__with_image")
    assert [m["role"] for m in image.messages] == ["user", "assistant"]
    assert image.messages[0]["content"]["type"] == "image"
    embedded = await dodo.get_prompt("north__with_resource")
    assert embedded.messages[0]["content"]["resource"]["text"] == "readme of north"

    with pytest.raises(DodoClientError, match="No prompt named 'east__greeting'"):
        await dodo.get_prompt("east__greeting")
    with pytest.raises(DodoClientError) as missing:
        await dodo.get_prompt("north__greeting")
    assert "Missing required arguments" in str(missing.value)
    assert "MCPError" not in str(missing.value)


async def test_the_synchronous_client(api: Api, gateway_url: str) -> None:
    endpoint = await connected(api, gateway_url)
    dodo = DodoClient(endpoint, timeout=30)

    def use() -> tuple[str, str, int]:
        return (
            dodo.read_resource("dodo://south/note://readme").text,
            dodo.get_prompt("north__greeting", who="bo").text,
            len(dodo.list_prompts()) + len(dodo.list_resources()),
        )

    # The test's loop runs the Jupyter server; the client runs on its own thread's loop.
    assert await asyncio.to_thread(use) == (
        "# south\n\nreadme of south",
        "Hello bo, from north (cheerful)",
        14,
    )


async def test_magics(api: Api, gateway_url: str) -> None:
    endpoint = await connected(api, gateway_url)
    magics = DodoMagics(None, client_factory=lambda: DodoClient(endpoint, timeout=30))

    def run(line: str) -> Any:
        return magics.dodo(line)

    async def magic(line: str) -> Any:
        return await asyncio.to_thread(run, line)

    listed = await magic("resources south")
    assert isinstance(listed, Table)
    assert [r["uri"] for r in listed.rows] == [
        "dodo://south/note://readme",
        "dodo://south/note://config.json",
        "dodo://south/note://logo.png",
        "dodo://south/note://data.bin",
        "dodo://south/note://items/{item}",
    ]
    assert "template: %dodo read <uri> item=…" in listed.rows[-1]["description"]
    assert "<table>" in listed._repr_html_() and "note://logo.png" in repr(listed)
    assert len((await magic("resources --search logo")).rows) == 2

    readme = await magic("read dodo://north/note://readme")
    assert isinstance(readme, ResourceResult)
    assert readme._repr_mimebundle_()["text/markdown"] == "# north\n\nreadme of north"
    item = await magic("read dodo://north/note://items/{item} item=9")
    assert item.text == "item 9 of north"
    image = await magic("read dodo://north/note://logo.png")
    assert base64.b64decode(image._repr_mimebundle_()["image/png"]).startswith(b"\x89PNG")

    prompts = await magic("prompts --search greet")
    assert [(r["name"], r["arguments"]) for r in prompts.rows] == [
        ("north__greeting", "who=… [mood=…]"),
        ("south__greeting", "who=… [mood=…]"),
    ]
    got = await magic("prompt south__greeting who='Ada Lovelace' mood=3")
    assert isinstance(got, PromptResult) and got.text == "Hello Ada Lovelace, from south (3)"

    for line, expected in [
        ("read", "Give the resource's URI"),
        ("read dodo://north/note://items/{item}", "Give a value for each variable"),
        ("read dodo://north/note://readme oops", "Values are name=value"),
        ("prompt", "Give the prompt's name"),
        ("prompt north__greeting", "Missing required arguments"),
        ("read dodo://north/note://nothing", "Unknown resource: note://nothing"),
        ("resources --bogus", "%dodo help lists the commands"),
    ]:
        with pytest.raises(UsageError) as error:
            await magic(line)
        assert expected in str(error.value), (line, str(error.value))
        assert "MCPError" not in str(error.value)


def test_resource_contents_display_as_what_they_are() -> None:
    png = base64.b64encode(b"\x89PNG-fake").decode()
    image = ResourceContent("dodo://a/x.png", "image/png", blob=png)._repr_mimebundle_()
    assert image["image/png"] == png and "9 bytes of image/png" in image["text/plain"]
    svg = ResourceContent("dodo://a/x.svg", "image/svg+xml", blob=png)._repr_mimebundle_()
    assert list(svg) == ["text/plain"]  # not shown as a picture: SVG can carry scripts
    data = ResourceContent("dodo://a/x", "application/json", text='{"a": [1]}')
    assert data._repr_mimebundle_()["application/json"] == {"a": [1]}
    broken = ResourceContent("dodo://a/y", "application/json", text="{nope")
    assert broken._repr_mimebundle_() == {"text/plain": "{nope"}
    html = ResourceContent("dodo://a/z", "text/html", text="<script>x</script>")
    assert html._repr_mimebundle_() == {"text/plain": "<script>x</script>"}
    both = ResourceResult("dodo://a/x", [ResourceContent("u", text="one"), data])
    assert both.value == both.text == 'one\n{"a": [1]}'  # not JSON as a whole
    with pytest.raises(ValueError, match="dodo://a/x is not JSON"):
        both.json()
    assert ResourceResult("dodo://a/e", [])._repr_mimebundle_() == {
        "text/plain": "dodo://a/e has no content."
    }


def test_templates_expand_with_encoded_values() -> None:
    template = ResourceTemplate("dodo://docs/file:///{dir}/{name}")
    assert template.variables == ["dir", "name"]
    assert template.expand(dir="a b", name="c/d") == "dodo://docs/file:///a%20b/c%2Fd"
    with pytest.raises(KeyError, match="name"):
        template.expand(dir="x")


def test_prompt_results_display_messages_by_role() -> None:
    result = PromptResult(
        "p",
        [
            {"role": "user", "content": {"type": "text", "text": "<b>hi</b>"}},
            {"role": "user", "content": {"type": "image", "mimeType": "image/png", "data": "QQ=="}},
            {
                "role": "assistant",
                "content": {"type": "resource", "resource": {"uri": "x:r", "text": "body"}},
            },
        ],
        "A prompt.",
    )
    bundle = result._repr_mimebundle_()
    assert "&lt;b&gt;hi&lt;/b&gt;" in bundle["text/html"] and "<b>hi" not in bundle["text/html"]
    assert '<img src="data:image/png;base64,QQ=="' in bundle["text/html"]
    assert bundle["text/plain"].splitlines()[:3] == [
        "user: <b>hi</b>",
        "",
        "user: [image image/png]",
    ]
    assert "assistant: [resource x:r]\nbody" in bundle["text/plain"]
    assert json.dumps(bundle)  # plain JSON, as an output must be
