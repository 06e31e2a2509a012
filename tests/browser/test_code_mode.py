"""Code mode in the sidebar, in a real Chromium against a real ``jupyter lab`` with
``DodoApp.code_mode`` on: an agent (the MCP SDK's client at ``dodo/mcp/codemode``, in a
background thread: Playwright's sync API owns this thread's event loop) runs code; the
Agent notebooks section lists the session's notebook with the agent, its runs and that
its kernel still runs; a click opens it in JupyterLab, with the runs' cells and outputs.
The view is saved as ``docs/images/agent-notebooks.png``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from dodo_jupyter.demo.testing import DemoHandle

from .conftest import Lab, running_lab, save_screenshot, widen_sidebar
from .test_sidebar import PANEL, open_lab, open_panel_from_palette, show_only

pytestmark = pytest.mark.browser

NOTEBOOKS = f"{PANEL} #dodo-section-agent-notebooks"


@pytest.fixture(scope="module")
def code_lab(tmp_path_factory: pytest.TempPathFactory, demo: DemoHandle) -> Iterator[Lab]:
    with running_lab(
        tmp_path_factory.mktemp("lab-code-mode"), demo, dodo={"code_mode": True}
    ) as lab:
        yield lab


def run_as_agent(lab: Lab, codes: list[str]) -> list[types.CallToolResult]:
    """Run each of ``codes`` with run_python, as one stateless agent with its own token
    (its kernel stays after the calls: it belongs to the token)."""
    created = lab.api("POST", "dodo/api/user/mcp-tokens", json={"label": "browser agent"})
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    info = types.Implementation(name="test-agent", version="1.0")

    async def runs() -> list[types.CallToolResult]:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(
                streamable_http_client(lab.url + "dodo/mcp/codemode", http_client=http),
                client_info=info,
            ) as client,
        ):
            return [await client.call_tool("run_python", {"code": code}) for code in codes]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-agent") as pool:
        return pool.submit(asyncio.run, runs()).result(timeout=120)


def test_the_agents_notebook_is_listed_and_opens(page: Any, code_lab: Lab) -> None:
    printed, value = run_as_agent(
        code_lab, ["print('hello from an agent')", "answer = 6 * 7\nanswer"]
    )
    assert printed.content[0].text == "hello from an agent\n"  # type: ignore[union-attr]
    assert value.content[0].text == "Out[2]: 42"  # type: ignore[union-attr]

    open_lab(page, code_lab)
    open_panel_from_palette(page)
    show_only(page, "Agent notebooks")
    row = page.locator(f"{NOTEBOOKS} .jp-dodo-AgentNotebook")
    row.wait_for()
    assert row.count() == 1
    name = row.get_by_role("button").inner_text()
    assert name.endswith(".ipynb") and "-test-agent-" in name
    meta = row.locator(".jp-dodo-Call-meta").inner_text()
    assert "test-agent 1.0 (token “browser agent”)" in meta and "2 runs" in meta
    assert row.locator(".jp-dodo-badge", has_text="running").is_visible()
    widen_sidebar(page, 420)
    save_screenshot(page, "agent-notebooks")

    row.get_by_role("button", name=name).click()
    notebook = page.locator(".jp-NotebookPanel:visible")
    notebook.locator(".jp-Cell").nth(1).wait_for()
    cells = notebook.locator(".jp-Cell")
    assert cells.count() == 2
    assert "print('hello from an agent')" in cells.nth(0).locator(".jp-InputArea").inner_text()
    assert "hello from an agent" in cells.nth(0).locator(".jp-OutputArea").inner_text()
    assert "42" in cells.nth(1).locator(".jp-OutputArea").inner_text()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=name)
    assert tab.is_visible()
