"""What the package declares: every package its code imports, with a version range."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import dodo_jupyter

PACKAGE = Path(dodo_jupyter.__file__).parent


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"dodo_jupyter", "__future__"}


def declared() -> dict[str, str]:
    """Declared requirements (extras included): canonical name -> the requirement."""
    requirements = importlib.metadata.requires("dodo-jupyter") or []
    return {canonical(re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0]): req for req in requirements}


def test_every_imported_package_is_declared_with_a_version_range() -> None:
    distributions = importlib.metadata.packages_distributions()
    requirements = declared()
    missing = []
    for module in sorted(imported_top_level_modules()):
        names = [canonical(d) for d in distributions.get(module, [module])]
        found = [requirements[n] for n in names if n in requirements]
        if not found:
            missing.append(module)
            continue
        assert any(re.search(r"[<>=~]", req) for req in found), (module, found)
    assert missing == [], f"imported but not declared in pyproject.toml: {missing}"
