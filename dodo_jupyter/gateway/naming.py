"""Aggregated tool names: ``<server-alias>__<tool>``, stable and collision-free.

MCP clients (and the model APIs behind them) accept tool names matching
``^[A-Za-z0-9_-]{1,64}$``. The gateway names each upstream tool
``<catalog id>__<tool name>``. When that name is not already valid — too long, a
character outside the set, or equal to another tool's name — it keeps a readable head
and appends ``_`` and eight hex digits of the SHA-256 of the (alias, tool) pair. So:

- no tool is dropped and no name is cut without the hash;
- colliding names *all* get their hash, so which tool gets the plain name never depends
  on the order tools were listed in;
- the mapping depends only on (alias, tool) pairs: the same connections give the same
  names after a restart.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["MAX_NAME_LENGTH", "NAME_PATTERN", "SEPARATOR", "aggregate_names"]

MAX_NAME_LENGTH = 64
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SEPARATOR = "__"
_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_HASH_LENGTH = 8


def _plain(alias: str, tool: str) -> str:
    return f"{alias}{SEPARATOR}{tool}"


def _hashed(alias: str, tool: str) -> str:
    # The pair, not the joined name, is hashed: ("a", "b__c") and ("a__b", "c") differ.
    digest = hashlib.sha256(f"{alias}\0{tool}".encode()).hexdigest()[:_HASH_LENGTH]
    head = _BAD_CHARS.sub("_", _plain(alias, tool))[: MAX_NAME_LENGTH - _HASH_LENGTH - 1].rstrip(
        "_"
    )
    return f"{head or 'tool'}_{digest}"


def aggregate_names(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Map each (alias, tool) pair to its aggregated name (see the module docstring)."""
    unique = sorted(set(pairs))
    plain = {pair: _plain(*pair) for pair in unique}
    counts = Counter(plain.values())
    names: dict[tuple[str, str], str] = {}
    for pair in unique:
        name = plain[pair]
        if counts[name] > 1 or not NAME_PATTERN.match(name):
            name = _hashed(*pair)
        names[pair] = name
    # A hashed name could, in theory, equal another tool's plain name: hash both then.
    clashes = Counter(names.values())
    for pair, name in names.items():
        if clashes[name] > 1:
            names[pair] = _hashed(*pair) if name == plain[pair] else name
    return names
