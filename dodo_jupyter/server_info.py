"""Where a running server keeps dodo's store, for ``jupyter dodo`` to use the same one.

jupyter_server writes ``jpserver-<pid>.json`` into the Jupyter runtime directory; dodo
writes ``dodo-<pid>.json`` beside it when its extension starts (database URL, key file,
gateway URL; mode 0600, the directory is private) and removes it when it stops. The CLI
reads the files whose process is alive, so a token it creates is one the running server's
gateway accepts, even when that server was started with its own configuration
(``jupyter dodo demo``, ``--config``, environment variables).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunningDodo", "remove_info", "running_servers", "write_info"]

_PREFIX = "dodo-"


@dataclass(frozen=True)
class RunningDodo:
    """A Jupyter server with dodo, as its info file describes it."""

    pid: int
    db_url: str
    key_file: str
    gateway_url: str
    path: Path


def _runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def write_info(db_url: str, key_file: str, gateway_url: str) -> Path:
    """Write this process's info file (0600); returns its path."""
    directory = _runtime_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{_PREFIX}{os.getpid()}.json"
    data = {"pid": os.getpid(), "db_url": db_url, "key_file": key_file, "gateway_url": gateway_url}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    return path


def remove_info() -> None:
    """Remove this process's info file (when the server stops)."""
    (_runtime_dir() / f"{_PREFIX}{os.getpid()}.json").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, but not ours to use
        return False
    return True


def running_servers() -> list[RunningDodo]:
    """The servers with dodo whose process still runs, newest first."""
    found: list[RunningDodo] = []
    directory = _runtime_dir()
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob(f"{_PREFIX}*.json"), key=_mtime, reverse=True):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            info = RunningDodo(
                int(data["pid"]),
                str(data["db_url"]),
                str(data["key_file"]),
                str(data["gateway_url"]),
                path,
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(info.pid):
            found.append(info)
    return found


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
