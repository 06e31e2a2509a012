"""Fixtures of the browser tests: the demo OAuth MCP server, real ``jupyter lab``
processes with dodo, and Debian's Chromium driven by Playwright.

Everything listens on loopback, on free ports, with its own temporary root, config, data,
runtime and settings directories; everything is stopped at the end of the test module.

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run`` installs it) and is
found at ``/usr/bin/chromium`` or ``$DODO_TEST_CHROMIUM``; Playwright's own browser
download is never used.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dodo_jupyter.demo.testing import DemoHandle, running_demo_server
from dodo_jupyter.demo_launcher import demo_config

REPO = Path(__file__).resolve().parents[2]
#: The README's screenshots are refreshed with DODO_UPDATE_SCREENSHOTS=1; otherwise they
#: are written to a temporary directory, so a test run leaves the checkout unchanged.
IMAGES = (
    REPO / "docs" / "images"
    if os.environ.get("DODO_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "dodo-screenshots"
)
CHROMIUM = os.environ.get("DODO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LAB_START_TIMEOUT = 90.0
#: The checkout's build of the lab extension (``cd labextension && jlpm build``): served
#: ahead of the copy an install put in ``share/jupyter/labextensions``, which may be older.
BUILT_EXTENSION = REPO / "dodo_jupyter" / "labextension"
#: Installed alongside dodo (test extras) and not under test: off, so the screenshots
#: show JupyterLab and dodo only.
OTHER_SERVER_EXTENSIONS = (
    "jupyterlab_chat",
    "jupyter_ai_router",
    "jupyter_ai_persona_manager",
    "jupyter_ai_acp_client",
)
OTHER_LAB_EXTENSIONS = (
    "jupyterlab-chat-extension",
    "@jupyter-ai/router",
    "@jupyter-ai/persona-manager",
    "@jupyter-ai/acp-client",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    """A running ``jupyter lab``."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def lab_url(self, path: str = "lab") -> str:
        return f"{self.url}{path}?token={self.token}"

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the server directly (for setup and checks), as the owner."""
        headers = {"Authorization": f"token {self.token}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running_lab(
    tmp: Path,
    demo: DemoHandle,
    *,
    server: dict[str, Any] | None = None,
    dodo: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    theme: str | None = None,
) -> Iterator[Lab]:
    """Start ``jupyter lab`` with dodo and the demo server in the catalog."""
    for name in ("root", "config", "data", "runtime", "settings", "workspaces", "home"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    port = free_port()
    config = demo_config(tmp, demo.url)
    config["DodoApp"] = {**config["DodoApp"], **(dodo or {})}  # type: ignore[dict-item]
    config["ServerApp"] = {
        "jpserver_extensions": {
            "dodo_jupyter": True,
            **dict.fromkeys(OTHER_SERVER_EXTENSIONS, False),
        },
        "token": token,
        "open_browser": False,
        "root_dir": str(tmp / "root"),
        "ip": "127.0.0.1",
        "port": port,
        "port_retries": 0,
        **(server or {}),
    }
    config["IdentityProvider"] = {"token": token}
    config["LabApp"] = {
        "user_settings_dir": str(tmp / "settings"),
        "workspaces_dir": str(tmp / "workspaces"),
        "expose_app_in_browser": True,
    }
    if (BUILT_EXTENSION / "package.json").exists():
        (tmp / "labextensions").mkdir(exist_ok=True)
        (tmp / "labextensions" / "dodo-jupyter").symlink_to(BUILT_EXTENSION)
        config["LabApp"]["extra_labextensions_path"] = [str(tmp / "labextensions")]
    (tmp / "config" / "labconfig").mkdir(exist_ok=True)
    (tmp / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": dict.fromkeys(OTHER_LAB_EXTENSIONS, True)})
    )
    apputils = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True, exist_ok=True)
    # No "would you like to receive news?" toast over the screenshots.
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    if theme:
        (apputils / "themes.jupyterlab-settings").write_text(json.dumps({"theme": theme}))
    (tmp / "config" / "jupyter_server_config.json").write_text(json.dumps(config, indent=2))
    child_env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        # Agents' per-user configs (~/.jupyter/nbi/...) go here, not in the real home.
        "HOME": str(tmp / "home"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "NO_PROXY": "127.0.0.1,localhost",
        **(env or {}),
    }
    for name in ("JUPYTERHUB_USER", "JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN"):
        if env is None or name not in env:
            child_env.pop(name, None)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")
    log = tmp / "lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=tmp / "root",
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    lab = Lab(f"http://127.0.0.1:{port}/", token, tmp / "root", process, log)
    try:
        deadline = time.monotonic() + LAB_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{lab.log_tail()}")
            try:
                # Any answer will do: hub mode answers 403 to the token.
                if lab.api("GET", "api/status").status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not start:\n{lab.log_tail()}")
            time.sleep(0.25)
        yield lab
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> None:
    """Overrides pytest-jupyter's autouse loop fixture: these tests start no in-process
    server, and Playwright's sync API owns this thread's (running) event loop, which
    that fixture would otherwise take and close."""
    return None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> None:
    """Overrides pytest-jupyter's autouse cleanup (no in-process server here)."""
    return None


@pytest.fixture(scope="module")
def chromium_executable() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's package "
            "(apt-get install chromium) or set DODO_TEST_CHROMIUM"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Any]:
    """Chromium for one test module. Module scope, not session: Playwright's sync API
    keeps this thread's event loop running while it is open, and later tests (which
    take the thread's loop through pytest-jupyter) must not find it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoHandle]:
    """The demo OAuth MCP server (consent page with an Approve button)."""
    with running_demo_server() as handle:
        yield handle


@pytest.fixture(scope="module")
def admin_lab(tmp_path_factory: pytest.TempPathFactory, demo: DemoHandle) -> Iterator[Lab]:
    """Local mode: the owner is the administrator."""
    with running_lab(tmp_path_factory.mktemp("lab-admin"), demo) as lab:
        yield lab


@pytest.fixture(scope="module")
def hub_lab(tmp_path_factory: pytest.TempPathFactory, demo: DemoHandle) -> Iterator[Lab]:
    """Hub mode without a hub: owner ``alice`` (not an administrator), visitor ``bob``,
    dark theme."""
    with running_lab(
        tmp_path_factory.mktemp("lab-hub"),
        demo,
        server={"identity_provider_class": "tests.browser.lab_identity.CookieHubIdentityProvider"},
        dodo={"identity_mode": "hub", "hygiene_interval": 0},
        env={
            "JUPYTERHUB_USER": "alice",
            "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
            "DODO_TEST_HUB_USERS": "alice,bob",
        },
        theme="JupyterLab Dark",
    ) as lab:
        yield lab


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    # No service worker: page.route() must see every request.
    context = browser.new_context(viewport={"width": 1280, "height": 860}, service_workers="block")
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        if request.node.stash.get(_FAILED, False):
            shot = tmp_path / "failure.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(shot))
                print(f"screenshot of the failure: {shot}")
        context.close()


def widen_sidebar(page: Any, width: int = 360) -> None:
    """Drag the left sidebar's split handle so the panel is ``width`` pixels wide (for
    the screenshots; users resize it the same way)."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    panel = page.locator("#dodo-mcp-panel").bounding_box()
    if box is None or panel is None:
        return
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + (width - panel["width"]), y, steps=5)
    page.mouse.up()


def save_screenshot(page: Any, name: str, *, full: bool = False) -> None:
    """Save ``<name>.png`` in :data:`IMAGES` (``docs/images/``, which the README shows,
    with ``DODO_UPDATE_SCREENSHOTS=1``): the whole window, or the left side bar with the
    MCP panel."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    target = str(IMAGES / f"{name}.png")
    panel = None if full else page.locator("#dodo-mcp-panel").bounding_box()
    if panel is None:
        page.screenshot(path=target)
        return
    viewport = page.viewport_size
    page.screenshot(
        path=target,
        clip={
            "x": 0,
            "y": 0,
            "width": panel["x"] + panel["width"] + 4,
            "height": viewport["height"] if viewport else panel["y"] + panel["height"],
        },
    )
