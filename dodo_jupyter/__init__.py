"""dodo-jupyter: remote MCP servers for Jupyter users and their notebook agents."""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import DodoApp

    return [{"module": "dodo_jupyter", "app": DodoApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "dodo-jupyter"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dodo_jupyter``: registers the ``%dodo`` magics (see .magics)."""
    from .magics import DodoMagics

    ipython.register_magics(DodoMagics)
