"""Python names for gateway tools: ``<alias>__<tool>`` → ``tools.<server>.<tool>``.

The gateway name is split at the first :data:`~dodo_jupyter.gateway.naming.SEPARATOR`
(catalog ids never contain it); each part, and each parameter name of a tool, becomes
an identifier by these rules, in order:

1. every character other than an ASCII letter, digit or ``_`` becomes ``_``
   (``srv-1a2b3c`` → ``srv_1a2b3c``, ``get.item`` → ``get_item``);
2. a name that then does not start with a letter gets ``x`` in front
   (``3d-render`` → ``x3d_render``, ``_private`` → ``x_private``, ``""`` → ``x``), so
   no name is hidden from Tab completion or clashes with Python's ``__dunder__`` names;
3. a Python keyword, or a name the namespace itself uses (``tools.refresh``), gets
   ``_`` after it (``class`` → ``class_``, ``refresh`` → ``refresh_``);
4. names of one namespace that still come out the same: the one that needed no change
   keeps it, every other gets ``_`` and six hex digits of the SHA-256 of its original
   name (``get-item`` next to ``get_item`` → ``get_item_<hash>``), whatever the order.

The mapping is one-way by rule and reversible by record: every generated function keeps
its gateway name (``fn.gateway_name``) and its parameters' schema names
(``fn.parameter_names``), and :func:`tool_paths` gives the whole table for a listing.
"""

from __future__ import annotations

import hashlib
import keyword
import re
from collections import defaultdict
from collections.abc import Iterable

#: How the gateway joins a server's alias and a tool's name (``SEPARATOR`` of
#: :mod:`dodo_jupyter.gateway.naming`; this side runs in kernels, which do not load it).
SEPARATOR = "__"

__all__ = [
    "ROOT",
    "ROOT_NAMES",
    "python_name",
    "python_names",
    "python_path",
    "split_gateway_name",
    "tool_paths",
]

#: The name code uses for the API: ``from dodo_jupyter import tools``.
ROOT = "tools"
#: Names ``dodo_jupyter.tools`` itself defines, which no server may take.
ROOT_NAMES = frozenset({"refresh"})
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")
_HASH_LENGTH = 6


def python_name(name: str, reserved: Iterable[str] = ()) -> str:
    """``name`` by rules 1 to 3 of the module docstring (one name, no collisions)."""
    safe = _NOT_IDENTIFIER.sub("_", name)
    if not safe[:1].isalpha():
        safe = f"x{safe}"
    if keyword.iskeyword(safe) or safe in set(reserved):
        safe = f"{safe}_"
    return safe


def python_names(names: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Each of ``names`` → its Python name in one namespace, by all four rules."""
    reserved = frozenset(reserved)
    by_python: dict[str, list[str]] = defaultdict(list)
    for name in sorted(set(names)):
        by_python[python_name(name, reserved)].append(name)
    result: dict[str, str] = {}
    for safe, originals in by_python.items():
        for original in originals:
            if len(originals) == 1 or original == safe:
                result[original] = safe
            else:
                digest = hashlib.sha256(original.encode()).hexdigest()[:_HASH_LENGTH]
                result[original] = f"{safe}_{digest}"
    return result


def split_gateway_name(gateway_name: str) -> tuple[str, str]:
    """``("demo", "add")`` for ``demo__add``; ``("", name)`` for a name without the
    separator (the gateway makes none: a catalog id is at most 32 characters)."""
    alias, separator, tool = gateway_name.partition(SEPARATOR)
    return (alias, tool) if separator else ("", gateway_name)


def tool_paths(gateway_names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Each gateway name of one listing → ``(server attribute, tool attribute)`` under
    :data:`ROOT`, collisions resolved across the whole listing (rule 4)."""
    split = {name: split_gateway_name(name) for name in set(gateway_names)}
    servers = python_names((alias for alias, _ in split.values()), ROOT_NAMES)
    tools_of: dict[str, set[str]] = defaultdict(set)
    for alias, tool in split.values():
        tools_of[alias].add(tool)
    tool_names = {alias: python_names(tools) for alias, tools in tools_of.items()}
    return {
        name: (servers[alias], tool_names[alias][tool]) for name, (alias, tool) in split.items()
    }


def python_path(gateway_name: str, *, among: Iterable[str] | None = None) -> str:
    """Where code finds a gateway tool: ``"demo__add"`` → ``"tools.demo.add"``.

    Alone, the name is mangled by itself; with ``among`` (the names of the whole listing)
    two names that come out the same are told apart as the kernel's ``tools`` does."""
    names = {gateway_name, *(among or ())}
    server, tool = tool_paths(names)[gateway_name]
    return f"{ROOT}.{server}.{tool}"
