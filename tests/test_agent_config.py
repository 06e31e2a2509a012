"""Agent config exports, each loaded by the agent's own code: Jupyter AI 3.2's
``McpSettings`` and ``PersonaManager.get_mcp_settings``, notebook-intelligence 6.2's
``validate_mcp_config`` (its wheel's module, run as shipped: NBI needs ``mcp<2`` and cannot
be installed beside dodo), and Claude Code's documented ``.mcp.json`` schema (it has no
Python loader). Merging keeps other servers, replaces dodo's by name or URL, keeps a
backup, refuses a broken file without making a token, and revokes the token it replaces."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from jupyter_ai_persona_manager import McpServerHttp, McpSettings
from jupyter_ai_persona_manager.persona_manager import PersonaManager

from dodo_jupyter import agent_config
from dodo_jupyter.agent_config import TARGETS, configure, read_entry, unconfigure
from dodo_jupyter.exceptions import ValidationFailed
from dodo_jupyter.runtime import DodoRuntime

pytestmark = pytest.mark.asyncio

URL = "http://127.0.0.1:8888/dodo/mcp"
REPO = Path(__file__).resolve().parents[1]
NBI = "notebook-intelligence==6.2.0"


@pytest.fixture(scope="session")
def nbi_validate() -> Callable[[Any], None]:
    """notebook-intelligence 6.2's own ``validate_mcp_config`` (what its settings dialog
    runs on ``mcp.json``), from its wheel (downloaded once into the venv)."""
    cache = Path(sys.prefix) / "agent-hosts"
    wheels = sorted(cache.glob("notebook_intelligence-6.2.0-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", NBI, "-d", str(cache)],
            check=True,
            timeout=300,
        )
        wheels = sorted(cache.glob("notebook_intelligence-6.2.0-*.whl"))
    source = cache / "nbi_mcp_config_validation.py"
    with zipfile.ZipFile(wheels[0]) as wheel:
        source.write_bytes(wheel.read("notebook_intelligence/mcp_config_validation.py"))
    spec = importlib.util.spec_from_file_location("nbi_mcp_config_validation", source)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.validate_mcp_config  # type: ignore[no-any-return]


def _jupyter_ai_servers(root: Path) -> list[Any]:
    """The servers Jupyter AI's PersonaManager reads from ``<root>/.jupyter`` (its own
    ``get_mcp_settings``, on a stand-in for a chat's manager)."""
    manager = SimpleNamespace(
        get_dotjupyter_dir=lambda: str(root / ".jupyter"),
        builtin_mcp_servers=[],
        log=logging.getLogger("test"),
    )
    settings = PersonaManager.get_mcp_settings(manager)  # type: ignore[arg-type]
    return list(settings.mcp_servers) if settings is not None else []


def _claude_code_schema(doc: dict[str, Any]) -> None:
    """Claude Code's documented project file: ``mcpServers`` by name, an HTTP server as
    ``{"type": "http", "url", "headers": {name: value}}``."""
    assert set(doc) >= {"mcpServers"}
    for entry in doc["mcpServers"].values():
        if entry.get("type") == "http":
            assert isinstance(entry["url"], str)
            assert all(isinstance(v, str) for v in entry.get("headers", {}).values())


async def _count(runtime: DodoRuntime) -> int:
    return len(await runtime.tokens.list("ada"))


async def test_each_file_loads_with_the_agents_own_code(
    runtime: DodoRuntime, tmp_path: Path, nbi_validate: Callable[[Any], None]
) -> None:
    root, home = tmp_path / "root", tmp_path / "home"
    for target in TARGETS.values():
        await configure(runtime.tokens, "ada", target, root=root, home=home, url=URL)

    settings_file = root / ".jupyter" / "mcp_settings.json"
    loaded = McpSettings(**json.loads(settings_file.read_text()))
    (ours,) = loaded.mcp_servers
    assert isinstance(ours, McpServerHttp) and ours.type == "http" and ours.url == URL
    (seen,) = _jupyter_ai_servers(root)
    assert seen.name == "dodo" and seen.headers[0].value.startswith("Bearer dodo_")

    nbi = json.loads((home / ".jupyter" / "nbi" / "mcp.json").read_text())
    nbi_validate(nbi)  # raises MCPConfigValidationError when NBI would refuse it
    assert nbi["mcpServers"]["dodo"]["url"] == URL
    with pytest.raises(ValueError, match="headers"):
        nbi_validate({"mcpServers": {"x": {"url": URL, "headers": ["not a map"]}}})

    claude = json.loads((root / ".mcp.json").read_text())
    _claude_code_schema(claude)
    for path in (settings_file, root / ".mcp.json", home / ".jupyter/nbi/mcp.json"):
        assert path.stat().st_mode & 0o777 == 0o600


async def test_merging_keeps_others_replaces_ours_and_revokes_its_token(
    runtime: DodoRuntime, tmp_path: Path
) -> None:
    target = TARGETS["jupyter-ai"]
    path = target.path(tmp_path, tmp_path)
    path.parent.mkdir(parents=True)
    other = {"type": "http", "name": "team", "url": "https://team.example/mcp", "headers": []}
    stdio = {"name": "local", "command": "uvx", "args": ["thing"], "env": []}
    renamed = {"type": "http", "name": "my-dodo", "url": URL, "headers": []}  # ours, by URL
    path.write_text(json.dumps({"mcp_servers": [other, stdio, renamed], "extra": 1}))
    before = path.read_text()

    first = await configure(runtime.tokens, "ada", target, root=tmp_path, home=tmp_path, url=URL)
    doc = json.loads(path.read_text())
    assert doc["extra"] == 1 and doc["mcp_servers"][:2] == [other, stdio]
    assert [s["name"] for s in doc["mcp_servers"]] == ["team", "local", "dodo"]
    assert first.replaced and first.backup is not None and first.backup.read_text() == before
    assert len(_jupyter_ai_servers(tmp_path)) == 3

    entry = read_entry(target, path, name="dodo", url=URL)
    assert entry is not None and agent_config.token_id_in(target, entry) == first.token_id
    token = entry["headers"][0]["value"].removeprefix("Bearer ")
    assert await runtime.tokens.authenticate(token) == "ada"

    second = await configure(runtime.tokens, "ada", target, root=tmp_path, home=tmp_path, url=URL)
    assert second.revoked_token_id == first.token_id
    assert await runtime.tokens.authenticate(token) is None  # the replaced token is revoked
    assert await _count(runtime) == 1

    removed = await unconfigure(
        runtime.tokens, "ada", target, root=tmp_path, home=tmp_path, url=URL
    )
    assert removed is not None and removed.revoked_token_id == second.token_id
    assert [s["name"] for s in json.loads(path.read_text())["mcp_servers"]] == ["team", "local"]
    assert await _count(runtime) == 0
    assert (
        await unconfigure(runtime.tokens, "ada", target, root=tmp_path, home=tmp_path, url=URL)
    ) is None


async def test_a_token_of_another_user_in_the_file_is_left_alone(
    runtime: DodoRuntime, tmp_path: Path
) -> None:
    target = TARGETS["claude-code"]
    theirs = await runtime.tokens.create("bob", "bob's")
    path = target.path(tmp_path, tmp_path)
    path.write_text(
        json.dumps({"mcpServers": {"dodo": target.format.make("dodo", URL, theirs.token)}})
    )
    report = await configure(runtime.tokens, "ada", target, root=tmp_path, home=tmp_path, url=URL)
    assert report.replaced and report.revoked_token_id is None
    assert await runtime.tokens.authenticate(theirs.token) == "bob"


@pytest.mark.parametrize(
    ("target_name", "content", "problem"),
    [
        ("jupyter-ai", "{not json", "not valid JSON"),
        ("jupyter-ai", "[]", "does not hold a JSON object"),
        ("jupyter-ai", '{"mcp_servers": {"dodo": {}}}', "'mcp_servers' must be a list"),
        ("jupyter-ai", '{"mcp_servers": [{"type": "http", "name": "x"}]}', "needs a 'url'"),
        ("nbi", '{"mcpServers": []}', "'mcpServers' must be an object"),
        ("claude-code", '{"mcpServers": {"x": {"url": "u", "headers": [1]}}}', "headers"),
    ],
)
async def test_a_broken_file_is_refused_unchanged_and_costs_no_token(
    runtime: DodoRuntime, tmp_path: Path, target_name: str, content: str, problem: str
) -> None:
    target = TARGETS[target_name]
    path = target.path(tmp_path, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    with pytest.raises(ValidationFailed) as refused:
        await configure(runtime.tokens, "ada", target, root=tmp_path, home=tmp_path, url=URL)
    assert problem in refused.value.message and "nothing was changed" in refused.value.message
    assert "pydantic" not in refused.value.message
    assert path.read_text() == content and await _count(runtime) == 0
    assert list(path.parent.glob("*.bak-*")) == []


async def test_a_file_that_cannot_be_written_leaves_no_token(runtime: DodoRuntime) -> None:
    """The file checks out (it does not exist), then writing fails: /proc takes no files."""
    root = Path("/proc/self/dodo-agent-config-test")
    target = TARGETS["jupyter-ai"]
    with pytest.raises(ValidationFailed, match="cannot be written"):
        await configure(runtime.tokens, "ada", target, root=root, home=root, url=URL)
    assert await _count(runtime) == 0
