"""Tools as a typed Python API (``from dodo_jupyter import tools``) and the text of the
code-mode ``search_tools``: signatures and docstrings from real MCP SDK schemas and from
hand-written edge cases, the name mangling and its way back, each detail level of the
search, and calls through the real gateway with ``.aio``. In a real kernel (sync calls,
Tab completion, Shift-Tab, the call history): tests/test_notebook.py."""

from __future__ import annotations

import asyncio
import base64
import inspect
from collections.abc import Iterator
from typing import Any

import mcp_types
import pytest

from dodo_jupyter.client import DodoClient, Endpoint, Tool, ToolError, ToolResult
from dodo_jupyter.client.python_names import python_name, python_names, tool_paths
from dodo_jupyter.client.schema_types import format_signature
from dodo_jupyter.client.typed_api import build_namespaces, tool_function, tool_functions
from dodo_jupyter.codemode.search import python_path, search_tools
from dodo_jupyter.runtime import DodoRuntime

from .conftest import Api
from .mcp_peers import RunningServer, running_mcp_server, typed_server
from .test_governance_gateway import agent

ALIAS = "typed-api"


def gateway_tools() -> list[mcp_types.Tool]:
    """:func:`typed_server`'s tools under the names the gateway gives them."""
    listed = asyncio.run(typed_server().list_tools())
    return [tool.model_copy(update={"name": f"{ALIAS}__{tool.name}"}) for tool in listed]


def plain(tool: mcp_types.Tool) -> Tool:
    return Tool(tool.name, tool.description or "", tool.input_schema, tool.output_schema or {})


class Recorder:
    """A client whose calls are recorded and answered with ``answer``."""

    def __init__(self, answer: ToolResult | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answer = answer or ToolResult("t", [{"type": "text", "text": '{"hits": 3}'}])

    def call_tool(
        self, name: str, arguments: dict[str, Any], *, structured_only: bool = False
    ) -> ToolResult:
        assert structured_only  # a tool function reads only the value
        self.calls.append((name, arguments))
        return self.answer

    @property
    def aio(self) -> Any:
        raise AssertionError("not used here")


def signatures(functions: dict[str, Any]) -> dict[str, str]:
    return {fn.python_path: format_signature(inspect.signature(fn)) for fn in functions.values()}


def test_signatures_and_docstrings_come_from_the_schemas() -> None:
    functions = tool_functions(Recorder(), [plain(t) for t in gateway_tools()])
    assert signatures(functions) == {
        "tools.typed_api.add": "(*, a: int, b: int = 0) -> int",
        "tools.typed_api.find_items": (
            "(*, query: str, mode: Literal['fast', 'exact'] = 'fast', "
            "tags: list[str] | None = None) -> list[str]"
        ),
        "tools.typed_api.store": "(*, item: dict[str, Any]) -> dict[str, Any]",
        "tools.typed_api.class_": "(*, text: str) -> str",
        "tools.typed_api.fail": "(*, reason: str) -> str",
        "tools.typed_api.picture": "(*, size: int = 8) -> Any",
    }
    find = functions[f"{ALIAS}__find-items"]
    assert find.__name__ == "find_items" and find.__qualname__ == "tools.typed_api.find_items"
    assert find.__doc__ == (
        "Find stored items by name.\n\n"
        "Parameters\n----------\n"
        "query : str\n    Words to look for.\n"
        "mode : Literal['fast', 'exact'], default 'fast'\n    One of: 'fast', 'exact'.\n"
        "tags : list[str] | None, default None\n\n"
        "Returns\n-------\nlist[str]\n\n"
        "Gateway tool typed-api__find-items; in async code: "
        "await tools.typed_api.find_items.aio(...)."
    )
    store = functions[f"{ALIAS}__store"].__doc__ or ""
    assert (
        "item : dict[str, Any]\n    An item to store.\n    Fields:\n"
        "        name : str\n            What it is called.\n"
        "        qty : int, default 1\n            How many.\n"
    ) in store
    assert inspect.signature(find.aio) == inspect.signature(find)  # the async form too


def test_edge_cases_of_hand_written_schemas() -> None:
    schema = {
        "type": "object",
        "properties": {
            "class": {"type": "integer"},
            "max-results": {"type": ["integer", "null"], "description": "At most."},
            "since": {"type": "string"},
            "kind": {"const": "pdf"},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}},
                    "required": ["id"],
                },
            },
        },
        "required": ["class"],
    }
    recorder = Recorder()
    fn = tool_function(recorder, Tool("docs__3d-search", "Search.", schema))
    assert fn.python_path == "tools.docs.x3d_search"
    assert format_signature(inspect.signature(fn)) == (
        "(*, class_: int, max_results: int | None = None, since: str | None = None, "
        "kind: Literal['pdf'] | None = None, rows: list[dict[str, Any]] | None = None) -> Any"
    )
    assert fn.parameter_names == {
        "class_": "class",
        "max_results": "max-results",
        "since": "since",
        "kind": "kind",
        "rows": "rows",
    }
    assert "Fields of each item:\n        id : int" in (fn.__doc__ or "")
    # Keyword arguments go out under the schema's names; None on a parameter whose schema
    # does not allow null is left out, an explicit None where it does is sent.
    assert fn(class_=1, since=None, max_results=None) == {"hits": 3}
    assert recorder.calls == [("docs__3d-search", {"class": 1, "max-results": None})]
    with pytest.raises(TypeError, match=r"keyword arguments only: tools\.docs\.x3d_search\(\*, cl"):
        fn(1)
    with pytest.raises(TypeError, match=r"\(\): missing a required argument: 'class_'. It is "):
        fn()

    anything = tool_function(recorder, Tool("docs__raw", "", {}))
    assert format_signature(inspect.signature(anything)) == "(**arguments: Any) -> Any"
    anything(q="x", n=2)
    nothing = tool_function(recorder, Tool("docs__now", "", {"type": "object", "properties": {}}))
    assert format_signature(inspect.signature(nothing)) == "() -> Any"
    nothing()
    assert recorder.calls[-2:] == [("docs__raw", {"q": "x", "n": 2}), ("docs__now", {})]
    assert (nothing.__doc__ or "").startswith("The MCP tool docs__now.")


def test_names_are_python_identifiers_and_lead_back_to_the_gateway_name() -> None:
    assert [python_name(n) for n in ["srv-1a2b3c", "get.item", "3d", "_x", "", "class"]] == [
        "srv_1a2b3c",
        "get_item",
        "x3d",
        "x_x",
        "x",
        "class_",
    ]
    # Names that come out the same: the unchanged one keeps it, the other gets a hash.
    collided = python_names(["get-item", "get_item"])
    assert collided["get_item"] == "get_item"
    assert collided["get-item"].startswith("get_item_") and len(collided["get-item"]) == 15
    assert python_names(["get-item", "get_item"]) == python_names(["get_item", "get-item"])
    names = ["a__get-item", "a__get_item", "refresh__x", "x3d__y", "3d__y", "a__import"]
    paths = tool_paths(names)
    assert paths["refresh__x"] == ("refresh_", "x")  # tools.refresh is the API's own
    assert paths["x3d__y"] == ("x3d", "y") and paths["3d__y"][0].startswith("x3d_")
    assert paths["a__import"] == ("a", "import_")
    assert len(set(paths.values())) == len(names)
    functions = tool_functions(Recorder(), [Tool(n) for n in names])
    assert {fn.gateway_name for fn in functions.values()} == set(names)
    for name, fn in functions.items():
        assert fn.python_path == "tools.{}.{}".format(*paths[name])
        assert python_path(name, among=names) == fn.python_path
    assert python_path("demo__add") == "tools.demo.add"
    assert python_path("srv-1a2b3c__get-item") == "tools.srv_1a2b3c.get_item"


def test_search_tools_at_each_detail_level() -> None:
    tools = gateway_tools()
    assert search_tools(tools, "item", "names") == (
        "2 of 6 tools match 'item' (call as tools.<server>.<tool>(...); "
        'detail="signatures" or "full" for more):\n'
        "tools.typed_api.find_items: Find stored items by name.\n"
        "tools.typed_api.store: Store an item."
    )
    assert search_tools(tools, "ITEM") == (
        "2 of 6 tools match 'ITEM' (keyword arguments only; "
        'detail="full" for the parameters\' docs):\n'
        "# tools.typed_api\n"
        "def find_items(*, query: str, mode: Literal['fast', 'exact'] = 'fast', "
        "tags: list[str] | None = None) -> list[str]:\n"
        '    """Find stored items by name."""\n'
        "def store(*, item: dict[str, Any]) -> dict[str, Any]:\n"
        '    """Store an item."""'
    )
    full = search_tools(tools, "add", "full")
    assert full.startswith("1 of 6 tools match 'add':\n# tools.typed_api\n")
    assert full.endswith(
        "def add(*, a: int, b: int = 0) -> int:\n"
        '    """Add two whole numbers.\n\n'
        "    Parameters\n    ----------\n    a : int\n    b : int, default 0\n\n"
        "    Returns\n    -------\n    int\n\n"
        "    Gateway tool typed-api__add; in async code: await tools.typed_api.add.aio(...).\n"
        '    """'
    )


def test_search_ranks_lists_all_and_limits() -> None:
    tools = gateway_tools()
    everything = search_tools(tools, "", "names").splitlines()
    assert everything[0].startswith("6 tools (call as")
    assert [line.split(":")[0] for line in everything[1:]] == [
        "tools.typed_api.add",
        "tools.typed_api.class_",
        "tools.typed_api.fail",
        "tools.typed_api.find_items",
        "tools.typed_api.picture",
        "tools.typed_api.store",
    ]
    # More words matched first, then matches in the name before the description's.
    ranked = search_tools(tools, "add whole store", "names").splitlines()[1:]
    assert [line.split(":")[0] for line in ranked] == [
        "tools.typed_api.add",  # 2 words
        "tools.typed_api.store",  # 1, in its name
        "tools.typed_api.find_items",  # 1, in its description ("stored")
    ]
    limited = search_tools(tools, "blue item", "names", limit=2).splitlines()
    assert limited == [
        "3 of 6 tools match 'blue item', the best 2 shown (raise limit for more) "
        '(call as tools.<server>.<tool>(...); detail="signatures" or "full" for more):',
        "tools.typed_api.find_items: Find stored items by name.",
        "tools.typed_api.picture: A blue square, ``size`` pixels wide.",
    ]
    assert search_tools(tools, "teleport") == (
        "No tool matches 'teleport' (6 tools; an empty query lists them all)."
    )
    with pytest.raises(ValueError, match="detail must be one of names, signatures, full"):
        search_tools(tools, "", "everything")  # type: ignore[arg-type]


# -- through the real gateway -------------------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[RunningServer]:
    with running_mcp_server(app=typed_server().streamable_http_app(host="127.0.0.1")) as up:
        yield up


@pytest.mark.usefixtures("upstreams_closed_first")
async def test_aio_calls_through_the_gateway_and_what_search_shows_is_what_code_gets(
    api: Api, runtime_: DodoRuntime, upstream: RunningServer, gateway_url: str
) -> None:
    entry = {"id": ALIAS, "url": upstream.url, "auth_type": "none"}
    assert (await api("POST", "dodo/api/admin/approved-mcps", entry))[0] == 201
    started = await api("POST", "dodo/api/mcp/start-auth", {"catalog_id": ALIAS})
    assert started[1]["state"] == "connected", started
    token = (await runtime_.tokens.create(runtime_.resolver.owner, "code", kind="kernel")).token
    client = DodoClient(Endpoint(gateway_url, {"Authorization": f"Bearer {token}"}))
    namespaces = build_namespaces(client, await client.aio.list_tools())
    typed = namespaces["typed_api"]
    assert dir(typed) == ["add", "class_", "fail", "find_items", "picture", "store"]

    assert await typed.add.aio(a=2, b=3) == 5  # the SDK's {"result": 5}, unwrapped
    assert await typed.find_items.aio(query="bolt", tags=["x"]) == ["bolt/fast/x"]
    assert await typed.store.aio(item={"name": "bolt"}) == {"stored": "bolt", "qty": 1}
    assert await typed.class_.aio(text="apple") == "fruit"
    with pytest.raises(ToolError, match="the store is on fire") as failed:
        await typed.fail.aio(reason="the store is on fire")
    assert failed.value.result.is_error
    picture = await typed.picture.aio(size=4)
    assert isinstance(picture, ToolResult)  # shows as an image in Jupyter
    (block,) = picture.content
    assert base64.b64decode(block["data"]).startswith(b"\x89PNG")
    with pytest.raises(AttributeError, match="did you mean 'add'"):
        _ = typed.ad

    async with agent(runtime_, gateway_url) as mcp:
        listed = (await mcp.list_tools()).tools
    shown = search_tools(listed, "", "signatures")
    for name in dir(typed):
        fn = getattr(typed, name)
        assert f"def {name}{format_signature(inspect.signature(fn))}:" in shown
