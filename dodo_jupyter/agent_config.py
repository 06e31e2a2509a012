"""Point an agent at the gateway: the config entry each agent reads, merged into its file.

Every target uses the ``mcpServers`` map most MCP clients share; the entry for dodo is
the gateway URL with an ``Authorization: Bearer`` header:

* ``jupyter-ai``: ``<root>/.jupyter/mcp_settings.json`` (Jupyter AI's MCP settings in the
  directory JupyterLab serves);
* ``nbi``: ``~/.jupyter/nbi/mcp.json`` (notebook-intelligence);
* ``claude-code``: ``<root>/.mcp.json`` (Claude Code's project servers; ``"type":
  "http"``).

:func:`write_entry` merges: other servers and settings stay as they are, an existing
entry of the same name is replaced, the previous file is kept next to it as
``<name>.bak-<UTC time>``, and a file that is not a JSON object is left alone with an
error saying so. Files are written whole (temporary file, then rename) and readable by
the owner only, since they hold a token.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .exceptions import ValidationFailed

__all__ = ["TARGETS", "AgentTarget", "WriteReport", "entry_for", "write_entry"]


@dataclass(frozen=True)
class AgentTarget:
    """Where one agent reads its MCP servers from, and in which shape."""

    name: str
    description: str
    in_home: bool
    relative_path: str
    typed: bool = False

    def path(self, root: Path, home: Path) -> Path:
        return (home if self.in_home else root) / self.relative_path


TARGETS: dict[str, AgentTarget] = {
    "jupyter-ai": AgentTarget(
        "jupyter-ai", "Jupyter AI", in_home=False, relative_path=".jupyter/mcp_settings.json"
    ),
    "nbi": AgentTarget(
        "nbi", "notebook-intelligence", in_home=True, relative_path=".jupyter/nbi/mcp.json"
    ),
    "claude-code": AgentTarget(
        "claude-code", "Claude Code", in_home=False, relative_path=".mcp.json", typed=True
    ),
}


def entry_for(target: AgentTarget, url: str, token: str) -> dict[str, Any]:
    """The ``mcpServers`` entry that points ``target`` at the gateway."""
    entry: dict[str, Any] = {"url": url, "headers": {"Authorization": f"Bearer {token}"}}
    if target.typed:
        entry = {"type": "http", **entry}
    return entry


@dataclass(frozen=True)
class WriteReport:
    path: Path
    backup: Path | None
    replaced: bool


def write_entry(path: Path, name: str, entry: dict[str, Any]) -> WriteReport:
    """Merge ``{"mcpServers": {name: entry}}`` into the JSON file at ``path``."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8") or "{}")
        except ValueError as e:
            raise ValidationFailed(
                f"{path} is not valid JSON ({e}); fix or move it, then run this again. "
                "Nothing was changed."
            ) from None
        if not isinstance(loaded, dict):
            raise ValidationFailed(f"{path} does not hold a JSON object; nothing was changed.")
        data = loaded
    servers = data.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise ValidationFailed(f"'mcpServers' in {path} is not an object; nothing was changed.")
    replaced = name in servers
    servers[name] = entry
    backup = None
    if path.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        backup = path.with_name(f"{path.name}.bak-{stamp}")
        shutil.copy2(path, backup)
        backup.chmod(0o600)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return WriteReport(path, backup, replaced)
