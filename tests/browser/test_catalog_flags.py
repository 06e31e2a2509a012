"""The admin editor flags a catalog entry this server will not use, with the reason
(``not_accepted``), and names configured entries left out of the catalog (``left_out``).

One lab in local mode, dark theme, with ``allow_insecure_loopback`` off: the demo
server's plain-http loopback entry is left out, and an https entry on 127.0.0.1 (which
the outbound guard refuses) is in the catalog but flagged. Hub-catalog mode sends the
same fields (tests/test_catalog_acceptance.py), so the editor shows them the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from dodo_jupyter.demo.testing import DemoHandle

from .conftest import Lab, running_lab, save_screenshot
from .test_sidebar import PANEL, open_lab, open_panel_from_palette, show_only

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def strict_lab(tmp_path_factory: pytest.TempPathFactory, demo: DemoHandle) -> Iterator[Lab]:
    catalog = [
        {"id": "demo", "display_name": "Dodo demo server", "url": demo.url},
        {"id": "tickets", "display_name": "Tickets", "url": "https://tickets.example.com/mcp"},
        {"id": "staging", "display_name": "Staging", "url": "https://127.0.0.1:8443/mcp"},
    ]
    with running_lab(
        tmp_path_factory.mktemp("lab-strict"),
        demo,
        dodo={"allow_insecure_loopback": False, "catalog": catalog},
        theme="JupyterLab Dark",
    ) as lab:
        yield lab


def test_the_editor_flags_entries_this_server_will_not_use(page: Any, strict_lab: Lab) -> None:
    open_lab(page, strict_lab)
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    open_panel_from_palette(page)
    show_only(page, "Admin")
    admin = page.locator(f"{PANEL} #dodo-section-admin")

    staging = admin.locator('.jp-dodo-AdminEntry[data-entry-id="staging"]')
    flag = staging.locator(".jp-dodo-AdminEntry-notAccepted")
    flag.wait_for()
    assert flag.get_attribute("role") == "note"
    text = flag.inner_text()
    assert text.startswith("Users of this server cannot connect to it: 127.0.0.1 is this machine")
    assert "DodoApp.allow_insecure_loopback=True" in text
    badge = staging.locator(".jp-dodo-badge", has_text="not accepted")
    assert badge.is_visible() and badge.get_attribute("title") == text
    # An entry this server accepts carries no flag.
    tickets = admin.locator('.jp-dodo-AdminEntry[data-entry-id="tickets"]')
    assert tickets.is_visible()
    assert tickets.locator(".jp-dodo-AdminEntry-notAccepted").count() == 0

    # The configured entry that never reached the catalog is named, with the reason.
    left_out = admin.get_by_role("list", name="Configured entries left out")
    demo_item = left_out.locator('li[data-entry-id="demo"]')
    assert "plain http to a loopback host" in demo_item.inner_text()
    assert admin.locator('.jp-dodo-AdminEntry[data-entry-id="demo"]').count() == 0

    # Dark theme: the flag is drawn with the theme's colours, readable on its background.
    colours = flag.evaluate(
        """node => {
            const style = getComputedStyle(node);
            const probe = document.createElement('span');
            probe.style.color = 'var(--jp-warn-color1)';
            document.body.appendChild(probe);
            const warn = getComputedStyle(probe).color;
            probe.remove();
            return {border: style.borderLeftColor, text: style.color,
                    background: style.backgroundColor, warn};
        }"""
    )
    assert colours["border"] == colours["warn"]
    background, text_colour = luminance(colours["background"]), luminance(colours["text"])
    assert background < 0.1  # a dark background...
    assert (text_colour + 0.05) / (background + 0.05) >= 4.5  # ...and readable text (WCAG AA)
    staging.scroll_into_view_if_needed()
    save_screenshot(page, "admin-not-accepted")


def luminance(css_colour: str) -> float:
    """WCAG relative luminance (0 black … 1 white) of an ``rgb(…)``/``rgba(…)`` colour
    (its alpha ignored)."""
    channels = [float(part) / 255 for part in re.findall(r"[\d.]+", css_colour)[:3]]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
