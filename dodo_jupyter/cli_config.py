"""Which settings and store ``jupyter dodo`` uses (see :mod:`dodo_jupyter.cli`).

The running Jupyter server's store when one with dodo runs (its ``dodo-<pid>.json``, see
:mod:`dodo_jupyter.server_info`); otherwise the configuration the server would read.
``--config`` and ``--db-url`` take precedence.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .exceptions import DodoError

__all__ = ["load_settings"]


def _config_files() -> list[Path]:
    """``jupyter_server_config`` and ``jupyter_dodo_config`` (.py, .json) on the Jupyter
    config path and in the current directory, lowest priority first."""
    from jupyter_core.paths import jupyter_config_path

    directories = [*map(Path, jupyter_config_path()[::-1]), Path.cwd()]
    return [
        directory / f"{name}{suffix}"
        for name in ("jupyter_server_config", "jupyter_dodo_config")
        for directory in directories
        for suffix in (".py", ".json")
    ]


def _read_config(path: Path) -> Any:
    from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

    loader = JSONFileConfigLoader if path.suffix == ".json" else PyFileConfigLoader
    return loader(path.name, str(path.parent)).load_config()


def load_settings(args: argparse.Namespace) -> Any:
    """dodo's settings as the server would read them; the database and key file of the
    Jupyter server with dodo that runs now, unless ``--config`` or ``--db-url`` say
    otherwise."""
    from traitlets.config import Config

    from .settings import DodoSettings

    config = Config()
    for path in _config_files():
        if path.is_file():
            config.merge(_read_config(path))
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise DodoError(f"--config {args.config!r}: no such file.")
        config.merge(_read_config(path))
    settings = DodoSettings(config=Config({"DodoSettings": config.get("DodoApp", Config())}))
    if args.db_url:
        settings.db_url = args.db_url
    elif not args.config:
        server = _running_server()
        if server is not None:
            settings.db_url, settings.key_file = server.db_url, server.key_file
    return settings


def _running_server() -> Any:
    """The one Jupyter server with dodo that runs now (told on stderr), or None."""
    from .server_info import running_servers

    servers = running_servers()
    if not servers:
        return None
    if len(servers) > 1:
        urls = ", ".join(s.gateway_url for s in servers)
        raise DodoError(
            f"Several Jupyter servers with dodo run ({urls}): say which database to use "
            "with --db-url or --config."
        )
    print(
        f"jupyter dodo: using the store of the server at {servers[0].gateway_url}", file=sys.stderr
    )
    return servers[0]
