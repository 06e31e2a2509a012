"""The docs stay true: every test that docs/security.md names as proof exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_test_the_security_model_names_exists() -> None:
    doc = (REPO / "docs" / "security.md").read_text()
    named = re.findall(r"`((?:hub/)?test_[a-z0-9_]+\.py)(?:::([A-Za-z0-9_]+))?`", doc)
    named = [(f, name) for f, name in named if f != "test_x.py"]  # the notation's example
    assert len(named) > 20
    missing = []
    for file, name in named:
        path = REPO / "tests" / file
        if not path.exists() or (name and f"def {name}(" not in path.read_text()):
            missing.append(f"{file}::{name}" if name else file)
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
