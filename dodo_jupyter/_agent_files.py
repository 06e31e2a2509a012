"""Stand-in for :mod:`dodo_jupyter.agent_config`'s read/configure/remove functions while
that module only offers :func:`~dodo_jupyter.agent_config.write_entry`.

Same names and signatures as the API the Agents section uses (``installed``,
``read_entry``, ``token_id_in``, ``configure``, ``unconfigure``); :func:`api` returns
``agent_config`` itself as soon as it has them. File reads and writes run on a thread.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import agent_config
from .agent_config import AgentTarget, entry_for, write_entry
from .exceptions import NotFound, ValidationFailed

if TYPE_CHECKING:
    from .tokens import TokenService

__all__ = ["api"]

_PACKAGES = {"jupyter-ai": "jupyter_ai", "nbi": "notebook_intelligence"}
_PROGRAMS = {"claude-code": "claude"}


def api() -> Any:
    """``agent_config`` when it has the whole API, else this module."""
    if all(hasattr(agent_config, n) for n in ("read_entry", "configure", "unconfigure")):
        return agent_config
    import sys

    module: ModuleType = sys.modules[__name__]
    return module


def installed(target: AgentTarget) -> bool:
    if target.name in _PROGRAMS:
        return shutil.which(_PROGRAMS[target.name]) is not None
    package = _PACKAGES.get(target.name)
    return package is not None and importlib.util.find_spec(package) is not None


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except ValueError as e:
        raise ValidationFailed(
            f"{path} is not valid JSON ({e}); fix or move it, then try again. Nothing was changed."
        ) from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"{path} does not hold a JSON object; nothing was changed.")
    servers = data.get("mcpServers", {})
    if not isinstance(servers, dict):
        raise ValidationFailed(f"'mcpServers' in {path} is not an object; nothing was changed.")
    return data


def read_entry(target: AgentTarget, path: Path, *, name: str, url: str) -> dict[str, Any] | None:
    entry = _load(path).get("mcpServers", {}).get(name)
    return entry if isinstance(entry, dict) else None


def token_id_in(target: AgentTarget, entry: dict[str, Any]) -> str | None:
    headers = entry.get("headers")
    value = headers.get("Authorization") if isinstance(headers, dict) else None
    if not isinstance(value, str) or not value.startswith("Bearer "):
        return None
    from .tokens import parse_token  # SQLAlchemy: not at server start

    parsed = parse_token(value.removeprefix("Bearer ").strip())
    return parsed[0] if parsed else None


@dataclass(frozen=True)
class Report:
    path: Path
    backup: Path | None
    replaced: bool
    token_id: str | None
    revoked_token_id: str | None


async def _revoke(tokens: TokenService, username: str, token_id: str | None) -> str | None:
    if token_id is None:
        return None
    try:
        await tokens.delete(username, token_id)
    except NotFound:
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
) -> Report:
    path = target.path(root, home)
    old = await asyncio.to_thread(read_entry, target, path, name=name, url=url)
    new = await tokens.create(username, label or f"agent: {target.name}", expires_in_days)
    try:
        written = await asyncio.to_thread(
            write_entry, path, name, entry_for(target, url, new.token)
        )
    except BaseException:
        await tokens.delete(username, new.info["id"])
        raise
    revoked = await _revoke(tokens, username, token_id_in(target, old) if old else None)
    return Report(written.path, written.backup, written.replaced, new.info["id"], revoked)


def _remove(path: Path, name: str) -> tuple[dict[str, Any] | None, Path | None]:
    data = _load(path)
    entry = data.get("mcpServers", {}).pop(name, None)
    if entry is None:
        return None, None
    backup = path.with_name(f"{path.name}.bak")
    shutil.copy2(path, backup)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return entry if isinstance(entry, dict) else {}, backup


async def unconfigure(
    tokens: TokenService,
    username: str,
    target: AgentTarget,
    *,
    root: Path,
    home: Path,
    url: str,
    name: str = "dodo",
) -> Report | None:
    path = target.path(root, home)
    entry, backup = await asyncio.to_thread(_remove, path, name)
    if entry is None:
        return None
    revoked = await _revoke(tokens, username, token_id_in(target, entry))
    return Report(path, backup, True, None, revoked)
