"""Heavy imports done off the event loop, one thread at a time.

dodo imports SQLAlchemy, pydantic, the MCP SDK and friends on background threads so the
Jupyter server starts fast. Two threads importing the same packages at once can meet a
half-initialised module through an import cycle ("cannot import name … partially
initialized module"); every background import therefore holds :data:`IMPORT_LOCK`.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

__all__ = ["IMPORT_LOCK", "import_module"]

IMPORT_LOCK = threading.RLock()


def import_module(name: str) -> ModuleType:
    """:func:`importlib.import_module` under :data:`IMPORT_LOCK`."""
    with IMPORT_LOCK:
        return importlib.import_module(name)
