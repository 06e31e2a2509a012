"""The gateway's MCP server: the caller's own tools, over Streamable HTTP.

One low-level :class:`mcp.server.lowlevel.Server` and one SDK
``StreamableHTTPSessionManager`` serve every user of this Jupyter server, on its own port
(``{base_url}dodo/mcp``, bridged by :mod:`dodo_jupyter.handlers.gateway`). The manager
speaks both protocol generations the SDK 2.x serves:

* **2025-11-25** (and older handshake versions): ``initialize`` opens a stateful session
  (``Mcp-Session-Id``); later requests, the GET notification stream and the DELETE that
  ends the session name it.
* **2026-07-28**: every request is a self-contained POST routed by its
  ``MCP-Protocol-Version`` header; no session.

Who is calling is decided by the tornado handler before a request reaches the SDK. The
handler passes a :class:`~dodo_jupyter.gateway.caller.Caller`; :meth:`GatewayEndpoint.handle`
puts it in the ASGI scope (the list/call handlers read it from ``ctx.request.scope``,
which works for both generations: stateful sessions run their handlers in the session's
own task, not the request's) and in a context variable (for the 2026-07-28 input-schema
lookup, which the SDK calls before any handler runs). The scope also carries an SDK
``AuthenticatedUser`` whose principal is the username: the SDK binds a stateful session
to the principal that created it and answers 404 "Session not found" to anyone else.

Tool errors never leave as protocol errors: a failing upstream, a dodo error or a bug
becomes ``CallToolResult(isError=True)`` with a message an agent can act on (dodo's error
messages carry no secrets; unexpected exceptions are logged and reported generically).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types import methods
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from .._version import __version__
from ..exceptions import DodoError
from .caller import (
    LOOP_ERROR,
    MAX_HOPS,
    Caller,
    ProgressFn,
    ToolGateway,
    _current_caller,
    hop_from_meta,
)
from .plain_call import LIST, PlainRequest, read_plain_request

__all__ = ["SCOPE_KEY", "GatewayEndpoint"]

log = logging.getLogger("dodo_jupyter.gateway")

#: ASGI scope key holding the request's :class:`Caller`.
SCOPE_KEY = "dodo.caller"

_INSTRUCTIONS = (
    "The MCP tools this Jupyter user connected in dodo, named <server>__<tool>. "
    "Connect or switch tools in JupyterLab's MCP panel."
)


def _principal(caller: Caller) -> AuthenticatedUser:
    """The SDK user a stateful session is bound to: the username, nothing secret."""
    return AuthenticatedUser(
        AccessToken(
            token="", client_id=f"dodo:{caller.username}", scopes=[], subject=caller.username
        )
    )


def _caller_of(ctx: ServerRequestContext[Any, Any], meta: Any = None) -> Caller:
    """The authenticated caller, with the hop count of the HTTP header or of the request's
    ``_meta`` (set by an upstream dodo gateway), whichever is larger, and the session's
    MCP ``clientInfo`` in its attribution."""
    scope = getattr(ctx.request, "scope", None)
    caller = scope.get(SCOPE_KEY) if isinstance(scope, dict) else None
    if not isinstance(caller, Caller):
        caller = _current_caller.get()
    if caller is None:  # pragma: no cover - every request comes through GatewayEndpoint.handle
        raise MCPError(code=types.INTERNAL_ERROR, message="dodo could not tell who is calling.")
    client_params = getattr(ctx.session, "client_params", None)
    caller = _attributed(caller, getattr(client_params, "client_info", None))
    hop = hop_from_meta(meta)
    return dataclasses.replace(caller, hop=hop) if hop > caller.hop else caller


def _attributed(caller: Caller, client_info: Any) -> Caller:
    """``caller`` whose attribution names the MCP client ``client_info``."""
    agent = caller.agent.with_client(client_info)
    return caller if agent is caller.agent else dataclasses.replace(caller, agent=agent)


def _loop_message(caller: Caller) -> str:
    return (
        f"{LOOP_ERROR} this request has passed through {caller.hop} dodo gateways (at most "
        f"{MAX_HOPS}); a catalog entry points back at a gateway. Remove that entry."
    )


def tool_error(message: str) -> types.CallToolResult:
    """A tool result an agent reads as a failure, with ``message`` as its text."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


def _tracing_configured() -> bool:
    """Whether an OpenTelemetry tracer provider was installed (by the time the gateway
    starts): the API's default proxy provider means spans would go nowhere."""
    from opentelemetry import trace

    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


class GatewayEndpoint:
    """The MCP server of the gateway and the SDK session manager that serves it.

    Parameters
    ----------
    gateway:
        Returns the gateway service when a request needs it.
    max_request_body_size:
        Largest request body in bytes; larger ones get 413 from the SDK.
    session_idle_timeout:
        Seconds after which an idle stateful session is closed (its id then answers 404).
    on_use:
        Told the caller (with its attribution) of every tool listing and call.
    """

    def __init__(
        self,
        gateway: Callable[[], ToolGateway],
        *,
        max_request_body_size: int = 4 * 1024 * 1024,
        session_idle_timeout: float = 30 * 60,
        on_use: Callable[[Caller], None] | None = None,
    ) -> None:
        self._gateway = gateway
        self._on_use = on_use
        self.max_request_body_size = max_request_body_size
        #: Whether plain 2026-07-28 ``tools/call`` and ``tools/list`` requests skip the
        #: SDK's machinery (:mod:`.plain_call`); off, the SDK serves every request.
        self.answers_plain = True
        self.server: Server[Any] = Server(
            "dodo",
            version=__version__,
            title="Jupyter MCP gateway (dodo)",
            instructions=_INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            get_tool_input_schema=self._input_schema,
        )
        if not _tracing_configured():
            # The SDK's span per message is a no-op without an OpenTelemetry SDK, yet costs
            # a few percent of a gateway call; its own docs say to drop it to opt out.
            self.server.middleware = [
                m for m in self.server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"
            ]
        self.manager = StreamableHTTPSessionManager(
            self.server,
            # SSE responses, so progress notifications reach the client during a call.
            json_response=False,
            # jupyter_server checks Host itself (ServerApp.allow_remote_access,
            # local_hostnames) and the handler checks Origin for cookie requests; the
            # SDK's own Host allowlist would refuse requests JupyterHub's proxy forwards.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            session_idle_timeout=session_idle_timeout,
            max_request_body_size=max_request_body_size,
        )

    async def run(self, started: Callable[[], None], stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; call ``started`` once requests can be handled.

        Must run in one task from start to end (the SDK's anyio task group).
        """
        async with self.manager.run():
            started()
            await stop.wait()

    async def handle(self, scope: Scope, receive: Receive, send: Send, caller: Caller) -> None:
        """Serve one HTTP request (ASGI) for ``caller``."""
        scope["user"] = _principal(caller)
        scope[SCOPE_KEY] = caller
        token = _current_caller.set(caller)
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            _current_caller.reset(token)

    # -- MCP handlers -----------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller = _caller_of(ctx, params.meta if params else None)
        if caller.hop > MAX_HOPS:
            raise MCPError(code=types.INVALID_REQUEST, message=_loop_message(caller))
        self._used(caller)
        token = _current_caller.set(caller)
        try:
            tools = await self._gateway().list_tools(caller.username)
        except DodoError as e:
            raise MCPError(code=types.INTERNAL_ERROR, message=e.message) from None
        finally:
            _current_caller.reset(token)
        return types.ListToolsResult(tools=tools)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        caller = _caller_of(ctx, params.meta)
        name = params.name
        progress: ProgressFn | None = None
        if progress_token_from_params(ctx.params) is not None:

            async def progress(value: float, total: float | None, message: str | None) -> None:
                try:
                    await ctx.session.report_progress(value, total, message)
                except Exception as e:  # the client went away: the call itself goes on
                    log.debug("dodo gateway: progress for %r not delivered: %s", name, e)

        return await self._tool_result(caller, name, dict(params.arguments or {}), progress)

    async def _tool_result(
        self,
        caller: Caller,
        name: str,
        arguments: dict[str, Any],
        progress: ProgressFn | None,
    ) -> types.CallToolResult:
        """Call the tool for ``caller``: every failure becomes a tool error."""
        if caller.hop > MAX_HOPS:
            return tool_error(f"{name}: {_loop_message(caller)}")
        self._used(caller)
        # Stateful sessions run this in the session's task: make the caller (and its
        # hop count) visible to the upstream side of the gateway.
        token = _current_caller.set(caller)
        try:
            return await self._gateway().call_tool(caller.username, name, arguments, progress)
        except DodoError as e:
            return tool_error(f"{name}: {e.message}")
        except Exception:
            log.exception("dodo gateway: tool %r failed for %r", name, caller.username)
            return tool_error(
                f"{name}: the call failed inside dodo; the Jupyter server log has the details."
            )
        finally:
            _current_caller.reset(token)

    def _used(self, caller: Caller) -> None:
        if self._on_use is not None:
            try:
                self._on_use(caller)
            except Exception:  # a record is never worth a failed call
                log.exception("dodo gateway: recording who used the gateway failed")

    # -- plain 2026-07-28 tools/call and tools/list, without the SDK's machinery -------

    def read_plain(
        self, headers: Sequence[tuple[str, str]], body: bytes, caller: Caller
    ) -> PlainRequest | None:
        """The request as a :class:`PlainRequest` the endpoint answers itself, or
        ``None`` when :meth:`handle` (the SDK) must serve it; see :mod:`.plain_call`."""
        if (
            not self.answers_plain
            or self.server.cache_hints  # results would carry hints: the SDK adds them
            or len(body) > self.max_request_body_size
        ):
            return None
        return read_plain_request(
            headers, body, lambda name: self._gateway().input_schema(caller.username, name)
        )

    async def answer_plain(self, request: PlainRequest, caller: Caller) -> bytes | None:
        """The JSON-RPC response body (HTTP 200, ``application/json``) to ``request``,
        shaped as the SDK shapes a 2026-07-28 result; ``None`` when the SDK must answer
        after all (a listing that fails or loops: the SDK writes the JSON-RPC error)."""
        hop = hop_from_meta(request.meta)
        if hop > caller.hop:
            caller = dataclasses.replace(caller, hop=hop)
        caller = _attributed(caller, request.meta.get(types.CLIENT_INFO_META_KEY))
        result: types.ListToolsResult | types.CallToolResult
        if request.method == LIST:
            if caller.hop > MAX_HOPS:
                return None
            self._used(caller)
            token = _current_caller.set(caller)
            try:
                result = types.ListToolsResult(
                    tools=await self._gateway().list_tools(caller.username)
                )
            except DodoError:
                return None
            finally:
                _current_caller.reset(token)
        else:
            result = await self._tool_result(caller, request.name, request.arguments, None)
        return self._wire(request, result)

    def _wire(
        self, request: PlainRequest, result: types.ListToolsResult | types.CallToolResult
    ) -> bytes:
        """``result`` as the SDK sends it: the per-version result surface, ``resultType``
        and the ``serverInfo`` stamp, in a JSON-RPC response."""
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        try:
            wire = methods.serialize_server_result(request.method, request.protocol_version, dumped)
        except ValidationError:
            log.exception("dodo gateway: an invalid %s result", request.method)
            answer: dict[str, Any] = {
                "jsonrpc": "2.0",
                "id": request.request_id,
                "error": {
                    "code": types.INTERNAL_ERROR,
                    "message": "Handler returned an invalid result",
                },
            }
        else:
            if wire.get("resultType") is None:
                wire["resultType"] = "complete"
            meta = wire.get("_meta")
            if meta is None:
                wire["_meta"] = {types.SERVER_INFO_META_KEY: self.server.server_info_stamp}
            elif isinstance(meta, dict) and meta.get(types.SERVER_INFO_META_KEY) is None:
                wire["_meta"] = {**meta, types.SERVER_INFO_META_KEY: self.server.server_info_stamp}
            answer = {"jsonrpc": "2.0", "id": request.request_id, "result": wire}
        return json.dumps(answer, separators=(",", ":")).encode()

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        """For the SDK's 2026-07-28 ``Mcp-Param-*`` header check: the cached schema, no I/O
        (without it the SDK would run ``tools/list`` upstream before every call)."""
        caller = _current_caller.get()
        if caller is None:
            return None
        return self._gateway().input_schema(caller.username, name)
