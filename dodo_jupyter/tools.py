"""Your tools as a typed Python API, in any kernel started by a Jupyter server with dodo.

>>> from dodo_jupyter import tools
>>> tools.demo.add(a=2, b=3)                  # doctest: +SKIP
5.0
>>> await tools.demo.add.aio(a=2, b=3)        # the same, in async code  # doctest: +SKIP
5.0
>>> help(tools.demo.add)  # signature and docs from the schema  # doctest: +SKIP

``tools.<server>.<tool>`` is a function per tool the gateway offers this kernel
(switched on in the MCP panel), named, typed and documented from the tool's JSON Schema
(:mod:`dodo_jupyter.client.typed_api`; names made Python-safe by
:mod:`dodo_jupyter.client.python_names`: ``srv-1a2b3c`` → ``srv_1a2b3c``). Calls go
through the gateway (``DODO_MCP_URL``, ``DODO_MCP_TOKEN``), so its governance applies and
the call history records them. A tool's error raises
:class:`~dodo_jupyter.client.errors.ToolError` with the server's message.

The list is read from the gateway at the first use of ``tools.<name>`` (or ``dir``, Tab
completion) and kept; :func:`refresh` reads it again (after connecting a server or
switching tools, or setting ``DODO_MCP_URL`` / ``DODO_MCP_TOKEN`` anew). Importing this
module costs nothing: the MCP client is loaded at the first use.
"""

import threading as _threading
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:
    from .client.typed_api import ToolNamespace as _ToolNamespace

__all__ = ["refresh"]

_lock = _threading.Lock()
_servers: "dict[str, _ToolNamespace] | None" = None


def refresh() -> None:
    """Forget the list of tools (and where the gateway is): the next ``tools.<name>``
    reads both again."""
    global _servers
    with _lock:
        _servers = None


def _listing() -> "dict[str, _ToolNamespace]":
    global _servers
    with _lock:
        if _servers is None:
            from .client.dodo_client import DodoClient
            from .client.typed_api import build_namespaces

            client = DodoClient()
            _servers = build_namespaces(client, client.list_tools())
        return _servers


def __getattr__(name: str) -> _Any:
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    servers = _listing()
    if name in servers:
        return servers[name]
    from .client.typed_api import close_matches

    raise AttributeError(
        f"tools has no server {name!r}: {close_matches(name, sorted(servers))}"
        f"it has {', '.join(sorted(servers)) or 'none'}. Connect servers (and switch their "
        "tools on) in JupyterLab's MCP panel or with %dodo connect; tools.refresh() reads "
        "the list again."
    )


def __dir__() -> list[str]:
    return sorted([*_listing(), *__all__])
