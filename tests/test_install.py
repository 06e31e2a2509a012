"""The installed package enables itself: server extension and prebuilt labextension."""

from __future__ import annotations

import re
import subprocess

from .test_cli import JUPYTER

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter(*args: str) -> str:
    result = subprocess.run(
        [str(JUPYTER), *args], capture_output=True, text=True, timeout=120, check=True
    )
    return _ANSI.sub("", result.stdout + result.stderr)


def test_server_extension_is_enabled_and_valid() -> None:
    out = _jupyter("server", "extension", "list")
    assert re.search(r"dodo_jupyter enabled", out), out
    assert re.search(r"dodo_jupyter \S+ OK", out), out


def test_labextension_is_installed_prebuilt_and_enabled() -> None:
    out = _jupyter("labextension", "list")
    assert re.search(r"dodo-jupyter v\S+ enabled OK \(python, dodo-jupyter\)", out), out
