"""The sidebar's Agents section in a real Chromium against a real ``jupyter lab``.

Its own lab (local mode, a temporary root and HOME): writing the Claude Code project
file creates ``<root>/.mcp.json``, removing it takes dodo's entry out again, and the
Claude Code CLI button shows the ``claude mcp add`` line once. The view is saved as
``docs/images/agents.png``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dodo_jupyter.demo.testing import DemoHandle

from .conftest import Lab, running_lab, save_screenshot
from .test_sidebar import PANEL, open_lab, open_panel_from_palette, show_only

pytestmark = pytest.mark.browser

AGENTS = f"{PANEL} #dodo-section-agent-hosts"


@pytest.fixture(scope="module")
def agents_lab(tmp_path_factory: pytest.TempPathFactory, demo: DemoHandle) -> Iterator[Lab]:
    # Jupyter AI's server extensions run (its lab extensions stay off), so the built-in
    # access is live as it is for users.
    server = {"jpserver_extensions": {"dodo_jupyter": True}}
    with running_lab(tmp_path_factory.mktemp("lab-agents"), demo, server=server) as lab:
        yield lab


def agent(page: Any, agent_id: str) -> Any:
    return page.locator(f'{AGENTS} .jp-dodo-Agent[data-agent-id="{agent_id}"]')


def test_agents_write_and_remove_a_config(page: Any, agents_lab: Lab) -> None:
    open_lab(page, agents_lab)
    open_panel_from_palette(page)
    show_only(page, "Agents")
    rows = page.locator(f"{AGENTS} .jp-dodo-Agent")
    rows.first.wait_for()
    names = rows.evaluate_all("nodes => nodes.map(n => n.dataset.agentId)")
    assert names == ["jupyter-ai-builtin", "jupyter-ai", "nbi", "claude-code", "claude-cli"]
    claude = agent(page, "claude-code")
    assert claude.get_attribute("data-state") == "not_configured"
    mcp_json = agents_lab.root / ".mcp.json"
    assert str(mcp_json) in claude.inner_text()
    builtin = agent(page, "jupyter-ai-builtin")
    assert builtin.get_attribute("data-state") == "on"
    assert "c.DodoApp.jupyter_ai_builtin = True" in builtin.inner_text()
    assert "Every Jupyter AI persona gets this gateway" in builtin.inner_text()

    # Write: the file appears with our entry, and the row says so.
    claude.get_by_role("button", name="Write config: Claude Code project file").click()
    page.wait_for_selector(
        f'{AGENTS} .jp-dodo-Agent[data-agent-id="claude-code"][data-state="configured"]'
    )
    claude.get_by_text("Written").wait_for()
    entry = json.loads(mcp_json.read_text())["mcpServers"]["dodo"]
    assert entry["type"] == "http" and entry["url"] == agents_lab.url + "dodo/mcp"
    assert entry["headers"]["Authorization"].startswith("Bearer dodo_")
    assert entry["headers"]["Authorization"].removeprefix("Bearer ") not in page.content()
    page.locator(f"{AGENTS} .jp-dodo-Agent").first.scroll_into_view_if_needed()
    save_screenshot(page, "agents")

    # Remove: our entry goes, and so does its token.
    claude.get_by_role("button", name="Remove: Claude Code project file").click()
    page.wait_for_selector(
        f'{AGENTS} .jp-dodo-Agent[data-agent-id="claude-code"][data-state="not_configured"]'
    )
    assert "dodo" not in json.loads(mcp_json.read_text()).get("mcpServers", {})
    tokens = agents_lab.api("GET", "dodo/api/user/mcp-tokens").json()["tokens"]
    assert [t for t in tokens if t["kind"] == "user"] == []


def test_claude_cli_line_is_shown_once(page: Any, agents_lab: Lab) -> None:
    open_lab(page, agents_lab)
    open_panel_from_palette(page)
    show_only(page, "Agents")
    cli = agent(page, "claude-cli")
    url = agents_lab.url + "dodo/mcp"
    template = cli.get_by_label("claude mcp add line template").inner_text()
    assert template == (
        f'claude mcp add --transport http dodo {url} --header "Authorization: Bearer <token>"'
    )
    cli.get_by_role("button", name="Make the line: Claude Code CLI").click()
    line = cli.get_by_label("claude mcp add line", exact=True)
    text = line.inner_text()
    assert text.startswith(f"claude mcp add --transport http dodo {url} ")
    assert '--header "Authorization: Bearer dodo_' in text
    cli.get_by_role("button", name="Copy claude mcp add line").wait_for()
    page.wait_for_selector(
        f'{AGENTS} .jp-dodo-Agent[data-agent-id="claude-cli"][data-state="configured"]'
    )
    tokens = agents_lab.api("GET", "dodo/api/user/mcp-tokens").json()["tokens"]
    assert [t["label"] for t in tokens if t["kind"] == "user"] == ["Claude Code (CLI)"]
    cli.get_by_role("button", name="Done, hide it").click()
    line.wait_for(state="detached")
    cli.get_by_role("button", name="Remove: Claude Code CLI").click()
    page.wait_for_selector(
        f'{AGENTS} .jp-dodo-Agent[data-agent-id="claude-cli"][data-state="not_configured"]'
    )
