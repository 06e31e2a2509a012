"""The one place every tool call passes, whatever path it came by (the gateway at
``/dodo/mcp`` and so the kernel client, the magics and code mode; the REST "try it").

:meth:`ToolGate.call` applies, in order: the server's tool policy and the tool's pin
(a refused or quarantined tool is refused, :class:`ToolRefused`), the rate limit
(:class:`RateLimited`), human approval (held until the owner decides; a denial, a
timeout or no open JupyterLab refuse it; a "try it" in JupyterLab is the owner's own
click and asks nothing); then runs the call and records it in the
history and the metrics, whatever the outcome. Listings ask :meth:`ToolGate.hidden`,
so what is refused is not listed either. With the open policy and no quarantine the
gate adds one record and two metric updates to a call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import mcp_types as types

from ..exceptions import DodoError, Forbidden, UpstreamTimeout
from ..tool_results import ToolCallResult, is_error, result_size
from . import metrics
from .approvals import Approvals
from .context import CallContext
from .history import CallHistory, CallRecord, Outcome
from .rate_limit import RateLimiter
from .tool_policy import ToolPolicy

__all__ = ["REFUSED_CODE", "CallContext", "RateLimited", "ToolGate", "ToolRefused"]

#: The JSON-RPC error code of a refused call (a server-defined code).
REFUSED_CODE = -32003


class ToolRefused(Forbidden):
    """A call the policy, the pin, the rate limit or the user did not let through."""

    code = "tool_refused"

    def __init__(self, message: str, outcome: Outcome = "refused_policy") -> None:
        super().__init__(message, outcome=outcome)
        self.outcome: Outcome = outcome


class RateLimited(ToolRefused):
    status = 429
    code = "rate_limited"


@dataclass(frozen=True)
class GatedTool:
    """What the gate needs of a routed tool."""

    name: str
    server_id: str
    catalog_id: str | None
    tool: types.Tool
    policy: ToolPolicy
    quarantine: str | None = None


class ToolGate:
    """Applies policies, pins, limits and approvals, and records every call."""

    def __init__(
        self,
        history: CallHistory,
        approvals: Approvals,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.history = history
        self.approvals = approvals
        self.limiter = limiter or RateLimiter()

    @staticmethod
    def hidden(tool: GatedTool) -> str | None:
        """Why a tool is not offered to agents (policy or quarantine), or None."""
        if tool.quarantine is not None:
            return _quarantine_message(tool.quarantine)
        return tool.policy.refusal(tool.tool)

    async def call(
        self,
        context: CallContext,
        tool: GatedTool,
        arguments: dict[str, object],
        run: Callable[[], Awaitable[ToolCallResult]],
    ) -> ToolCallResult:
        """Run ``run`` if the gate lets the call through; record it in any case.

        Raises
        ------
        ToolRefused
            refused by policy, quarantined, rate-limited, denied, or not approved in
            time; the history has the record.
        """
        started = time.perf_counter()
        arguments_hash, arguments_bytes = self.history.arguments_hash(arguments)
        outcome: Outcome = "upstream_error"
        detail = ""
        result_bytes = 0
        try:
            self._admit(context, tool)
            # "Try it" is the owner clicking in JupyterLab: that is the approval.
            if context.path != "try_it" and tool.policy.needs_approval(tool.tool):
                await self._approve(context, tool, arguments)
            result = await run()
            outcome = "tool_error" if is_error(result) else "ok"
            result_bytes = result_size(result)
            return result
        except ToolRefused as e:
            outcome, detail = e.outcome, e.message
            raise
        except DodoError as e:
            outcome = "timeout" if isinstance(e, UpstreamTimeout) else "upstream_error"
            detail = e.message
            raise
        except asyncio.CancelledError:
            detail = "The caller went away before the answer (the server was told)."
            raise
        finally:
            seconds = time.perf_counter() - started
            server = metrics.server_label(tool.catalog_id)
            metrics.TOOL_CALLS.labels(server, outcome).inc()
            metrics.TOOL_CALL_SECONDS.labels(server).observe(seconds)
            self.history.record(
                CallRecord(
                    username=context.username,
                    path=context.path,
                    server_id=tool.server_id,
                    tool=tool.tool.name,
                    outcome=outcome,
                    detail=detail[:300],
                    duration_ms=int(seconds * 1000),
                    arguments_bytes=arguments_bytes,
                    result_bytes=result_bytes,
                    arguments_hash=arguments_hash,
                    token_id=context.token_id,
                    client=context.client,
                    chat_id=context.chat_id,
                    persona_id=context.persona_id,
                    arguments=arguments,
                )
            )

    def _admit(self, context: CallContext, tool: GatedTool) -> None:
        reason = self.hidden(tool)
        if reason is not None:
            raise ToolRefused(f"{tool.name}: refused: {reason}.")
        limit = tool.policy.calls_per_minute
        if limit is not None:
            wait = self.limiter.take(context.username, tool.server_id, limit)
            if wait is not None:
                raise RateLimited(
                    f"{tool.name}: refused: the tool policy of {tool.server_id!r} allows "
                    f"{limit} calls per minute; try again in {wait:.0f} s."
                )

    async def _approve(
        self, context: CallContext, tool: GatedTool, arguments: dict[str, object]
    ) -> None:
        agent = {
            key: value
            for key, value in (
                ("client", context.client),
                ("chat_id", context.chat_id),
                ("persona_id", context.persona_id),
                ("token", context.token_label),
                ("token_id", context.token_id),
                ("path", context.path),
            )
            if value
        }
        verdict = await self.approvals.ask(
            context.username,
            server_id=tool.server_id,
            tool=tool.tool.name,
            arguments=json.loads(json.dumps(arguments, default=str)),
            agent=agent,
            session_key=context.session_key or context.token_id or context.path,
        )
        metrics.APPROVALS.labels(verdict).inc()
        if verdict == "approved":
            return
        if verdict == "denied":
            raise ToolRefused(f"{tool.name}: the user denied this call.", "denied")
        if verdict == "timeout":
            raise ToolRefused(
                f"{tool.name}: this call needs the user's approval, and none came within "
                f"{self.approvals.timeout:.0f} s.",
                "timeout",
            )
        raise ToolRefused(
            f"{tool.name}: this call needs the user's approval in JupyterLab, and no "
            "JupyterLab of theirs is open: ask them to open it and try again.",
            "denied",
        )


def _quarantine_message(kind: str) -> str:
    if kind == "new":
        return (
            "the server started offering this tool after it was connected, and its owner "
            "has not accepted it yet (MCP panel → Tools → Review)"
        )
    return (
        "the server changed this tool's definition since it was accepted; it is "
        "quarantined until its owner reviews the change (MCP panel → Tools → Review)"
    )
