"""The sidebar's pure TypeScript helpers (Try form, snippets), unit-tested with Node's own
test runner on the compiled ``labextension/lib`` (built by ``pip install .`` or
``jlpm build``): ``labextension/src/__tests__/*.test.mjs``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LABEXTENSION = Path(__file__).resolve().parents[1] / "labextension"


def test_node_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (>= 20.19) is needed: it builds the labextension and runs these tests")
    if not (LABEXTENSION / "lib" / "schemaForm.js").exists():
        pytest.fail("labextension/lib is missing: build it with `cd labextension && jlpm build`")
    tests = sorted(str(p) for p in (LABEXTENSION / "src" / "__tests__").glob("*.test.mjs"))
    assert tests
    result = subprocess.run(
        [node, "--test", *tests], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
