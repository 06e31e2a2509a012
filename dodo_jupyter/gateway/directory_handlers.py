"""The gateway's MCP handlers beyond tools: resources, prompts, completion and logging,
and the middleware that keeps each open client session in the gateway's
:class:`~.live.LiveSessions` (so it hears of list changes, subscribed resources and
logs). The handlers are thin: the work is the :class:`~.directory.Directory`'s; dodo's
errors become JSON-RPC errors whose message says what to do, an upstream's JSON-RPC error
keeps its code and message, and anything unexpected is logged and reported generically.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

from ..exceptions import DodoError, NotFound, ValidationFailed
from .caller import MAX_HOPS, Caller, _current_caller
from .live import LOG_LEVELS, Downstream
from .tool_gateway import ToolGateway

__all__ = ["DOWNSTREAM_KEY", "DirectoryHandlers", "downstream_of"]

log = logging.getLogger("dodo_jupyter.gateway")

#: Key of a session's :class:`Downstream` in the SDK connection's ``state``.
DOWNSTREAM_KEY = "dodo.downstream"
_INVALID_PARAMS = -32602
_INTERNAL_ERROR = -32603
#: MCP's "resource not found" (2025-11-25).
_RESOURCE_NOT_FOUND = -32002

T = TypeVar("T")
Context = ServerRequestContext[Any, Any]


def _connection(ctx: Context) -> Any:
    # The SDK keeps a session's connection (its channel outside requests, its state and
    # teardown) on the per-request proxy only.
    return getattr(ctx.session, "_connection", None)


def downstream_of(ctx: Context) -> Downstream | None:
    """The open client session a request came in, when it keeps one."""
    connection = _connection(ctx)
    state = getattr(connection, "state", None)
    found = state.get(DOWNSTREAM_KEY) if isinstance(state, dict) else None
    return found if isinstance(found, Downstream) else None


class DirectoryHandlers:
    """The ``on_*`` handlers for :class:`~mcp.server.lowlevel.Server` and the session
    middleware; ``caller_of(ctx, meta)`` says who is calling."""

    def __init__(
        self,
        gateway: Callable[[], ToolGateway],
        caller_of: Callable[[Context, Any], Caller],
        loop_message: Callable[[Caller], str],
    ) -> None:
        self._gateway = gateway
        self._caller_of = caller_of
        self._loop_message = loop_message

    def handlers(self) -> dict[str, Any]:
        return {
            "on_list_resources": self._list_resources,
            "on_list_resource_templates": self._list_templates,
            "on_read_resource": self._read_resource,
            "on_subscribe_resource": self._subscribe,
            "on_unsubscribe_resource": self._unsubscribe,
            "on_list_prompts": self._list_prompts,
            "on_get_prompt": self._get_prompt,
            "on_completion": self._complete,
            "on_set_logging_level": self._set_level,
            "on_subscriptions_listen": self._listen,
        }

    async def track(self, ctx: Context, call_next: Callable[[Context], Awaitable[Any]]) -> Any:
        """Middleware: keep the client's session (when it has a channel of its own) in
        the gateway's live sessions until the SDK closes it."""
        result = await call_next(ctx)
        connection = _connection(ctx)
        if (
            connection is not None
            and getattr(connection, "session_id", None)
            and connection.has_standalone_channel
            and DOWNSTREAM_KEY not in connection.state
        ):
            caller = self._caller_of(ctx, None)
            live = self._gateway().live
            downstream = Downstream(caller.username, connection.outbound)
            connection.state[DOWNSTREAM_KEY] = downstream
            live.add(downstream)
            connection.exit_stack.callback(self._ended, downstream)
        return result

    def _ended(self, downstream: Downstream) -> None:
        """A client session ended: forget it, and release at their servers the resources
        it subscribed to that no other session of the user wants."""
        gateway = self._gateway()
        gateway.live.remove(downstream)
        wanted = {
            uri for other in gateway.live.of(downstream.username) for uri in other.subscriptions
        }
        if gone := downstream.subscriptions - wanted:
            gateway.directory.release(downstream.username, gone)

    async def _run(self, ctx: Context, meta: Any, work: Callable[[str], Awaitable[T]]) -> T:
        caller = self._caller_of(ctx, meta)
        if caller.hop > MAX_HOPS:
            raise MCPError(code=types.INVALID_REQUEST, message=self._loop_message(caller))
        # Stateful sessions run this in the session's task: make the caller (and its hop
        # count, which the upstream requests carry on) visible to the directory.
        token = _current_caller.set(caller)
        try:
            return await work(caller.username)
        except MCPError:
            raise
        except NotFound as e:
            raise MCPError(code=_RESOURCE_NOT_FOUND, message=e.message) from None
        except ValidationFailed as e:
            raise MCPError(code=_INVALID_PARAMS, message=e.message) from None
        except DodoError as e:
            raise MCPError(code=_INTERNAL_ERROR, message=e.message) from None
        except Exception:
            log.exception("dodo gateway: %s failed", ctx.method)
            raise MCPError(
                code=_INTERNAL_ERROR,
                message="The request failed inside dodo; the Jupyter server log has the details.",
            ) from None
        finally:
            _current_caller.reset(token)

    async def _list_resources(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        directory = self._gateway().directory
        resources = await self._run(ctx, params and params.meta, directory.list_resources)
        return types.ListResourcesResult(resources=resources)

    async def _list_templates(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        directory = self._gateway().directory
        templates = await self._run(ctx, params and params.meta, directory.list_resource_templates)
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def _read_resource(
        self, ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        directory = self._gateway().directory
        return await self._run(
            ctx, params.meta, lambda user: directory.read_resource(user, params.uri)
        )

    async def _subscribe(
        self, ctx: Context, params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        directory = self._gateway().directory
        await self._run(ctx, params.meta, lambda user: directory.subscribe(user, params.uri, True))
        downstream = downstream_of(ctx)
        if downstream is not None:
            downstream.subscriptions.add(params.uri)
        return types.EmptyResult()

    async def _unsubscribe(
        self, ctx: Context, params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        gateway = self._gateway()
        downstream = downstream_of(ctx)
        if downstream is not None:
            downstream.subscriptions.discard(params.uri)
        caller = self._caller_of(ctx, params.meta)
        others = any(params.uri in s.subscriptions for s in gateway.live.of(caller.username))
        if not others:  # the upstream subscription is the user's, shared by their sessions
            await self._run(
                ctx, params.meta, lambda user: gateway.directory.subscribe(user, params.uri, False)
            )
        return types.EmptyResult()

    async def _list_prompts(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        directory = self._gateway().directory
        prompts = await self._run(ctx, params and params.meta, directory.list_prompts)
        return types.ListPromptsResult(prompts=prompts)

    async def _get_prompt(
        self, ctx: Context, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        directory = self._gateway().directory
        return await self._run(
            ctx,
            params.meta,
            lambda user: directory.get_prompt(user, params.name, params.arguments),
        )

    async def _complete(
        self, ctx: Context, params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        directory = self._gateway().directory
        return await self._run(ctx, params.meta, lambda user: directory.complete(user, params))

    async def _listen(
        self, ctx: Context, params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """A 2026-07-28 listen stream: list changes, and updates of the resources it names
        (subscribed at their servers while it is open)."""
        gateway = self._gateway()
        caller = self._caller_of(ctx, params.meta)
        uris = list(params.notifications.resource_subscriptions or ())

        async def subscribe(username: str) -> None:
            for uri in uris:
                await gateway.directory.subscribe(username, uri, True)

        await self._run(ctx, params.meta, subscribe)
        try:
            result: types.SubscriptionsListenResult = await gateway.live.listen(
                caller.username, ctx, params
            )
            return result
        finally:
            for uri in uris:
                with contextlib.suppress(Exception):
                    await gateway.directory.subscribe(caller.username, uri, False)

    async def _set_level(
        self, ctx: Context, params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        downstream = downstream_of(ctx)
        if downstream is not None:
            downstream.log_level = params.level
        gateway = self._gateway()

        async def set_level(username: str) -> None:
            # The servers' sessions are shared by the user's client sessions: ask for
            # the most verbose level any of them wants; each is sent its own level's share.
            wanted = [s.log_level for s in gateway.live.of(username) if s.log_level]
            level = min([params.level, *wanted], key=LOG_LEVELS.index)
            await gateway.directory.set_level(username, level)

        await self._run(ctx, params.meta, set_level)
        return types.EmptyResult()
