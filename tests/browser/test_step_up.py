"""Step-up authorization in the MCP panel, in a real Chromium against a real ``jupyter
lab`` and the demo OAuth MCP server: a tool that needs more scopes than the connection
was granted (``admin_report`` needs ``mcp:admin``) turns the server "needs more access"
with the consent link; granting it lets the tool through. The view is saved as
``docs/images/needs-scope.png`` (and ``needs-scope-dark.png`` in the dark theme).
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Lab, save_screenshot
from .test_sidebar import (
    DEMO,
    PANEL,
    approve_in,
    open_lab,
    open_panel_from_palette,
    show_only,
)

pytestmark = pytest.mark.browser

TOOLS = f"{PANEL} #dodo-section-tools"
ADMIN = f'{TOOLS} [data-tool-name="demo__admin_report"]'


def run_admin_report(page: Any) -> Any:
    """Run ``admin_report`` from its Try form; returns the tool's row."""
    tool = page.locator(ADMIN)
    form = tool.get_by_role("form", name="Try admin_report")
    if not form.is_visible():
        tool.get_by_role("button", name="Try admin_report").click()
    form.get_by_role("button", name="Run").click()
    return tool


def luminance(page: Any, selector: str, prop: str) -> float:
    """The relative brightness (0-1) of an element's computed colour ``prop``."""
    rgb = page.eval_on_selector(
        selector, f"e => getComputedStyle(e)[{prop!r}].match(/[0-9.]+/g).slice(0, 3)"
    )
    r, g, b = (float(v) / 255 for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_a_tool_needing_more_access_shows_the_link_and_granting_lets_it_run(
    page: Any, admin_lab: Lab
) -> None:
    open_lab(page, admin_lab)
    open_panel_from_palette(page)
    show_only(page, "Servers")
    entry = page.locator(DEMO)
    with page.expect_popup() as popup_info:
        entry.get_by_role("button", name="Connect Dodo demo server").click()
    approve_in(popup_info.value)
    page.wait_for_selector(f'{DEMO}[data-state="connected"]')

    # The tool is refused: its error says what to do, and the server needs more access.
    show_only(page, "Tools")
    tool = run_admin_report(page)
    error = tool.get_by_role("alert", name="Tool error")
    error.get_by_text("Open this URL to grant mcp:admin, then call the tool again").wait_for()
    error_text = error.inner_text()
    show_only(page, "Servers")
    page.wait_for_selector(f'{DEMO}[data-state="needs_scope"]')
    assert entry.get_by_role("status", name="Status: needs more access").is_visible()
    note = entry.locator(".jp-dodo-StepUp")
    assert "needs more access" in note.inner_text() and "mcp:admin" in note.inner_text()
    (server,) = admin_lab.api("GET", "dodo/api/mcp/servers").json()["servers"]
    consent_url = server["step_up"]["consent_url"]
    link = note.get_by_role("link", name="Open the consent page in a new tab")
    assert link.get_attribute("href") == consent_url
    assert consent_url in error_text
    grant = entry.get_by_role("button", name="Grant more access to Dodo demo server")
    assert grant.is_visible()
    assert not entry.get_by_role("button", name="Reconnect Dodo demo server").is_visible()
    save_screenshot(page, "needs-scope")

    # The dark theme: the note keeps light text on a dark background.
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', "
        "{theme: 'JupyterLab Dark'})"
    )
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_selector("#jupyterlab-splash", state="detached")  # the switch's splash
    step_up = f"{DEMO} .jp-dodo-StepUp"
    page.wait_for_function(
        "s => getComputedStyle(document.querySelector(s)).backgroundColor !== ''", arg=step_up
    )
    assert luminance(page, step_up, "backgroundColor") < 0.3
    assert luminance(page, step_up, "color") > 0.6
    assert luminance(page, f"{step_up} a", "color") > 0.3
    save_screenshot(page, "needs-scope-dark")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', "
        "{theme: 'JupyterLab Light'})"
    )
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")
    page.wait_for_selector("#jupyterlab-splash", state="detached")

    # Granting: the consent page in a popup, approved; the server is connected again.
    with page.expect_popup() as popup_info:
        grant.click()
    popup = popup_info.value
    entry.get_by_text("Waiting for you to approve").wait_for()
    popup.wait_for_load_state()
    assert "mcp:admin" in popup.locator("#scopes").inner_text()
    approve_in(popup)
    page.wait_for_selector(f'{DEMO}[data-state="connected"]')
    assert not entry.locator(".jp-dodo-StepUp").is_visible()
    (server,) = admin_lab.api("GET", "dodo/api/mcp/servers").json()["servers"]
    assert "mcp:admin" in server["scopes"] and server["step_up"] is None

    # The tool runs now.
    show_only(page, "Tools")
    run_admin_report(page)
    page.locator(ADMIN).locator(".jp-dodo-Result-text", has_text="all systems nominal").wait_for()
