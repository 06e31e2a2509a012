"""The JupyterLab MCP panel in a real Chromium against a real ``jupyter lab``.

One lab runs in local mode (the owner is the administrator), one in hub mode without a
hub (owner ``alice``, not an administrator, dark theme). The demo OAuth MCP server is in
both catalogs. Tests of the local lab run in file order and build on each other: connect,
then tools, then tokens, then the admin editor. Each view is saved under ``docs/images/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dodo_jupyter.demo.testing import DemoHandle

from .conftest import Lab, save_screenshot, widen_sidebar

pytestmark = pytest.mark.browser

PANEL = "#dodo-mcp-panel"
DEMO = f'{PANEL} .jp-dodo-CatalogEntry[data-entry-id="demo"]'


def open_lab(page: Any, lab: Lab) -> None:
    page.goto(lab.lab_url())
    page.wait_for_selector("#jp-main-dock-panel", state="visible")
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    page.wait_for_selector(".jp-Launcher, .jp-NotebookPanel", state="visible")


def run_from_palette(page: Any, label: str) -> None:
    """Run a command the keyboard way: the command palette."""
    search = page.locator("#command-palette .lm-CommandPalette-input")
    for _ in range(3):
        page.keyboard.press("Control+Shift+c")
        try:
            search.wait_for(state="visible", timeout=3000)
            break
        except Exception:  # noqa: S112 - the shortcut can land before the shell takes keys
            continue
    search.fill(label)
    page.locator("#command-palette .lm-CommandPalette-item", has_text=label).first.wait_for()
    search.press("Enter")


def open_panel_from_palette(page: Any) -> None:
    run_from_palette(page, "Dodo: Open MCP panel")
    page.wait_for_selector(PANEL, state="visible")
    widen_sidebar(page)


def section(page: Any, title: str) -> Any:
    return page.locator(f'{PANEL} .lm-AccordionPanel-title[aria-label="{title} Section"]')


def show_only(page: Any, title: str) -> None:
    """Expand one section and collapse the others (JupyterLab restores the accordion's
    state from the previous page of the same lab)."""
    page.locator(f"{PANEL} .lm-AccordionPanel-title").first.wait_for()
    labels = page.locator(f"{PANEL} .lm-AccordionPanel-title").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('aria-label'))"
    )
    for label in labels:
        if label != f"{title} Section":
            collapse(page, label.removesuffix(" Section"))
    expand(page, title)


def expand(page: Any, title: str) -> None:
    header = section(page, title)
    header.wait_for()
    if header.get_attribute("aria-expanded") != "true":
        header.click()
    page.wait_for_selector(
        f'{PANEL} .lm-AccordionPanel-title[aria-label="{title} Section"][aria-expanded="true"]'
    )


def collapse(page: Any, title: str) -> None:
    header = section(page, title)
    if header.get_attribute("aria-expanded") == "true":
        header.click()


def approve_in(popup: Any) -> None:
    popup.wait_for_load_state()
    popup.locator("button.approve").click()


# -- local mode: the owner is the administrator ---------------------------------------


def test_panel_catalog_and_commands(page: Any, admin_lab: Lab) -> None:
    open_lab(page, admin_lab)
    open_panel_from_palette(page)
    show_only(page, "Servers")
    entry = page.locator(DEMO)
    entry.wait_for()
    assert entry.get_attribute("data-state") == "none"
    assert "Dodo demo server" in entry.inner_text()
    assert "oauth" in entry.locator(".jp-dodo-badge").first.inner_text()
    entry.get_by_text("Setup guide").click()
    entry.get_by_text("Click Connect, then Approve").wait_for()
    commands = page.evaluate(
        """() => ['dodo:open-panel', 'dodo:connect-server'].map(
            id => window.jupyterapp.commands.label(id))"""
    )
    assert commands == ["Dodo: Open MCP panel", "Dodo: Connect MCP server…"]
    # The Connect button is labelled and reachable with the keyboard.
    button = entry.get_by_role("button", name="Connect Dodo demo server")
    button.focus()
    assert page.evaluate("() => document.activeElement.textContent") == "Connect"
    save_screenshot(page, "catalog", full=True)


def test_connect_through_popup_then_disconnect(page: Any, admin_lab: Lab) -> None:
    open_lab(page, admin_lab)
    open_panel_from_palette(page)
    show_only(page, "Servers")
    entry = page.locator(DEMO)
    with page.expect_popup() as popup_info:
        entry.get_by_role("button", name="Connect Dodo demo server").click()
    popup = popup_info.value
    entry.get_by_text("Waiting for you to approve").wait_for()
    approve_in(popup)
    page.wait_for_selector(f'{DEMO}[data-state="connected"]')
    entry.get_by_text(re.compile(r"\d+ tools")).wait_for()
    save_screenshot(page, "connected")
    servers = admin_lab.api("GET", "dodo/api/mcp/servers").json()["servers"]
    assert [s["state"] for s in servers] == ["connected"]

    # A sign-in window closed before approving: a clear message and a retry.
    entry.get_by_role("button", name="Disconnect Dodo demo server").click()
    page.wait_for_selector(f'{DEMO}[data-state="none"]')
    with page.expect_popup() as popup_info:
        entry.get_by_role("button", name="Connect Dodo demo server").click()
    popup = popup_info.value
    popup.locator("button.approve").wait_for()  # the consent page, not the blank start
    popup.close()
    entry.get_by_text("The sign-in window was closed before the sign-in finished.").wait_for()
    with page.expect_popup() as popup_info:
        entry.get_by_role("button", name="Retry connecting Dodo demo server").click()
    approve_in(popup_info.value)
    page.wait_for_selector(f'{DEMO}[data-state="connected"]')
    assert entry.locator(".jp-dodo-CatalogEntry-warning").count() == 0


def connect_in_panel(page: Any, entry: Any) -> None:
    with page.expect_popup() as popup_info:
        entry.get_by_role("button", name="Connect Dodo demo server").click()
    approve_in(popup_info.value)
    page.wait_for_selector(f'{DEMO}[data-state="connected"]')


def test_a_sign_in_without_refresh_token_warns(page: Any, admin_lab: Lab, demo: DemoHandle) -> None:
    """A server that gives no refresh token: connected, with the time a new sign-in is
    needed."""
    open_lab(page, admin_lab)
    open_panel_from_palette(page)
    show_only(page, "Servers")
    entry = page.locator(DEMO)
    page.wait_for_selector(f'{DEMO}[data-state="connected"]')
    entry.get_by_role("button", name="Disconnect Dodo demo server").click()
    page.wait_for_selector(f'{DEMO}[data-state="none"]')
    demo.provider.issue_refresh_tokens = False
    try:
        connect_in_panel(page, entry)
    finally:
        demo.provider.issue_refresh_tokens = True
    warning = entry.locator(".jp-dodo-CatalogEntry-warning")
    warning.wait_for()
    assert "no refresh token" in warning.inner_text()
    assert re.search(r"\d\d:\d\d UTC", warning.inner_text())
    # The later tests use a sign-in that renews itself.
    entry.get_by_role("button", name="Disconnect Dodo demo server").click()
    page.wait_for_selector(f'{DEMO}[data-state="none"]')
    connect_in_panel(page, entry)
    assert entry.locator(".jp-dodo-CatalogEntry-warning").count() == 0


def test_blocked_popup_offers_a_tab(browser: Any, admin_lab: Lab) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(30_000)
    # The browser blocks every popup: window.open answers null.
    context.add_init_script("window.open = () => null;")
    page = context.new_page()
    try:
        open_lab(page, admin_lab)
        open_panel_from_palette(page)
        show_only(page, "Servers")
        entry = page.locator(DEMO)
        page.wait_for_selector(f'{DEMO}[data-state="connected"]')
        entry.get_by_role("button", name="Disconnect Dodo demo server").click()
        page.wait_for_selector(f'{DEMO}[data-state="none"]')
        entry.get_by_role("button", name="Connect Dodo demo server").click()
        entry.get_by_text("Your browser blocked the sign-in window.").wait_for()
        with context.expect_page() as tab_info:
            entry.get_by_role("link", name="Open the sign-in page in a new tab").click()
        approve_in(tab_info.value)
        page.wait_for_selector(f'{DEMO}[data-state="connected"]')
    finally:
        context.close()


def test_connect_command_from_the_palette(page: Any, admin_lab: Lab) -> None:
    servers = admin_lab.api("GET", "dodo/api/mcp/servers").json()["servers"]
    for server in servers:
        admin_lab.api("POST", "dodo/api/mcp/delete-auth", json={"connection_id": server["id"]})
    open_lab(page, admin_lab)
    run_from_palette(page, "Dodo: Connect MCP server…")
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Connect an MCP server").wait_for()
    assert "Dodo demo server (demo)" in dialog.locator("select").inner_text()
    with page.expect_popup() as popup_info:
        dialog.get_by_role("button", name="Connect").click()
    approve_in(popup_info.value)
    show_only(page, "Servers")
    page.wait_for_selector(f'{DEMO}[data-state="connected"]')


def test_tools_search_switch_and_try(page: Any, admin_lab: Lab) -> None:
    open_lab(page, admin_lab)
    open_panel_from_palette(page)
    page.wait_for_selector(f'{DEMO}[data-state="connected"]')
    show_only(page, "Tools")
    tools = f"{PANEL} #dodo-section-tools"
    page.wait_for_selector(f'{tools} [data-tool-name="demo__echo"]')
    assert "Dodo demo server" in page.locator(f"{tools} .jp-dodo-ToolGroup-title").text_content()

    # Search.
    page.get_by_role("searchbox", name="Search tools").fill("square")
    page.wait_for_function(
        """() => document.querySelectorAll('#dodo-section-tools .jp-dodo-Tool').length === 1"""
    )
    square = page.locator(f'{tools} [data-tool-name="demo__square_png"]')
    square.get_by_role("button", name="Try square_png").click()
    form = square.get_by_role("form", name="Try square_png")
    assert form.get_by_label("colour").input_value() == "#3366cc"  # the schema's default
    form.get_by_label("size").fill("24")
    form.get_by_role("button", name="Run").click()
    image = square.locator("img.jp-dodo-Result-image")
    image.wait_for()
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    save_screenshot(page, "tools")

    # A tool's own error is shown as such.
    form.get_by_label("colour").fill("not a colour")
    form.get_by_role("button", name="Run").click()
    square.get_by_role("alert", name="Tool error").get_by_text("colour must look like").wait_for()

    # Required fields and types are checked before calling.
    page.get_by_role("searchbox", name="Search tools").fill("")
    add = page.locator(f'{tools} [data-tool-name="demo__add"]')
    add.get_by_role("button", name="Try add").click()
    add_form = add.get_by_role("form", name="Try add")
    add_form.get_by_label("a").fill("two")
    add_form.get_by_role("button", name="Run").click()
    add_form.get_by_text("Enter a number.").wait_for()
    add_form.get_by_text("Required.").wait_for()
    add_form.get_by_label("a").fill("2")
    add_form.get_by_label("b").fill("40.5")
    add_form.get_by_role("button", name="Run").click()
    add.locator(".jp-dodo-Result-text", has_text="42.5").wait_for()

    # The "available to agents" switch is saved on the server.
    echo = page.locator(f'{tools} [data-tool-name="demo__echo"]')
    switch = echo.get_by_role("switch", name="echo available to agents")
    assert switch.is_checked()
    switch.click(force=True)  # the native input sits under the styled track
    echo_switch = '[data-tool-name="demo__echo"] input[role=switch]'
    page.wait_for_function(
        "s => !document.querySelector(s).checked && !document.querySelector(s).disabled",
        arg=echo_switch,
    )
    listed = admin_lab.api("GET", "dodo/api/mcp/tools").json()["tools"]
    assert {t["name"]: t["enabled"] for t in listed}["demo__echo"] is False
    switch.click(force=True)
    page.wait_for_function("s => document.querySelector(s).checked", arg=echo_switch)


def test_agent_access_token_lifecycle(page: Any, admin_lab: Lab) -> None:
    open_lab(page, admin_lab)
    open_panel_from_palette(page)
    show_only(page, "Agent access")
    agents = page.locator(f"{PANEL} #dodo-section-agents")
    url = agents.get_by_label("Gateway URL (streamable HTTP)").input_value()
    assert url == admin_lab.url + "dodo/mcp"

    form = agents.get_by_role("form", name="Create a token")
    form.get_by_role("button", name="Create token").click()
    form.get_by_text("Give the token a name").wait_for()
    form.get_by_label("Name", exact=True).fill("browser-test")
    form.get_by_role("button", name="Create token").click()
    secret = agents.get_by_role("textbox", name="New token").input_value()
    assert re.fullmatch(r"dodo_[A-Za-z0-9]+_[A-Za-z0-9_-]+", secret)
    agents.get_by_role("button", name="Copy token").wait_for()
    row = agents.locator(".jp-dodo-Token", has_text="browser-test")
    row.wait_for()
    assert secret not in row.inner_text()

    # Snippets carry the new token; the %dodo one needs none.
    client = agents.get_by_label("Client", exact=True)
    client.select_option(label="Claude Code")
    snippet = agents.locator(".jp-dodo-Snippet pre").inner_text()
    assert snippet.startswith(f"claude mcp add --transport http dodo {url}")
    assert secret in snippet
    client.select_option(label="Notebook Intelligence")
    nbi = json.loads(agents.locator(".jp-dodo-Snippet pre").inner_text())
    bearer = {"Authorization": f"Bearer {secret}"}
    assert nbi["mcpServers"]["dodo"] == {"url": url, "headers": bearer}
    client.select_option(label="Jupyter AI")
    assert "mcp_settings.json" in agents.locator(".jp-dodo-Snippet-where").inner_text()
    client.select_option(label="%dodo in a notebook")
    assert "%load_ext dodo_jupyter" in agents.locator(".jp-dodo-Snippet pre").inner_text()
    client.select_option(label="Claude Code")
    save_screenshot(page, "agent-access")

    # The token works at the gateway, then is revoked.
    tokens = admin_lab.api("GET", "dodo/api/user/mcp-tokens").json()["tokens"]
    token_id = next(t["id"] for t in tokens if t["label"] == "browser-test")
    agents.get_by_role("button", name="Done, hide it").click()
    row.get_by_role("button", name="Revoke token browser-test").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Revoke").click()
    row.wait_for(state="detached")
    tokens = admin_lab.api("GET", "dodo/api/user/mcp-tokens").json()["tokens"]
    assert token_id not in [t["id"] for t in tokens]


def test_admin_edits_the_catalog(page: Any, admin_lab: Lab, tmp_path: Path) -> None:
    open_lab(page, admin_lab)
    open_panel_from_palette(page)
    show_only(page, "Admin")
    admin = page.locator(f"{PANEL} #dodo-section-admin")
    admin.locator('.jp-dodo-AdminEntry[data-entry-id="demo"]').wait_for()

    # Validation errors appear next to their fields.
    admin.get_by_role("button", name="Add server", exact=True).click()
    editor = admin.get_by_role("form", name="Add an MCP server")
    editor.get_by_label("Id", exact=True).fill("Bad Id!")
    editor.get_by_label("MCP endpoint URL").fill("ftp://tickets.example.com/mcp")
    editor.get_by_role("button", name="Add server").click()
    id_error = editor.locator("#jp-dodo-editor-new-id-error")
    id_error.wait_for()
    assert "lowercase" in id_error.inner_text()
    assert editor.get_by_label("Id", exact=True).get_attribute("aria-invalid") == "true"
    save_screenshot(page, "admin-validation")

    editor.get_by_label("Id", exact=True).fill("tickets")
    editor.get_by_label("Name", exact=True).fill("Tickets")
    editor.get_by_label("Description", exact=True).fill("Our ticket system")
    editor.get_by_label("MCP endpoint URL").fill("https://tickets.example.com/mcp")
    editor.get_by_label("Authentication", exact=True).select_option("static_headers")
    editor.get_by_label("Header 1 name").fill("X-API-Key")
    editor.get_by_label("Header 1 description").fill("Your personal API key")
    editor.get_by_role("button", name="Add server").click()
    tickets = admin.locator('.jp-dodo-AdminEntry[data-entry-id="tickets"]')
    tickets.wait_for()

    # Users see it at once; its headers form masks the secret.
    show_only(page, "Servers")
    user_entry = page.locator(f'{PANEL} .jp-dodo-CatalogEntry[data-entry-id="tickets"]')
    user_entry.wait_for()
    assert user_entry.get_by_label("X-API-Key").get_attribute("type") == "password"
    show_only(page, "Admin")

    # Edit, disable, import a server.json, delete.
    tickets.get_by_role("button", name="Edit Tickets").click()
    edit = admin.get_by_role("form", name="Edit Tickets")
    edit.get_by_label("Description", exact=True).fill("Tickets, edited")
    # What agents may do: a bad rate limit is named next to its field, then fixed.
    edit.get_by_text("What agents may do (tool policy)").click()
    edit.get_by_label("Deny tools").fill("delete_*, close_*")
    edit.get_by_label("Ask the user before").select_option("destructive")
    edit.get_by_label("Calls per minute (each user)").fill("lots")
    edit.get_by_role("button", name="Save").click()
    rate_error = edit.locator("#jp-dodo-editor-tickets-policy-calls_per_minute-error")
    rate_error.wait_for()
    assert "whole number" in rate_error.inner_text()
    edit.get_by_label("Calls per minute (each user)").fill("30")
    save_screenshot(page, "admin-policy")
    edit.get_by_role("button", name="Save").click()
    edit.wait_for(state="detached")
    tickets.get_by_role("button", name="Disable Tickets").click()
    tickets.locator(".jp-dodo-badge", has_text="disabled").wait_for()
    server_json = tmp_path / "server.json"
    server_json.write_text(
        json.dumps(
            {
                "name": "io.example/weather",
                "description": "Weather forecasts",
                "version": "1.0.0",
                "remotes": [{"type": "streamable-http", "url": "https://weather.example.com/mcp"}],
            }
        )
    )
    with page.expect_file_chooser() as chooser:
        admin.get_by_role("button", name="Import server.json…").click()
    chooser.value.set_files(str(server_json))
    admin.get_by_text(re.compile(r"Imported 1 entry")).wait_for()
    tickets.get_by_role("button", name="Delete Tickets").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Delete").click()
    admin.locator(
        '.jp-dodo-AdminEntry[data-entry-id="tickets"] .jp-dodo-badge', has_text="deleted"
    ).wait_for()

    # The audit log shows each change.
    audit = admin.get_by_role("table", name="Audit log")
    for action in ("catalog.create", "catalog.update", "catalog.import", "catalog.delete"):
        audit.get_by_text(action).first.wait_for()
    entries = admin_lab.api("GET", "dodo/api/admin/approved-mcps?include_deleted=true").json()
    by_id = {e["id"]: e for e in entries["entries"]}
    assert by_id["tickets"]["description"] == "Tickets, edited"
    policy = by_id["tickets"]["tool_policy"]
    assert (policy["deny"], policy["approval"], policy["calls_per_minute"]) == (
        ["delete_*", "close_*"],
        "destructive",
        30,
    )
    assert by_id["tickets"]["deleted_at"] is not None
    save_screenshot(page, "admin")


def test_an_edit_made_meanwhile_is_not_overwritten(page: Any, admin_lab: Lab) -> None:
    """The editor sends the entry's ETag as If-Match: when somebody changed the entry
    since the form was opened, the server's 412 message is shown, the form shows the
    entry as it is now, and saving again applies the change."""
    entries = "dodo/api/admin/approved-mcps"
    created = admin_lab.api(
        "POST", entries, json={"id": "forecast", "url": "https://forecast.example.com/mcp"}
    )
    assert created.status_code == 201, created.text
    open_lab(page, admin_lab)
    open_panel_from_palette(page)
    show_only(page, "Admin")
    admin = page.locator(f"{PANEL} #dodo-section-admin")
    forecast = admin.locator('.jp-dodo-AdminEntry[data-entry-id="forecast"]')
    forecast.get_by_role("button", name="Edit forecast").click()
    edit = admin.get_by_role("form", name="Edit forecast")
    edit.get_by_label("Description", exact=True).fill("Mine")

    # Another administrator (another tab, the CLI, another hub service replica).
    elsewhere = admin_lab.api("PUT", f"{entries}/forecast", json={"description": "Theirs"})
    assert elsewhere.status_code == 200, elsewhere.text
    edit.get_by_role("button", name="Save").click()
    alert = edit.get_by_role("alert")
    alert.wait_for()
    assert re.search(
        r"^Catalog entry 'forecast' was changed by \S+ at .* UTC since you loaded it: "
        r"reload it and apply your change again\.$",
        alert.inner_text(),
    ), alert.inner_text()
    description = edit.get_by_label("Description", exact=True)
    assert description.input_value() == "Theirs"  # reloaded: nothing of theirs is lost
    assert admin_lab.api("GET", f"{entries}/forecast").json()["description"] == "Theirs"

    description.fill("Theirs and mine")
    edit.get_by_role("button", name="Save").click()
    edit.wait_for(state="detached")
    assert admin_lab.api("GET", f"{entries}/forecast").json()["description"] == "Theirs and mine"


# -- hub mode: alice owns the server and is not an administrator ----------------------


def test_non_admin_sees_no_editor_in_dark_theme(page: Any, hub_lab: Lab) -> None:
    page.context.add_cookies([{"name": "dodo_test_user", "value": "alice", "url": hub_lab.url}])
    open_lab(page, hub_lab)
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    open_panel_from_palette(page)
    page.locator(DEMO).wait_for()
    footer = page.locator(f"{PANEL} .jp-dodo-Footer")
    footer.get_by_text("alice").wait_for()
    assert "admin" not in footer.inner_text()
    titles = page.locator(f"{PANEL} .lm-AccordionPanel-title").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('aria-label'))"
    )
    assert titles == [
        "Servers Section",
        "Tools Section",
        "Resources Section",
        "Prompts Section",
        "Agent access Section",
        "Agents Section",
        "Activity Section",
        "Agent notebooks Section",
    ]
    # The server refuses the admin API anyway.
    status = page.evaluate("""async () => (await fetch('/dodo/api/admin/approved-mcps')).status""")
    assert status == 403
    # Dark theme: the panel really is dark.
    background = page.locator(PANEL).evaluate("n => getComputedStyle(n).backgroundColor")
    red, green, blue = (int(v) for v in re.findall(r"\d+", background)[:3])
    assert red + green + blue < 3 * 80, background
    show_only(page, "Agent access")
    page.locator(f"{PANEL} #dodo-section-agents").get_by_text("No tokens yet").wait_for()
    show_only(page, "Agents")
    claude = page.locator(f'{PANEL} .jp-dodo-Agent[data-agent-id="claude-code"]')
    claude.wait_for()
    color = claude.locator(".jp-dodo-Agent-message").evaluate("n => getComputedStyle(n).color")
    assert sum(int(v) for v in re.findall(r"\d+", color)[:3]) > 3 * 150, color
    show_only(page, "Servers")
    page.locator(DEMO).get_by_text("Setup guide").click()
    save_screenshot(page, "dark", full=True)


def test_visitor_sees_the_catalog_but_nothing_personal(page: Any, hub_lab: Lab) -> None:
    page.context.add_cookies([{"name": "dodo_test_user", "value": "bob", "url": hub_lab.url}])
    open_lab(page, hub_lab)
    open_panel_from_palette(page)
    show_only(page, "Servers")
    entry = page.locator(DEMO)
    entry.wait_for()
    # Not "visiting a server shared with you": a hub admin who opened it sees this too.
    page.locator(PANEL).get_by_text("This server is not yours").wait_for()
    assert entry.get_by_role("button").count() == 0


def test_stale_catalog_note(page: Any, hub_lab: Lab) -> None:
    """A catalog answer that says it is stale (hub catalogs) gets a note with its reason."""
    page.context.add_cookies([{"name": "dodo_test_user", "value": "alice", "url": hub_lab.url}])

    def stale(route: Any) -> None:
        response = route.fetch()
        body = {**response.json(), "catalog_source": "hub", "catalog_stale": True}
        body["catalog_stale_reason"] = "The hub catalog service did not answer."
        route.fulfill(response=response, json=body)

    # JupyterLab adds a cache-busting query to GET requests.
    page.route(re.compile(r".*/dodo/api/mcp-catalog(\?.*)?$"), stale)
    open_lab(page, hub_lab)
    open_panel_from_palette(page)
    show_only(page, "Servers")
    note = page.locator(PANEL).get_by_role("status").filter(has_text="may be out of date")
    note.get_by_text("The hub catalog service did not answer.").wait_for()
