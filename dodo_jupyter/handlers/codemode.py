"""Code mode over HTTP: its MCP endpoint and the owner's list of agent notebooks.

* ``GET/POST/DELETE {base_url}dodo/mcp/codemode``: the gateway's handler (same
  credentials, tokens, hop limit and errors; :mod:`.mcp_caller`) with code mode's MCP
  server behind it (:mod:`dodo_jupyter.codemode.endpoint`). While
  ``DodoApp.code_mode`` is off it answers 404, naming the setting.
* ``GET {base_url}dodo/api/user/agent-notebooks``: the notebooks code mode wrote, with
  who ran them and when; the owner's alone (a visitor of a shared server gets 403).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import NotFound, Unavailable
from .base import DodoAPIHandler
from .gateway import GatewayHandler

if TYPE_CHECKING:
    from ..codemode.host import CodeModeHost
    from ..gateway.host import HostedTask

__all__ = ["AgentNotebookListHandler", "CodeModeHandler"]

_OFF = (
    "Code mode is off on this server: set c.DodoApp.code_mode = True in "
    "jupyter_server_config.py (or DODO_CODE_MODE=1 in the server's environment) and "
    "restart Jupyter. See docs/code-mode.md."
)


def _code_mode(handler: DodoAPIHandler) -> CodeModeHost:
    host = cast("CodeModeHost | None", handler.dodo.code_mode)
    if host is None:  # before DodoApp started it: a request during start-up
        raise Unavailable("dodo is starting; try again in a moment.")
    return host


class CodeModeHandler(GatewayHandler):
    """``GET/POST/DELETE {base_url}dodo/mcp/codemode`` (MCP Streamable HTTP)."""

    def _host(self) -> HostedTask[Any]:
        return _code_mode(self).endpoint

    async def prepare(self) -> None:  # type: ignore[override]
        if not _code_mode(self).enabled:
            raise NotFound(_OFF)
        await super().prepare()


class AgentNotebookListHandler(DodoAPIHandler):
    """``GET /dodo/api/user/agent-notebooks``: the runs' notebooks, most recent first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        (await self.identity()).require_owner()
        host = _code_mode(self)
        self.send_json(
            {
                "enabled": host.enabled,
                "folder": host.notebooks.folder,
                "notebooks": await host.notebook_list(),
            }
        )
