"""Point an agent at the gateway: dodo's entry in the MCP config file each agent reads,
in that agent's own format.

=============  ====================================  =====================================
target         file                                  format (checked by the agent's code)
=============  ====================================  =====================================
``jupyter-ai`` ``<root>/.jupyter/mcp_settings.json`` Jupyter AI 3.2's ``McpSettings``:
                                                     ``{"mcp_servers": [{"type": "http",
                                                     "name", "url", "headers": [{"name",
                                                     "value"}]}]}``
``nbi``        ``~/.jupyter/nbi/mcp.json``           notebook-intelligence 6.2:
                                                     ``{"mcpServers": {name: {"type":
                                                     "http", "url", "headers": {...}}}}``
``claude-code`` ``<root>/.mcp.json``                 Claude Code's project servers: the
                                                     same map, ``"type": "http"``
=============  ====================================  =====================================

Writing merges: every other server and every other key of the file stays as it is; dodo's
entry (the one with dodo's name or the gateway's URL) is replaced. The previous file is
kept next to it as ``<name>.bak-<UTC time>``; a file that is not valid JSON of the
target's format is refused with a message saying what is wrong, and nothing changes. Files
are written whole (temporary file, then rename) and readable by the owner only: they hold
a token.

:func:`configure` creates the entry's gateway token only after the file checked out, deletes
it again when writing fails, and revokes the token the replaced entry held;
:func:`unconfigure` removes the entry and revokes its token. File I/O runs on a thread.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exceptions import NotFound, ValidationFailed

if TYPE_CHECKING:
    from .tokens import TokenService

__all__ = [
    "TARGETS",
    "AgentTarget",
    "ConfigureReport",
    "RemoveReport",
    "configure",
    "installed",
    "read_entry",
    "snippet",
    "token_id_in",
    "unconfigure",
]

_BEARER = "Bearer "


# -- the two formats ------------------------------------------------------------------


def _fail(path: Path, problem: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {problem}. Fix or move the file; nothing was changed.")


def _str_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


class _ServersMap:
    """``{"mcpServers": {name: {"type": "http", "url", "headers": {name: value}}}}``."""

    key = "mcpServers"

    def check(self, path: Path, doc: dict[str, Any]) -> None:
        servers = doc.get(self.key, {})
        if not isinstance(servers, dict):
            raise _fail(path, f"'{self.key}' must be an object of servers by name")
        for name, entry in servers.items():
            if not isinstance(entry, dict):
                raise _fail(path, f"'{self.key}.{name}' must be an object")
            if "headers" in entry and not _str_map(entry["headers"]):
                raise _fail(path, f"'{self.key}.{name}.headers' must map names to strings")

    def entries(self, doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return list(doc.get(self.key, {}).items())

    def make(self, name: str, url: str, token: str) -> dict[str, Any]:
        return {"type": "http", "url": url, "headers": {"Authorization": _BEARER + token}}

    def put(self, doc: dict[str, Any], name: str, entry: dict[str, Any], drop: list[str]) -> None:
        servers = {k: v for k, v in doc.get(self.key, {}).items() if k not in drop}
        servers[name] = entry
        doc[self.key] = servers

    def remove(self, doc: dict[str, Any], drop: list[str]) -> None:
        doc[self.key] = {k: v for k, v in doc.get(self.key, {}).items() if k not in drop}

    def authorization(self, entry: dict[str, Any]) -> str | None:
        headers = entry.get("headers") or {}
        for key, value in headers.items():
            if key.lower() == "authorization" and isinstance(value, str):
                return value
        return None


class _McpSettings:
    """Jupyter AI's ``{"mcp_servers": [McpServerHttp | McpServerStdio, ...]}``."""

    key = "mcp_servers"

    def check(self, path: Path, doc: dict[str, Any]) -> None:
        servers = doc.get(self.key, [])
        if not isinstance(servers, list):
            raise _fail(path, f"'{self.key}' must be a list of servers")
        for i, entry in enumerate(servers):
            where = f"'{self.key}[{i}]'"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise _fail(path, f"{where} must be an object with a 'name'")
            if entry.get("type") == "http":
                headers = entry.get("headers", [])
                if not isinstance(entry.get("url"), str) or not isinstance(headers, list):
                    raise _fail(path, f"{where} (http) needs a 'url' and a list of 'headers'")
                if not all(
                    isinstance(h, dict) and isinstance(h.get("name"), str) and "value" in h
                    for h in headers
                ):
                    raise _fail(path, f"{where}.headers must be objects with 'name' and 'value'")
            elif "type" in entry:
                raise _fail(path, f"{where}.type must be 'http' (or left out for a command)")
            elif not isinstance(entry.get("command"), str) or not isinstance(
                entry.get("args", []), list
            ):
                raise _fail(path, f"{where} needs a 'command' and a list of 'args'")

    def entries(self, doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [(e["name"], e) for e in doc.get(self.key, [])]

    def make(self, name: str, url: str, token: str) -> dict[str, Any]:
        header = {"name": "Authorization", "value": _BEARER + token}
        return {"type": "http", "name": name, "url": url, "headers": [header]}

    def put(self, doc: dict[str, Any], name: str, entry: dict[str, Any], drop: list[str]) -> None:
        doc[self.key] = [*self._kept(doc, drop), entry]

    def remove(self, doc: dict[str, Any], drop: list[str]) -> None:
        doc[self.key] = self._kept(doc, drop)

    def _kept(self, doc: dict[str, Any], drop: list[str]) -> list[Any]:
        return [e for e in doc.get(self.key, []) if e.get("name") not in drop]

    def authorization(self, entry: dict[str, Any]) -> str | None:
        for header in entry.get("headers") or []:
            if str(header.get("name", "")).lower() == "authorization":
                value = header.get("value")
                return value if isinstance(value, str) else None
        return None


_Format = _ServersMap | _McpSettings


@dataclass(frozen=True)
class AgentTarget:
    """Where one agent reads its MCP servers from, and in which format."""

    name: str
    description: str
    in_home: bool
    relative_path: str
    format: _Format
    #: An importable package (or, for a CLI, a program on PATH) that says it is installed.
    package: str | None = None
    program: str | None = None

    def path(self, root: Path, home: Path) -> Path:
        """The config file, for a Jupyter root directory and a home directory."""
        return (home if self.in_home else root) / self.relative_path


TARGETS: dict[str, AgentTarget] = {
    "jupyter-ai": AgentTarget(
        "jupyter-ai",
        "Jupyter AI",
        in_home=False,
        relative_path=".jupyter/mcp_settings.json",
        format=_McpSettings(),
        package="jupyter_ai_persona_manager",
    ),
    "nbi": AgentTarget(
        "nbi",
        "notebook-intelligence",
        in_home=True,
        relative_path=".jupyter/nbi/mcp.json",
        format=_ServersMap(),
        package="notebook_intelligence",
    ),
    "claude-code": AgentTarget(
        "claude-code",
        "Claude Code",
        in_home=False,
        relative_path=".mcp.json",
        format=_ServersMap(),
        program="claude",
    ),
}


def installed(target: AgentTarget) -> bool:
    """Whether the agent is installed here (nothing is imported)."""
    if target.package is not None:
        return importlib.util.find_spec(target.package) is not None
    return target.program is not None and shutil.which(target.program) is not None


def snippet(target: AgentTarget, url: str, token: str, name: str = "dodo") -> dict[str, Any]:
    """A whole file holding only dodo's entry, to paste."""
    doc: dict[str, Any] = {}
    target.format.put(doc, name, target.format.make(name, url, token), [])
    return doc


# -- reading ------------------------------------------------------------------------


def _load(target: AgentTarget, path: Path) -> dict[str, Any]:
    """The file as a checked document; ``{}`` when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise _fail(path, "is not UTF-8 text") from None
    except OSError as e:
        raise _fail(path, f"cannot be read ({e.strerror})") from None
    try:
        doc = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as e:
        raise _fail(path, f"is not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(doc, dict):
        raise _fail(path, "does not hold a JSON object")
    target.format.check(path, doc)
    return doc


def _ours(
    target: AgentTarget, doc: dict[str, Any], name: str, url: str
) -> tuple[list[str], dict[str, Any] | None]:
    """The names of dodo's entries (by name, or pointing at the gateway's URL) and the
    entry to report (the one with dodo's name first)."""
    found = dict(target.format.entries(doc))
    names = [n for n, e in found.items() if n == name or e.get("url") == url]
    if not names:
        return names, None
    return names, found[name] if name in found else found[names[0]]


def read_entry(target: AgentTarget, path: Path, *, name: str, url: str) -> dict[str, Any] | None:
    """dodo's entry in the file (by name, else by URL), None when there is none;
    :class:`ValidationFailed` when the file cannot be used."""
    return _ours(target, _load(target, path), name, url)[1]


def token_id_in(target: AgentTarget, entry: dict[str, Any]) -> str | None:
    """The id of the dodo token in an entry's ``Authorization`` header, if any."""
    from .tokens import parse_token

    value = target.format.authorization(entry)
    if value is None or not value.startswith(_BEARER):
        return None
    parts = parse_token(value[len(_BEARER) :].strip())
    return parts[0] if parts else None


# -- writing ------------------------------------------------------------------------


def _write_whole(path: Path, doc: dict[str, Any]) -> Path | None:
    """Replace ``path`` with ``doc`` (0600); the old file becomes a backup."""
    backup = None
    if path.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        backup = path.with_name(f"{path.name}.bak-{stamp}")
        shutil.copy2(path, backup)
        backup.chmod(0o600)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:
        raise _fail(path, f"cannot be written ({e.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return backup


def _change(
    target: AgentTarget, path: Path, name: str, url: str, entry: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, Path | None]:
    """Read and check the file, put ``entry`` in place of dodo's entries (or, when None,
    remove them) and write it; returns the entry replaced or removed, and the backup."""
    doc = _load(target, path)
    drop, old = _ours(target, doc, name, url)
    if entry is None:
        target.format.remove(doc, drop)
    else:
        target.format.put(doc, name, entry, drop)
    return old, _write_whole(path, doc)


@dataclass(frozen=True)
class ConfigureReport:
    """What :func:`configure` did."""

    path: Path
    backup: Path | None
    replaced: bool
    token_id: str
    revoked_token_id: str | None


@dataclass(frozen=True)
class RemoveReport:
    """What :func:`unconfigure` did."""

    path: Path
    backup: Path | None
    revoked_token_id: str | None


async def _revoke(tokens: TokenService, username: str, token_id: str | None) -> str | None:
    if token_id is None:
        return None
    try:
        await tokens.delete(username, token_id)
    except NotFound:  # already gone, or not this user's: left alone
        return None
    return token_id


async def configure(
    tokens: TokenService,
    username: str,
    target: AgentTarget,
    *,
    root: Path,
    home: Path,
    url: str,
    name: str = "dodo",
    label: str | None = None,
    expires_in_days: int | None = None,
) -> ConfigureReport:
    """Write dodo's entry, with a new gateway token for ``username``, into the target's
    file; the token of the entry it replaces is revoked.

    Raises
    ------
    ValidationFailed
        The file is not usable (nothing changed, no token made), or cannot be written
        (the new token is deleted again).
    """
    path = target.path(root, home)
    await asyncio.to_thread(_load, target, path)  # refuse before a token exists
    new = await tokens.create(username, label or f"agent: {target.description}", expires_in_days)
    entry = target.format.make(name, url, new.token)
    try:
        old, backup = await asyncio.to_thread(_change, target, path, name, url, entry)
    except BaseException:
        await tokens.delete(username, new.info["id"])
        raise
    previous = token_id_in(target, old) if old is not None else None
    revoked = await _revoke(tokens, username, previous if previous != new.info["id"] else None)
    return ConfigureReport(path, backup, old is not None, new.info["id"], revoked)


async def unconfigure(
    tokens: TokenService,
    username: str,
    target: AgentTarget,
    *,
    root: Path,
    home: Path,
    url: str,
    name: str = "dodo",
) -> RemoveReport | None:
    """Remove dodo's entry from the target's file and revoke its token; None when the
    file has no such entry (nothing is written)."""
    path = target.path(root, home)
    if await asyncio.to_thread(read_entry, target, path, name=name, url=url) is None:
        return None
    old, backup = await asyncio.to_thread(_change, target, path, name, url, None)
    previous = token_id_in(target, old) if old is not None else None
    return RemoveReport(path, backup, await _revoke(tokens, username, previous))
