"""The gateway's MCP server: the caller's own tools, over Streamable HTTP.

One low-level :class:`mcp.server.lowlevel.Server` serves every user of this Jupyter
server (``{base_url}dodo/mcp``, bridged by :mod:`dodo_jupyter.handlers.gateway`), and
the SDK's Streamable HTTP machinery serves every request: there is no second
implementation of the protocol here. Both protocol generations the SDK 2.x serves are
spoken:

* **2025-11-25** (and older handshake versions): ``initialize`` opens a stateful session
  (``Mcp-Session-Id``); later requests, the GET notification stream and the DELETE that
  ends the session name it.
* **2026-07-28**: every request is a self-contained POST routed by its
  ``MCP-Protocol-Version`` header; no session.

The SDK answers a 2026-07-28 request in one of two forms, chosen per session manager:
an SSE-capable one (a sibling task and a memory stream per request, so notifications
such as progress can reach the client while the handler runs) and a JSON one (the
handler runs in the request's task). Most gateway traffic is an agent listing and
calling tools without asking for progress; such a request can receive no notification
(in 2026-07-28 the server has no back channel to send requests on), so it goes to the
JSON manager, which costs the gateway about half the SDK's CPU per request
(``bench/gateway_overhead.py``). Everything else goes to the SSE-capable manager. Both
managers serve the same :class:`Server`, so the answers are the same; a test holds them
equal. In the JSON form the SDK does not watch for the client leaving, so the handler
cancels the request's task when the connection closes (:meth:`answers_in_json`).

Who is calling is decided by the tornado handler before a request reaches the SDK. The
handler passes a :class:`~dodo_jupyter.gateway.caller.Caller`; :meth:`GatewayEndpoint.handle`
puts it in the ASGI scope (the list/call handlers read it from ``ctx.request.scope``,
which works for both generations: stateful sessions run their handlers in the session's
own task, not the request's) and in a context variable (for the 2026-07-28 input-schema
lookup, which the SDK calls before any handler runs). The scope also carries an SDK
``AuthenticatedUser`` whose principal is the username: the SDK binds a stateful session
to the principal that created it and answers 404 "Session not found" to anyone else.

Besides tools the endpoint serves resources, prompts, completion and logging
(:mod:`.directory_handlers`, :mod:`.directory`), tells open sessions when their lists
change (:mod:`.live`), and relays what an upstream asks or logs during a call to the
client that made it (:mod:`.relay`).

Tool errors never leave as protocol errors: a failing upstream, a dodo error or a bug
becomes ``CallToolResult(isError=True)`` with a message an agent can act on (dodo's error
messages carry no secrets; unexpected exceptions are logged and reported generically).
A call the governance gate refuses (tool policy, quarantine, rate limit, approval) is a
JSON-RPC error (code :data:`~dodo_jupyter.governance.gate.REFUSED_CODE`) whose message
names the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import warnings
from collections.abc import Callable, Mapping
from typing import Any, cast

import mcp_types as types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import Receive, Scope, Send

from .._version import __version__
from ..exceptions import DodoError
from ..governance.gate import REFUSED_CODE, ToolRefused
from ..tool_results import ToolCallResult, for_caller
from .caller import (
    LOOP_ERROR,
    MAX_HOPS,
    Caller,
    ProgressFn,
    _current_caller,
    hop_from_meta,
)
from .directory_handlers import DirectoryHandlers, downstream_of
from .relay import DownstreamRelay
from .resume_limits import ResumeLimits
from .routes import tool_error
from .session_manager import ResumableSessionManager
from .tool_gateway import ToolGateway

__all__ = ["SCOPE_KEY", "GatewayEndpoint", "caller_of", "principal_of"]

log = logging.getLogger("dodo_jupyter.gateway")

#: ASGI scope key holding the request's :class:`Caller`.
SCOPE_KEY = "dodo.caller"

_INSTRUCTIONS = (
    "The MCP tools this Jupyter user connected in dodo, named <server>__<tool>. "
    "Connect or switch tools in JupyterLab's MCP panel."
)


def principal_of(caller: Caller) -> AuthenticatedUser:
    """The SDK user a stateful session is bound to: the username, nothing secret."""
    return AuthenticatedUser(
        AccessToken(
            token="", client_id=f"dodo:{caller.username}", scopes=[], subject=caller.username
        )
    )


def caller_of(ctx: ServerRequestContext[Any, Any], meta: Any = None) -> Caller:
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


class _GatewayServer(Server[Any]):
    """The SDK's server, announcing that its lists change (the gateway says when)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        changes = notification_options or NotificationOptions(
            prompts_changed=True, resources_changed=True, tools_changed=True
        )
        return super().create_initialization_options(changes, experimental_capabilities, extensions)


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
    resume:
        How much of each stateful session's event streams is kept so that a client can
        resume a broken one (:mod:`.event_store`); None: not resumable.
    on_use:
        Told the caller (with its attribution) of every tool listing and call.
    """

    def __init__(
        self,
        gateway: Callable[[], ToolGateway],
        *,
        max_request_body_size: int = 4 * 1024 * 1024,
        session_idle_timeout: float = 30 * 60,
        resume: ResumeLimits | None = None,
        on_use: Callable[[Caller], None] | None = None,
    ) -> None:
        self._gateway = gateway
        self._on_use = on_use
        self.max_request_body_size = max_request_body_size
        self.resume = resume
        directory = DirectoryHandlers(gateway, caller_of, _loop_message)
        with warnings.catch_warnings():
            # Logging is deprecated from 2026-07-28 on, and still what 2025-11-25 clients use.
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            self.server: Server[Any] = _GatewayServer(
                "dodo",
                version=__version__,
                title="Jupyter MCP gateway (dodo)",
                instructions=_INSTRUCTIONS,
                on_list_tools=self._list_tools,
                # The SDK's runner also takes a result as a dict (its HandlerResult); a
                # server's tool result goes on as it came (dodo_jupyter.tool_results).
                on_call_tool=cast(Any, self._call_tool),
                get_tool_input_schema=self._input_schema,
                **directory.handlers(),
            )
        if not _tracing_configured():
            # The SDK's span per message is a no-op without an OpenTelemetry SDK, yet costs
            # a few percent of a gateway call; its own docs say to drop it to opt out.
            self.server.middleware = [
                m for m in self.server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"
            ]
        self.server.middleware.append(directory.track)
        self.manager = self._manager(json_response=False, idle=session_idle_timeout)
        #: Serves only 2026-07-28 POSTs that can receive no notification (see the module doc).
        self.json_manager = self._manager(json_response=True, idle=session_idle_timeout)

    def _manager(self, *, json_response: bool, idle: float) -> StreamableHTTPSessionManager:
        return ResumableSessionManager(
            self.server,
            # The JSON form serves only 2026-07-28 requests: no session, no stream to resume.
            resume=None if json_response else self.resume,
            json_response=json_response,
            # jupyter_server checks Host itself (ServerApp.allow_remote_access,
            # local_hostnames) and the handler checks Origin for cookie requests; the
            # SDK's own Host allowlist would refuse requests JupyterHub's proxy forwards.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            session_idle_timeout=idle,
            max_request_body_size=self.max_request_body_size,
        )

    async def run(self, started: Callable[[], None], stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; call ``started`` once requests can be handled.

        Must run in one task from start to end (the SDK's anyio task groups).
        """
        async with contextlib.AsyncExitStack() as managers:
            await managers.enter_async_context(self.manager.run())
            await managers.enter_async_context(self.json_manager.run())
            started()
            await stop.wait()

    @staticmethod
    def answers_in_json(headers: Mapping[str, str], body: bytes) -> bool:
        """Whether a POST is served in the SDK's JSON form: a 2026-07-28 request that
        accepts an event stream (so the SSE-capable form would accept it too) and
        mentions no ``progressToken`` anywhere (so no notification is owed to it) and is
        no ``subscriptions/listen`` (whose answer is a stream of events).

        ``headers`` is looked up by lower-case and capitalised names alike (tornado's
        ``HTTPHeaders``). Anything in doubt is ``False``: the SSE-capable form serves
        every request.
        """
        if b"progressToken" in body or b"subscriptions/listen" in body:
            return False
        version = headers.get("MCP-Protocol-Version")
        if version is None or version in HANDSHAKE_PROTOCOL_VERSIONS:
            return False
        accept = headers.get("Accept", "")
        return "text/event-stream" in accept or "*/*" in accept

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, caller: Caller, *, in_json: bool = False
    ) -> None:
        """Serve one HTTP request (ASGI) for ``caller``; ``in_json`` when
        :meth:`answers_in_json` said so."""
        scope["user"] = principal_of(caller)
        scope[SCOPE_KEY] = caller
        token = _current_caller.set(caller)
        try:
            manager = self.json_manager if in_json else self.manager
            await manager.handle_request(scope, receive, send)
        finally:
            _current_caller.reset(token)

    # -- MCP handlers -----------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller = caller_of(ctx, params.meta if params else None)
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
    ) -> ToolCallResult:
        caller = caller_of(ctx, params.meta)
        name = params.name
        progress: ProgressFn | None = None
        if progress_token_from_params(ctx.params) is not None:

            async def progress(value: float, total: float | None, message: str | None) -> None:
                try:
                    await ctx.session.report_progress(value, total, message)
                except Exception as e:  # the client went away: the call itself goes on
                    log.debug("dodo gateway: progress for %r not delivered: %s", name, e)

        headers = getattr(ctx.request, "headers", None)
        session_id = headers.get("mcp-session-id") if headers is not None else None
        downstream = downstream_of(ctx)

        def relay(alias: str) -> DownstreamRelay:
            return DownstreamRelay(ctx.session, ctx.request_id, alias, downstream)

        result = await self._tool_result(
            caller, name, dict(params.arguments or {}), progress, session_id, relay
        )
        return for_caller(result, params.meta)

    async def _tool_result(
        self,
        caller: Caller,
        name: str,
        arguments: dict[str, Any],
        progress: ProgressFn | None,
        session_id: str | None = None,
        relay: Callable[[str], DownstreamRelay] | None = None,
    ) -> ToolCallResult:
        """Call the tool for ``caller``: every failure becomes a tool error, except a
        call the governance gate refused, which is a JSON-RPC error naming why."""
        if caller.hop > MAX_HOPS:
            return tool_error(f"{name}: {_loop_message(caller)}")
        self._used(caller)
        # Stateful sessions run this in the session's task: make the caller (and its
        # hop count) visible to the upstream side of the gateway.
        token = _current_caller.set(caller)
        try:
            return await self._gateway().call_tool(
                caller.username, name, arguments, progress, caller.call_context(session_id), relay
            )
        except ToolRefused as e:
            raise MCPError(code=REFUSED_CODE, message=e.message) from None
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

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        """For the SDK's 2026-07-28 ``Mcp-Param-*`` header check: the cached schema, no I/O
        (without it the SDK would run ``tools/list`` upstream before every call)."""
        caller = _current_caller.get()
        if caller is None:
            return None
        return self._gateway().input_schema(caller.username, name)
