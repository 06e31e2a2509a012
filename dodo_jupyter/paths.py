"""Where dodo keeps its files by default (no heavy imports: read at server start)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_db_path", "default_key_file", "sqlite_url_for"]


def default_key_file(data_dir: str) -> Path:
    """Where the generated key lives inside a Jupyter data directory."""
    return Path(data_dir) / "dodo" / "crypt.key"


def default_db_path(data_dir: str) -> Path:
    """Where the SQLite database lives inside a Jupyter data directory."""
    return Path(data_dir) / "dodo" / "dodo.sqlite"


def sqlite_url_for(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file at ``path``."""
    return f"sqlite:///{path}"
