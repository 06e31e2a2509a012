"""Real kernels using ``%dodo`` and ``DodoClient`` against a real Jupyter server with dodo
and the demo OAuth MCP server.

The kernels get what a kernel started by that server gets: ``DODO_MCP_URL`` and a gateway
token in ``DODO_MCP_TOKEN``, and the server's runtime directory (where its
``jpserver-<pid>.json`` lies) for the REST API. ``docs/example.ipynb`` is executed as
stored (outputs stripped) and its outputs are checked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import json
import os
import queue
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server

from .jupyter_process import REPO, TOKEN, ServerProcess, free_port
from .mcp_peers import content_server, running_mcp_server, typed_server
from .oauth_peers import callback_query, consent

pytestmark = pytest.mark.notebook

EXAMPLE = REPO / "docs" / "example.ipynb"


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoHandle]:
    with running_demo_server(DemoConfig(port=0)) as handle:
        yield handle


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, demo: DemoHandle) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("nb"), demo)
    proc.start()
    yield proc
    proc.kill()
    proc.client.close()


@pytest.fixture(scope="module")
def gateway_token(server: ServerProcess) -> str:
    created = server.call("POST", "/dodo/api/user/mcp-tokens", {"label": "notebook tests"})
    return str(created["token"])


def kernel_env(server: ServerProcess, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "DODO_", "JPY_"))}
    env.update(
        PYTHONPATH=str(REPO),
        DODO_MCP_URL=f"{server.base}/dodo/mcp",
        DODO_MCP_TOKEN=token,
        JUPYTER_RUNTIME_DIR=str(server.runtime_dir),
    )
    return env


def connect_demo(server: ServerProcess) -> None:
    started = server.call("POST", "/dodo/api/mcp/start-auth", {"catalog_id": "demo"})
    if started["state"] == "connected":
        return
    query = callback_query(asyncio.run(consent(started["authorize_url"])))
    page = server.client.get("/dodo/oauth/callback", params=query)
    assert page.status_code == 200 and "Connected" in page.text


def disconnect_all(server: ServerProcess) -> None:
    for conn in server.call("GET", "/dodo/api/mcp/servers")["servers"]:
        server.call("POST", "/dodo/api/mcp/delete-auth", {"connection_id": conn["id"]})


def outputs_by_tag(nb: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for cell in nb.cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            found[tag] = [dict(output) for output in cell.get("outputs", [])]
    return found


def text_of(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        elif output.get("output_type") == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
        else:
            data = output.get("data", {})
            parts.append(str(data.get("text/plain", "")))
            parts.append(str(data.get("text/html", "")))
            parts.append(str(data.get("text/markdown", "")))
    return "\n".join(parts)


def test_the_example_notebook_runs_in_a_real_kernel(
    server: ServerProcess, gateway_token: str, tmp_path: Path
) -> None:
    connect_demo(server)
    stored = nbformat.read(EXAMPLE, as_version=4)
    assert all(not cell.get("outputs") for cell in stored.cells if cell.cell_type == "code"), (
        "docs/example.ipynb must be kept with its outputs stripped"
    )
    client = NotebookClient(stored, timeout=120, kernel_name="python3")
    nb = client.execute(env=kernel_env(server, gateway_token), cwd=str(tmp_path))
    out = outputs_by_tag(nb)

    assert "%dodo connect" in text_of(out["help"])
    assert "demo" in text_of(out["catalog"])
    servers = out["servers"][0]["data"]
    assert "<table>" in servers["text/html"] and "connected" in servers["text/plain"]
    tools = text_of(out["tools"])
    assert "demo__add" in tools and "demo__echo" not in tools  # --search add
    assert "5" in text_of(out["call"])  # r.value of add(2, 3)
    assert "42" in text_of(out["call-yaml"])
    (image,) = [o["data"] for o in out["call-image"] if "image/png" in o.get("data", {})]
    assert base64.b64decode(image["image/png"]).startswith(b"\x89PNG")  # a picture, exported too
    call = text_of(out["call"])
    assert "structured content" not in call  # the result once, not again as JSON
    assert "demo__add" in text_of(out["client-list"])
    assert "3" in text_of(out["client-call"])
    assert text_of(out["tools-api"]).strip() == "5.0"  # from dodo_jupyter import tools
    functions = text_of(out["functions"])
    assert "(*, a: float, b: float) -> float" in functions and "42" in functions
    assert "demo__" in text_of(out["openai"])
    (error,) = out["error"]  # IPython shows a UsageError as one line, no traceback
    assert error["output_type"] == "stream" and error["name"] == "stderr"
    assert error["text"].startswith("UsageError: demo__no_such_tool")

    assert "Disconnected demo." in text_of(out["disconnect"])
    assert "No connections yet" in text_of(out["servers-after"])

    # No secret in any output: not the gateway token, not the Jupyter server's token.
    everything = json.dumps(nbformat.writes(nb))
    assert gateway_token not in everything and TOKEN not in everything


def test_connect_waits_for_the_consent_and_leaves_no_link(
    server: ServerProcess, gateway_token: str, tmp_path: Path
) -> None:
    disconnect_all(server)
    km, kc = start_new_kernel(
        kernel_name="python3", env=kernel_env(server, gateway_token), cwd=str(tmp_path)
    )
    try:
        kc.execute_interactive("%load_ext dodo_jupyter", timeout=60)
        msg_id = kc.execute("%dodo connect demo --timeout 60")
        authorize_url = None
        displays: list[dict[str, Any]] = []
        reply = None
        while reply is None:
            try:
                msg = kc.get_iopub_msg(timeout=90)
            except queue.Empty:
                pytest.fail("the kernel went quiet while connecting")
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind in ("display_data", "update_display_data"):
                displays.append(msg["content"])
                html = msg["content"]["data"].get("text/html", "")
                link = re.search(r'href="([^"]+)"', html)
                if link and authorize_url is None:
                    authorize_url = link.group(1).replace("&amp;", "&")
                    query = callback_query(asyncio.run(consent(authorize_url)))
                    page = server.client.get("/dodo/oauth/callback", params=query)
                    assert page.status_code == 200
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                reply = kc.get_shell_msg(timeout=30)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert authorize_url is not None
        assert any("Waiting for the authorization" in d["data"]["text/html"] for d in displays)
        final = displays[-1]["data"]["text/html"]
        assert "demo is connected" in final and "href" not in final
        (conn,) = server.call("GET", "/dodo/api/mcp/servers")["servers"]
        assert conn["state"] == "connected"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_errors_say_what_to_do(server: ServerProcess, tmp_path: Path) -> None:
    env = kernel_env(server, "dodo_not-a-real-token")
    env.pop("JUPYTER_RUNTIME_DIR")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "no-servers-here")
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext dodo_jupyter"),
            nbformat.v4.new_code_cell("%dodo call demo__add a=1 b=2"),
            nbformat.v4.new_code_cell("%dodo servers"),
        ]
    )
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    ran = client.execute(env=env, cwd=str(tmp_path))
    (refused,) = ran.cells[1].outputs
    assert refused["text"].startswith("UsageError: The dodo gateway refused")
    assert "DODO_MCP_TOKEN" in refused["text"] and "not-a-real-token" not in refused["text"]
    (no_api,) = ran.cells[2].outputs
    assert no_api["text"].startswith("UsageError:") and "MCP panel" in no_api["text"]


def test_a_changed_gateway_is_picked_up_and_errors_are_one_clean_line(
    server: ServerProcess, gateway_token: str, tmp_path: Path
) -> None:
    connect_demo(server)
    revoked = server.call("POST", "/dodo/api/user/mcp-tokens", {"label": "revoked soon"})
    server.client.delete(f"/dodo/api/user/mcp-tokens/{revoked['id']}")
    closed = f"http://127.0.0.1:{free_port()}/dodo/mcp"
    real = f"{server.base}/dodo/mcp"
    cells = [
        "%load_ext dodo_jupyter",
        "%dodo call demo__add a=1 b=2",  # 0: works
        f"%env DODO_MCP_URL={closed}",
        "%dodo call demo__add a=1 b=2",  # 1: the new URL, closed
        f"%env DODO_MCP_URL={real}",
        f"%env DODO_MCP_TOKEN={revoked['token']}",
        "%dodo call demo__add a=1 b=2",  # 2: a revoked token
        f"%env DODO_MCP_TOKEN={gateway_token}",
        "%dodo call demo__add a=20 b=22",  # 3: works again
        "%dodo call demo__add a=1 b=not-a-number",  # 4: arguments the tool refuses
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    ran = client.execute(env=kernel_env(server, gateway_token), cwd=str(tmp_path))
    calls = [cell.outputs for cell in ran.cells if cell.source.startswith("%dodo call")]
    assert "3" in text_of(calls[0])
    errors = [text_of(outputs) for outputs in (calls[1], calls[2], calls[4])]
    assert closed in errors[0] and "cannot be reached: the connection was refused" in errors[0]
    assert "refused this kernel's credentials" in errors[1]
    assert "42" in text_of(calls[3])
    for error in errors:
        assert error.startswith("UsageError: ") and error.count("\n") <= 1, error
        for internal in ("Traceback", "pydantic", "errors.pydantic.dev", "ConnectError", "Error:"):
            assert internal not in error.removeprefix("UsageError: "), error
    shown = json.dumps(calls)  # (the %env cells show what the test set, on purpose)
    assert gateway_token not in shown and revoked["token"] not in shown


def test_resources_and_prompts_in_a_real_kernel(
    tmp_path_factory: pytest.TempPathFactory, demo: DemoHandle, tmp_path: Path
) -> None:
    north = content_server("north").streamable_http_app(host="127.0.0.1")
    with running_mcp_server(app=north) as upstream:
        proc = ServerProcess(
            tmp_path_factory.mktemp("nb-content"),
            demo,
            more_catalog=[{"id": "north", "url": upstream.url, "auth_type": "none"}],
        )
        proc.start()
        try:
            proc.call("POST", "/dodo/api/mcp/start-auth", {"catalog_id": "north"})
            token = proc.call("POST", "/dodo/api/user/mcp-tokens", {"label": "nb"})["token"]
            cells = [
                "%load_ext dodo_jupyter",
                "%dodo resources",
                "%dodo read dodo://north/note://logo.png",
                "%dodo read dodo://north/note://config.json",
                "r = %dodo read dodo://north/note://items/{item} item=5\nr.text",
                "%dodo prompts",
                "%dodo prompt north__greeting who=Ada",
                "%dodo prompt north__with_image",
                "%dodo read dodo://north/note://nothing",
            ]
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
            client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True)
            ran = client.execute(env=kernel_env(proc, token), cwd=str(tmp_path))
        finally:
            proc.kill()
            proc.client.close()
    out = [cell.outputs for cell in ran.cells]
    resources = out[1][0]["data"]
    assert (
        "<table>" in resources["text/html"]
        and "dodo://north/note://logo.png" in resources["text/html"]
    )
    (logo,) = out[2]
    assert base64.b64decode(logo["data"]["image/png"]).startswith(b"\x89PNG")  # a picture
    (config,) = out[3]
    assert config["data"]["application/json"] == {"server": "north", "limits": {"calls": 3}}
    assert "item 5 of north" in text_of(out[4])
    assert "north__greeting" in text_of(out[5]) and "who=…" in text_of(out[5])
    assert "Hello Ada, from north (cheerful)" in text_of(out[6])
    assert '<img src="data:image/png;base64,' in out[7][0]["data"]["text/html"]
    (error,) = out[8]
    assert error["output_type"] == "stream" and error["text"].startswith("UsageError: ")
    assert "Unknown resource: note://nothing" in error["text"] and "MCPError" not in error["text"]
    assert token not in json.dumps(nbformat.writes(ran))


def test_servers_shows_the_link_of_a_server_that_needs_more_access(
    server: ServerProcess, gateway_token: str, tmp_path: Path
) -> None:
    connect_demo(server)
    cells = ["%load_ext dodo_jupyter", "%dodo call demo__admin_report", "%dodo servers"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    ran = client.execute(env=kernel_env(server, gateway_token), cwd=str(tmp_path))
    (row,) = server.call("GET", "/dodo/api/mcp/servers")["servers"]
    assert row["state"] == "needs_scope"
    url = row["step_up"]["consent_url"]
    refused = text_of(ran.cells[1].outputs)
    assert "Open this URL to grant mcp:admin, then call the tool again" in refused
    assert url in refused
    (shown,) = ran.cells[2].outputs
    plain, page = shown["data"]["text/plain"], shown["data"]["text/html"]
    assert "needs_scope" in plain
    assert "demo needs more access: open this URL to grant mcp:admin" in plain and url in plain
    assert f'<a href="{html.escape(url, quote=True)}"' in page and "grant mcp:admin</a>" in page
    disconnect_all(server)


@contextlib.contextmanager
def server_kernel(proc: ServerProcess) -> Iterator[BlockingKernelClient]:
    """A kernel the Jupyter server starts (so it inherits the server's kernel token, as
    every kernel of a user does), and a client on its connection file."""
    deadline = time.monotonic() + 30
    while not any(  # the server mints the kernel token just after it starts
        t["kind"] == "kernel" for t in proc.call("GET", "/dodo/api/user/mcp-tokens")["tokens"]
    ):
        assert time.monotonic() < deadline, "the server made no kernel token"
        time.sleep(0.1)
    kernel_id = proc.call("POST", "/api/kernels", {"name": "python3"})["id"]
    kc = BlockingKernelClient()
    kc.load_connection_file(str(proc.runtime_dir / f"kernel-{kernel_id}.json"))
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield kc
    finally:
        kc.stop_channels()
        proc.client.delete(f"/api/kernels/{kernel_id}")


def run_cell(kc: BlockingKernelClient, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The execute reply and the cell's outputs (their message contents and types)."""
    outputs: list[dict[str, Any]] = []

    def keep(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("execute_result", "display_data", "stream", "error"):
            outputs.append({"output_type": msg["msg_type"], **msg["content"]})

    reply = kc.execute_interactive(code, output_hook=keep, timeout=120)
    return reply["content"], outputs


def test_tools_as_python_functions_in_a_kernel_the_server_started(
    tmp_path_factory: pytest.TempPathFactory, demo: DemoHandle
) -> None:
    typed = typed_server().streamable_http_app(host="127.0.0.1")
    with running_mcp_server(app=typed) as upstream:
        proc = ServerProcess(
            tmp_path_factory.mktemp("nb-tools"),
            demo,
            more_catalog=[{"id": "typed-api", "url": upstream.url, "auth_type": "none"}],
        )
        proc.start()
        try:
            proc.call("POST", "/dodo/api/mcp/start-auth", {"catalog_id": "typed-api"})
            with server_kernel(proc) as kc:
                cells = [
                    run_cell(kc, code)
                    for code in (
                        "from dodo_jupyter import tools\ntools.typed_api.add(a=2, b=3)",
                        "await tools.typed_api.add.aio(a=40, b=2)",  # the cell's loop runs
                        "tools.typed_api.store(item={'name': 'bolt'})",
                        "tools.typed_api.fail(reason='the store is on fire')",
                        "tools.typed_api.picture(size=4)",
                        "tools.typo",
                        "dir(tools)",
                    )
                ]
                servers = kc.complete("tools.", 6, reply=True, timeout=60)["content"]
                line = "x = tools.typed_api.f"
                named = kc.complete(line, len(line), reply=True, timeout=60)["content"]
                line = "tools.typed_api.find_items("
                shown = kc.inspect(line, len(line), reply=True, timeout=60)["content"]
            history = calls_recorded(proc, 3)
        finally:
            proc.kill()
            proc.client.close()
    replies = [reply for reply, _ in cells]
    out = [outputs for _, outputs in cells]
    assert [r["status"] for r in replies] == ["ok", "ok", "ok", "error", "ok", "error", "ok"]
    assert text_of(out[0]).strip() == "5"
    assert text_of(out[1]).strip() == "42"
    assert "{'stored': 'bolt', 'qty': 1}" in text_of(out[2])
    assert replies[3]["ename"] == "ToolError"
    assert "the store is on fire" in replies[3]["evalue"]
    (image,) = [o["data"] for o in out[4] if "image/png" in o.get("data", {})]
    assert base64.b64decode(image["image/png"]).startswith(b"\x89PNG")  # shown as a picture
    assert replies[5]["ename"] == "AttributeError" and "it has typed_api" in replies[5]["evalue"]
    assert "['refresh', 'typed_api']" in text_of(out[6])

    # Tab completion: the servers after "tools.", a server's tools after "tools.typed_api.".
    assert {m.rsplit(".", 1)[-1] for m in servers["matches"]} >= {"typed_api", "refresh"}
    assert {m.rsplit(".", 1)[-1] for m in named["matches"]} >= {"fail", "find_items"}
    # Shift-Tab: the signature and the docstring from the tool's schema.
    assert shown["found"]
    help_text = re.sub(r"\x1b\[[0-9;]*m", "", shown["data"]["text/plain"])
    assert "query: str" in help_text and "mode: Literal['fast', 'exact'] = 'fast'" in help_text
    assert "Find stored items by name." in help_text and "Words to look for." in help_text

    # Each call went through the gateway as the kernel's, and the history says so.
    assert {(c["path"], c["server_id"], c["tool"], c["outcome"]) for c in history} >= {
        ("kernel", "typed-api", "add", "ok"),
        ("kernel", "typed-api", "fail", "tool_error"),
    }


def calls_recorded(proc: ServerProcess, at_least: int) -> list[dict[str, Any]]:
    """The call history once it holds ``at_least`` calls (it is written in batches)."""
    deadline = time.monotonic() + 30
    while True:
        calls: list[dict[str, Any]] = proc.call("GET", "/dodo/api/user/tool-calls")["calls"]
        if len(calls) >= at_least or time.monotonic() > deadline:
            return calls
        time.sleep(0.1)
