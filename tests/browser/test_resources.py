"""The sidebar's Resources and Prompts sections in a real Chromium against a real
``jupyter lab``.

Its own lab (local mode) has two MCP servers (:func:`tests.mcp_peers.content_server`,
no sign-in) in its catalog, whose resource URIs and prompt names collide: reading a text,
a JSON, an image, bytes to download and a template's resource; filling in a prompt with
an argument (after being told it is required), one with an image and one with an
embedded resource; then the same views in the dark theme. The views are saved as
``docs/images/resources.png`` and ``docs/images/prompts.png``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dodo_jupyter.demo.testing import DemoHandle

from ..mcp_peers import DATA_BIN, content_server, running_mcp_server
from .conftest import Lab, running_lab, save_screenshot
from .test_sidebar import PANEL, open_lab, open_panel_from_palette, show_only

pytestmark = pytest.mark.browser

RESOURCES = f"{PANEL} #dodo-section-resources"
PROMPTS = f"{PANEL} #dodo-section-prompts"
SERVERS = {"north": ("North notes", (51, 102, 204)), "south": ("South notes", (204, 102, 51))}


@pytest.fixture(scope="module")
def content_lab(tmp_path_factory: pytest.TempPathFactory, demo: DemoHandle) -> Iterator[Lab]:
    with contextlib.ExitStack() as stack:
        catalog = []
        for server_id, (name, colour) in SERVERS.items():
            app = content_server(server_id, colour).streamable_http_app(host="127.0.0.1")
            upstream = stack.enter_context(running_mcp_server(app=app))
            catalog.append(
                {
                    "id": server_id,
                    "display_name": name,
                    "description": f"Notes kept by the {server_id} team",
                    "url": upstream.url,
                    "auth_type": "none",
                }
            )
        lab = stack.enter_context(
            running_lab(tmp_path_factory.mktemp("lab-content"), demo, dodo={"catalog": catalog})
        )
        for server_id in SERVERS:
            started = lab.api("POST", "dodo/api/mcp/start-auth", json={"catalog_id": server_id})
            assert started.json()["state"] == "connected", started.text
        yield lab
        # Close dodo's upstream sessions before the upstream servers stop.
        for server in lab.api("GET", "dodo/api/mcp/servers").json()["servers"]:
            lab.api("POST", "dodo/api/mcp/delete-auth", json={"connection_id": server["id"]})


def resource(page: Any, uri: str) -> Any:
    return page.locator(f'{RESOURCES} .jp-dodo-Resource[data-uri="{uri}"]')


def prompt(page: Any, name: str) -> Any:
    return page.locator(f'{PROMPTS} .jp-dodo-Prompt[data-prompt-name="{name}"]')


def test_browse_and_read_resources(page: Any, content_lab: Lab, tmp_path: Path) -> None:
    open_lab(page, content_lab)
    open_panel_from_palette(page)
    show_only(page, "Resources")
    readme = resource(page, "dodo://north/note://readme")
    readme.wait_for()
    groups = page.locator(f"{RESOURCES} .jp-dodo-ToolGroup-title").all_text_contents()
    assert groups == [
        "North notes 5 resources",
        "South notes 5 resources",
    ]
    assert "Read me first." in readme.inner_text()

    # Text: the north readme, not the south one with the same URI.
    readme.get_by_role("button", name="Read readme").click()
    text = readme.get_by_role("region", name="Contents of readme")
    text.locator(".jp-dodo-Result-text", has_text="readme of north").wait_for()
    assert "south" not in text.inner_text()

    # An image, as an image that really decodes.
    logo = resource(page, "dodo://north/note://logo.png")
    logo.get_by_role("button", name="Read logo").click()
    image = logo.locator("img.jp-dodo-Result-image")
    image.wait_for()
    assert image.get_attribute("src").startswith("data:image/png;base64,iVBOR")
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 48", arg=image.element_handle()
    )
    logo.get_by_text("image/png, ").wait_for()
    page.locator(f"{RESOURCES} .jp-dodo-SectionBody").evaluate("n => { n.scrollTop = 0; }")
    save_screenshot(page, "resources")

    # JSON, reindented.
    config = resource(page, "dodo://north/note://config.json")
    config.get_by_role("button", name="Read config").click()
    shown = config.locator('.jp-dodo-ResourceContent[data-kind="json"] pre')
    shown.wait_for()
    assert shown.inner_text() == '{\n  "server": "north",\n  "limits": {\n    "calls": 3\n  }\n}'

    # Bytes: their size, and a download of exactly those bytes.
    data = resource(page, "dodo://south/note://data.bin")
    data.get_by_role("button", name="Read data").click()
    data.get_by_text("1.0 KB of application/octet-stream").wait_for()
    with page.expect_download() as download_info:
        data.get_by_role("button", name="Download dodo://south/note://data.bin").click()
    download = download_info.value
    assert download.suggested_filename == "data.bin"
    saved = tmp_path / "data.bin"
    download.save_as(str(saved))
    assert saved.read_bytes() == DATA_BIN

    # A template: its value is required, then it is read.
    template = page.locator(
        f'{RESOURCES} .jp-dodo-Resource[data-uri-template="dodo://south/note://items/{{item}}"]'
    )
    template.get_by_role("button", name="Fill in item").click()
    form = template.get_by_role("form", name="Read item")
    form.get_by_role("button", name="Read").click()
    form.get_by_text("Required.").wait_for()
    form.get_by_label("item").fill("7 & 8")
    form.get_by_role("button", name="Read").click()
    template.locator(".jp-dodo-Result-text", has_text="item 7 & 8 of south").wait_for()

    # A resource that fails says why, in the server's words.
    form.get_by_label("item").fill("broken")
    form.get_by_role("button", name="Read").click()
    template.get_by_role("alert").get_by_text("the item store is on fire").wait_for()

    # Search.
    page.get_by_role("searchbox", name="Search resources").fill("logo")
    page.wait_for_function(
        "() => document.querySelectorAll('#dodo-section-resources .jp-dodo-Resource').length === 2"
    )


def test_fill_in_and_run_prompts(page: Any, content_lab: Lab) -> None:
    open_lab(page, content_lab)
    open_panel_from_palette(page)
    show_only(page, "Prompts")
    greeting = prompt(page, "north__greeting")
    greeting.wait_for()
    assert prompt(page, "south__greeting").count() == 1
    assert "Arguments: who, mood (optional)" in greeting.inner_text()

    greeting.get_by_role("button", name="Use greeting").click()
    form = greeting.get_by_role("form", name="Use greeting")
    form.get_by_role("button", name="Run").click()
    form.get_by_text("Required.").wait_for()  # checked before asking the server
    form.get_by_label("who").fill("Ada")
    form.get_by_label("mood").fill("curious")
    form.get_by_role("button", name="Run").click()
    messages = greeting.get_by_role("region", name="Messages of greeting")
    messages.locator(".jp-dodo-Result-text", has_text="Hello Ada, from north (curious)").wait_for()
    assert messages.locator('.jp-dodo-PromptMessage[data-role="user"]').count() == 1
    greeting.evaluate("n => n.scrollIntoView({block: 'start'})")
    save_screenshot(page, "prompts")

    image = prompt(page, "south__with_image")
    image.get_by_role("button", name="Use with_image").click()
    image.get_by_role("form", name="Use with_image").get_by_role("button", name="Run").click()
    shown = image.locator('.jp-dodo-PromptMessage[data-role="user"] img.jp-dodo-Result-image')
    shown.wait_for()
    assert shown.get_attribute("src").startswith("data:image/png;base64,")
    assistant = image.locator('.jp-dodo-PromptMessage[data-role="assistant"]')
    assert "A square." in assistant.inner_text()

    embedded = prompt(page, "north__with_resource")
    embedded.get_by_role("button", name="Use with_resource").click()
    embedded.get_by_role("form", name="Use with_resource").get_by_role("button", name="Run").click()
    block = embedded.locator(".jp-dodo-ResourceContent")
    block.get_by_text("readme of north").wait_for()
    assert "note://readme" in block.locator(".jp-dodo-Result-uri").inner_text()


def test_resources_and_prompts_in_the_dark_theme(page: Any, content_lab: Lab) -> None:
    open_lab(page, content_lab)
    page.evaluate(
        """() => window.jupyterapp.commands.execute('apputils:change-theme',
                                                     {theme: 'JupyterLab Dark'})"""
    )
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    try:
        open_panel_from_palette(page)
        show_only(page, "Prompts")
        greeting = prompt(page, "south__greeting")
        greeting.get_by_role("button", name="Use greeting").click()
        greeting.get_by_label("who").fill("Grace")
        greeting.get_by_role("button", name="Run").click()
        text = greeting.locator(".jp-dodo-Result-text", has_text="Hello Grace")
        text.wait_for()
        assert _brightness(text.evaluate("n => getComputedStyle(n).color")) > 150
        panel = page.locator(PANEL).evaluate("n => getComputedStyle(n).backgroundColor")
        assert _brightness(panel) < 80
        show_only(page, "Resources")
        readme = resource(page, "dodo://south/note://readme")
        readme.get_by_role("button", name="Read readme").click()
        shown = readme.locator(".jp-dodo-Result-text", has_text="readme of south")
        shown.wait_for()
        assert _brightness(shown.evaluate("n => getComputedStyle(n).color")) > 150
    finally:
        page.evaluate(
            """() => window.jupyterapp.commands.execute('apputils:change-theme',
                                                         {theme: 'JupyterLab Light'})"""
        )


def _brightness(css_colour: str) -> float:
    """The mean of a CSS ``rgb(…)`` colour's channels."""
    red, green, blue = (int(v) for v in re.findall(r"\d+", css_colour)[:3])
    return (red + green + blue) / 3
