"""The kernel-side client without a kernel: how dodo is found, how tools become OpenAI
specs and Python functions, how results display, how magic arguments are read."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Annotated, Any

import pytest
from IPython.core.error import UsageError
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from dodo_jupyter.client import (
    DodoClient,
    DodoClientError,
    Endpoint,
    NotFoundError,
    Tool,
    ToolResult,
    discover,
)
from dodo_jupyter.client.adapters import openai_tools
from dodo_jupyter.client.errors import clean_message
from dodo_jupyter.client.typed_api import tool_function
from dodo_jupyter.magics import parse_arguments, parse_cell

from .mcp_peers import running_mcp_server, tool_server


def write_server_file(runtime: Path, pid: int, url: str, token: str) -> None:
    runtime.mkdir(parents=True, exist_ok=True)
    info = {"pid": pid, "url": url, "token": token, "base_url": "/"}
    (runtime / f"jpserver-{pid}.json").write_text(json.dumps(info))


def test_gateway_settings_from_the_environment(tmp_path: Path) -> None:
    write_server_file(tmp_path, 41, "http://127.0.0.1:8888/", "jtoken")
    found = discover(
        {
            "DODO_MCP_URL": "http://127.0.0.1:8888/dodo/mcp",
            "DODO_MCP_TOKEN": "dodo_secret",
            "JUPYTER_RUNTIME_DIR": str(tmp_path),
        }
    )
    assert found.mcp_url == "http://127.0.0.1:8888/dodo/mcp"
    assert found.mcp_headers == {"Authorization": "Bearer dodo_secret"}
    # The REST API: the runtime file whose URL the gateway URL starts with.
    assert found.server_url == "http://127.0.0.1:8888/"
    assert found.api_headers == {"Authorization": "token jtoken"}
    assert "dodo_secret" not in repr(found) and "jtoken" not in repr(found)


def test_the_parent_server_is_chosen_among_several(tmp_path: Path) -> None:
    write_server_file(tmp_path, 41, "http://127.0.0.1:8888/", "first")
    write_server_file(tmp_path, 42, "http://127.0.0.1:9999/lab-base/", "second")
    found = discover({"JPY_PARENT_PID": "42", "JUPYTER_RUNTIME_DIR": str(tmp_path)})
    assert found.mcp_url == "http://127.0.0.1:9999/lab-base/dodo/mcp"
    assert found.mcp_headers == found.api_headers == {"Authorization": "token second"}
    assert found.source == "jupyter server pid 42"


def test_jupyterhub_environment(tmp_path: Path) -> None:
    found = discover(
        {
            "JUPYTERHUB_API_TOKEN": "hubtoken",
            "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:41000/user/alice",
            "JUPYTER_RUNTIME_DIR": str(tmp_path),
        }
    )
    assert found.mcp_url == "http://127.0.0.1:41000/user/alice/dodo/mcp"
    assert found.api_headers == {"Authorization": "token hubtoken"}


def test_nothing_found_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="DODO_MCP_URL and DODO_MCP_TOKEN"):
        discover({"JUPYTER_RUNTIME_DIR": str(tmp_path / "empty")})


SCHEMA = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What to look for."},
        "limit": {"type": "integer", "default": 10},
        "mode": {"type": "string", "enum": ["fast", "exact"]},
        "class": {"type": "string"},
    },
    "required": ["query", "class"],
}


class RecordingClient(DodoClient):
    """A DodoClient whose calls are recorded instead of sent."""

    def __init__(self) -> None:
        super().__init__(Endpoint("http://127.0.0.1:1/dodo/mcp", {}))
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        raise_on_error: bool = True,
        structured_only: bool = False,
    ) -> ToolResult:
        assert structured_only  # a tool function reads only the value
        self.calls.append((name, dict(arguments or {})))
        return ToolResult(name, [{"type": "text", "text": '{"hits": 3}'}])


def test_tools_become_python_functions_with_signatures_and_docstrings() -> None:
    client = RecordingClient()
    search = tool_function(client, Tool("docs__search", "Search the docs.", SCHEMA))
    signature = inspect.signature(search)
    assert list(signature.parameters) == ["query", "class_", "limit", "mode"]
    assert all(p.kind is p.KEYWORD_ONLY for p in signature.parameters.values())
    assert signature.parameters["query"].annotation is str
    assert signature.parameters["limit"].default == 10
    assert search.__name__ == "search" and search.gateway_name == "docs__search"
    assert search.__doc__ is not None and "What to look for." in search.__doc__
    assert "One of: 'fast', 'exact'." in search.__doc__
    assert search(query="cats", class_="mammal", mode="fast") == {"hits": 3}
    assert client.calls == [("docs__search", {"query": "cats", "class": "mammal", "mode": "fast"})]
    with pytest.raises(TypeError):
        search(limit=3)  # the required arguments are missing


def test_openai_specs() -> None:
    (spec,) = openai_tools([Tool("docs__search", "Search the docs.", SCHEMA)])
    assert spec == {
        "type": "function",
        "function": {
            "name": "docs__search",
            "description": "Search the docs.",
            "parameters": SCHEMA,
        },
    }


def test_results_display_richly_and_give_python_values() -> None:
    text = ToolResult("t", [{"type": "text", "text": "**bold**"}])
    assert text.value == "**bold**"
    assert text._repr_mimebundle_()["text/markdown"] == "**bold**"
    structured = ToolResult("t", [{"type": "text", "text": "{}"}], structured={"a": 1})
    assert structured.value == {"a": 1}
    assert "&quot;a&quot;: 1" in structured._repr_mimebundle_()["text/html"]
    image = ToolResult("t", [{"type": "image", "mimeType": "image/png", "data": "iVBOR"}])
    assert image.value is image
    captioned = ToolResult("t", [{"type": "text", "text": "a square"}, *image.content])
    assert captioned.value is captioned  # the picture is not dropped for its caption
    assert '<img src="data:image/png;base64,iVBOR"' in image._repr_mimebundle_()["text/html"]
    hostile = ToolResult(
        "t", [{"type": "resource", "resource": {"uri": "x:<b>", "text": "<script>"}}]
    )
    assert "<script>" not in hostile._repr_mimebundle_()["text/html"]


def test_structured_content_is_shown_only_when_it_adds_something() -> None:
    same = ToolResult("t", [{"type": "text", "text": '{"a": 1}'}], structured={"a": 1})
    wrapped = ToolResult("t", [{"type": "text", "text": "5"}], structured={"result": 5})
    more = ToolResult("t", [{"type": "text", "text": "done"}], structured={"rows": 3})
    assert not same.structured_adds and not wrapped.structured_adds and more.structured_adds
    assert same._plain().count('"a"') == 1 and wrapped._plain() == "5"
    assert wrapped._repr_mimebundle_()["text/markdown"] == "5"
    assert '"rows": 3' in more._plain() and "structured content" in more._html()


def test_messages_lose_library_internals() -> None:
    upstream = (
        "add: 1 validation error for addArguments\nb\n  Input should be a valid number "
        "[type=float_parsing, input_value='x', input_type=str]\n    For further information "
        "visit https://errors.pydantic.dev/2.14/v/float_parsing"
    )
    cleaned = clean_message(upstream)
    assert cleaned == "add: 1 validation error for addArguments b Input should be a valid number"
    assert len(clean_message("x" * 1000)) == 400
    passed_on = "dodo://a/x: The MCP server failed: MCPError: Unknown resource: x"
    assert clean_message(passed_on) == "dodo://a/x: The MCP server failed: Unknown resource: x"
    link = "https://auth.example.com/authorize?" + "&".join(f"p{i}=v{i}" for i in range(60))
    long = "Open this URL to grant mcp:admin: " + link + " (the link works until 12:00 UTC)."
    assert clean_message(long) == "Open this URL to grant mcp:admin: " + link + "…"


def test_magic_arguments() -> None:
    assert parse_arguments(["a=2", "b=x y", 'c={"k": [1]}', "d=true"]) == {
        "a": 2,
        "b": "x y",
        "c": {"k": [1]},
        "d": True,
    }
    with pytest.raises(UsageError, match="key=value"):
        parse_arguments(["oops"])
    assert parse_cell('{"a": 1}') == {"a": 1}
    assert parse_cell("a: 1\nb: [x, y]\n") == {"a": 1, "b": ["x", "y"]}
    with pytest.raises(UsageError, match="one object"):
        parse_cell("- 1\n- 2")


class CountConnections:
    """ASGI middleware: the client addresses (one per TCP connection) MCP requests came
    from, and each one's headers (the server's readiness probe left out)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.peers: set[tuple[str, int]] = set()
        self.requests = 0
        self.headers: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/mcp":
            self.peers.add(tuple(scope["client"]))
            self.requests += 1
            self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


def test_code_calling_tool_after_tool_keeps_one_connection() -> None:
    """The kernel client holds its connection open: ten calls (from new DodoClient
    objects, as a loop in a notebook may make them) are ten POSTs on one connection, after
    one discovery, with no session (the server speaks 2026-07-28)."""
    counted = CountConnections(tool_server("plain").streamable_http_app(host="127.0.0.1"))
    with running_mcp_server(app=counted) as server:
        endpoint = Endpoint(mcp_url=server.url, mcp_headers={})
        for n in range(10):
            assert DodoClient(endpoint).call_tool("double", {"n": n}).text == str(2 * n)
    assert len(counted.peers) == 1
    assert counted.requests == 11
    methods = [h.get("mcp-method") for h in counted.headers]
    assert methods == ["server/discover"] + ["tools/call"] * 10
    assert all(h["mcp-protocol-version"] == "2026-07-28" for h in counted.headers)
    assert not any("mcp-session-id" in h for h in counted.headers)


def regional_server() -> MCPServer:
    """A tool with an argument that a 2026-07-28 call repeats in a header."""
    mcp = MCPServer("regional")

    @mcp.tool()
    def forecast(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], days: int = 1
    ) -> str:
        """The weather of a region."""
        return f"sunny in {region} for {days} days"

    return mcp


def test_arguments_a_tool_wants_in_headers_are_sent_there() -> None:
    """A tool whose schema marks an argument ``x-mcp-header`` is refused by a 2026-07-28
    server unless the call repeats it as ``Mcp-Param-<name>``: the client learns that from
    the listing, also when the first call comes before any listing."""
    counted = CountConnections(regional_server().streamable_http_app(host="127.0.0.1"))
    with running_mcp_server(app=counted) as server:
        client = DodoClient(Endpoint(mcp_url=server.url, mcp_headers={}), timeout=30)
        assert client.call_tool("forecast", {"region": "eu", "days": 2}).text == (
            "sunny in eu for 2 days"
        )
        sent = [h for h in counted.headers if h.get("mcp-method") == "tools/call"]
        assert [h.get("mcp-param-region") for h in sent] == [None, "eu"]  # refused, then sent
        assert client.call_tool("forecast", {"region": "north"}).text.startswith("sunny in north")
        assert counted.headers[-1]["mcp-param-region"] == "north"


class AnswerLost:
    """ASGI middleware: a ``tools/call`` is served, but its answer is lost (the server
    fails with HTTP 500 after the tool ran)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"mcp-method") == b"tools/call":

            async def lose(message: Any) -> None:
                return None

            await self.app(scope, receive, lose)
            raise RuntimeError("the answer was lost on its way")
        await self.app(scope, receive, send)


def test_a_call_whose_answer_was_lost_is_not_made_again() -> None:
    """The client sends a request again only when the server cannot have acted on it: a
    tool that ran, but whose answer never came, is not run a second time."""
    posted: list[str] = []
    mcp = MCPServer("comments")

    @mcp.tool()
    def add_comment(body: str) -> str:
        """Post a comment."""
        posted.append(body)
        return "posted"

    with running_mcp_server(app=AnswerLost(mcp.streamable_http_app(host="127.0.0.1"))) as server:
        client = DodoClient(Endpoint(mcp_url=server.url, mcp_headers={}), timeout=30)
        with pytest.raises(DodoClientError, match=r"failed \(HTTP 500"):
            client.call_tool("add_comment", {"body": "once"})
    assert posted == ["once"]
