"""Code mode's MCP server at ``{base_url}dodo/mcp/codemode`` (:class:`CodeModeEndpoint`):
the MCP SDK's low-level server with the three tools of :mod:`.definitions`, served by
the SDK's Streamable HTTP session manager, as the gateway's endpoint is.

The tornado handler (:mod:`dodo_jupyter.handlers.codemode`) authenticates the request
exactly as the gateway's does and passes the :class:`~dodo_jupyter.gateway.caller.Caller`
on; the tool handler reads it from the ASGI scope (with the session's ``clientInfo`` in
its attribution) and hands the call to :class:`~.service.CodeMode`, keyed by its session
(:func:`~.service.session_key`). A stateful session belongs to the user who opened it
(the SDK answers anyone else 404), and when the SDK discards it (``DELETE``, idle
timeout) the service shuts its kernel down.

Every request is served in the SDK's event-stream form: runs take seconds, and no
request here is worth the JSON form's shortcut.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from starlette.types import Receive, Scope, Send

from .._version import __version__
from ..gateway.caller import MAX_HOPS, Caller, _current_caller
from ..gateway.endpoint import SCOPE_KEY, caller_of, principal_of
from ..gateway.routes import tool_error
from ..gateway.session_manager import ResumableSessionManager
from .definitions import INSTRUCTIONS
from .service import CodeMode, session_key

__all__ = ["CodeModeEndpoint"]

log = logging.getLogger("dodo_jupyter.codemode")


class CodeModeEndpoint:
    """The MCP server of code mode and the session manager that serves it.

    Parameters
    ----------
    service:
        Returns the code-mode service (built on first use, after the store is open).
    tools:
        The three tools as agents see them (:func:`~.definitions.code_mode_tools`).
    max_request_body_size:
        Largest request body in bytes; larger ones get 413 from the SDK.
    session_idle_timeout:
        Seconds after which an idle MCP session is closed (and its kernel shut down).
    on_use:
        Told the caller of every tool call (the token's "last used by").
    """

    def __init__(
        self,
        service: Callable[[], Awaitable[CodeMode]],
        tools: list[types.Tool],
        *,
        max_request_body_size: int = 4 * 1024 * 1024,
        session_idle_timeout: float = 30 * 60,
        on_use: Callable[[Caller], None] | None = None,
    ) -> None:
        self._service = service
        self._tools = tools
        self._schemas = {tool.name: tool.input_schema for tool in tools}
        self._on_use = on_use
        self._ended: list[str] = []
        self.server: Server[Any] = Server(
            "dodo-code-mode",
            version=__version__,
            title="Jupyter code mode (dodo)",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            get_tool_input_schema=self._schemas.get,
        )
        self.server.middleware = [
            m for m in self.server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"
        ]
        self.manager = ResumableSessionManager(
            self.server,
            resume=None,
            on_session_end=self._session_ended,
            json_response=False,
            # jupyter_server checks Host and the handler Origin (as for the gateway).
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            session_idle_timeout=session_idle_timeout,
            max_request_body_size=max_request_body_size,
        )

    async def run(self, started: Callable[[], None], stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; call ``started`` once requests can be handled."""
        async with self.manager.run():
            started()
            await stop.wait()

    @staticmethod
    def answers_in_json(headers: Mapping[str, str], body: bytes) -> bool:
        """Never: every request is served as an event stream (see the module doc)."""
        return False

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, caller: Caller, *, in_json: bool = False
    ) -> None:
        """Serve one HTTP request (ASGI) for ``caller``."""
        scope["user"] = principal_of(caller)
        scope[SCOPE_KEY] = caller
        token = _current_caller.set(caller)
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            _current_caller.reset(token)

    def _session_ended(self, session_id: str) -> None:
        task = asyncio.ensure_future(self._end(session_id))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _end(self, session_id: str) -> None:
        try:
            (await self._service()).end_session(session_id)
        except Exception as e:  # the server is stopping: its kernels stop with it
            log.debug("dodo code mode: session end not handled: %s", e)

    # -- MCP handlers -----------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self._tools)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        caller = caller_of(ctx, params.meta)
        if caller.hop > MAX_HOPS:
            return tool_error(
                f"{params.name}: this request has passed through {caller.hop} dodo gateways "
                f"(at most {MAX_HOPS}); a catalog entry points back at a gateway."
            )
        if self._on_use is not None:
            try:
                self._on_use(caller)
            except Exception:  # a record is never worth a failed call
                log.exception("dodo code mode: recording who used it failed")
        headers = getattr(ctx.request, "headers", None)
        key = session_key(caller, headers.get("mcp-session-id") if headers is not None else None)
        arguments = dict(params.arguments or {})
        service = await self._service()
        token = _current_caller.set(caller)
        try:
            if params.name == "run_python":
                return await service.run_python(
                    caller, key, arguments.get("code"), arguments.get("timeout_s")
                )
            if params.name == "search_tools":
                return await service.search_tools(
                    caller, arguments.get("query", ""), arguments.get("detail", "signatures")
                )
            if params.name == "reset":
                return await service.reset(caller, key)
        except MCPError:
            raise
        except Exception:
            log.exception("dodo code mode: %s failed for %r", params.name, caller.username)
            return tool_error(
                f"{params.name}: failed inside dodo; the Jupyter server log has the details."
            )
        finally:
            _current_caller.reset(token)
        return tool_error(
            f"No tool named {params.name!r} here: code mode offers search_tools, run_python "
            "and reset."
        )
