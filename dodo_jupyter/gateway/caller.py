"""Who a gateway request acts for (:class:`Caller`), what the endpoint needs of the
gateway service (:class:`ToolGateway`), and the hop count that keeps a catalog entry
pointing at a gateway from making requests loop forever: :func:`current_caller` gives
the upstream session the count to send on (``X-Dodo-Hop: caller.hop + 1``, or
:func:`outbound_meta` inside MCP itself).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from ..governance.context import CallContext, CallPath
from .attribution import Attribution

__all__ = [
    "CODE_MODE_TOKEN_KIND",
    "HOP_HEADER",
    "HOP_META_KEY",
    "KERNEL_TOKEN_KIND",
    "LOOP_ERROR",
    "MAX_HOPS",
    "Caller",
    "ProgressFn",
    "Via",
    "current_caller",
    "hop_from_meta",
    "outbound_meta",
]

#: The kind of the gateway token the server mints for its kernels.
KERNEL_TOKEN_KIND = "kernel"  # noqa: S105 - a token kind
#: The kind of the gateway token each code-mode kernel gets (:mod:`dodo_jupyter.codemode`).
CODE_MODE_TOKEN_KIND = "code_mode"  # noqa: S105 - a token kind
#: The call path of a caller whose token is of one of these kinds; every other caller
#: comes "through the gateway".
_PATH_OF_KIND: dict[str, CallPath] = {
    KERNEL_TOKEN_KIND: "kernel",
    CODE_MODE_TOKEN_KIND: "code_mode",
}
#: Request header counting how many dodo gateways a request has passed through.
HOP_HEADER = "X-Dodo-Hop"
#: The largest hop count the endpoint serves; deeper requests get 429.
MAX_HOPS = 3

Via = Literal["token", "service", "jupyter"]
"""How a gateway caller authenticated."""

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
"""``progress(progress, total, message)``: forwards an upstream progress notification."""


@dataclass(frozen=True)
class Caller:
    """Who a gateway request acts for, and how it proved it.

    ``via`` is ``"token"`` (a dodo gateway token), ``"service"`` (the shared
    ``DodoApp.service_token``, acting as the owner) or ``"jupyter"`` (Jupyter's own
    authentication). ``hop`` is the request's ``X-Dodo-Hop`` value (0 when absent).
    ``agent`` says which agent made the request (labels for records, never for
    authorization).
    """

    username: str
    via: Via
    hop: int = 0
    agent: Attribution = field(default_factory=Attribution)
    #: The gateway token's kind (``user``, ``kernel``, Jupyter AI's) and label, when one
    #: was used.
    token_kind: str = ""
    token_label: str = ""

    def call_context(self, session_id: str | None = None) -> CallContext:
        """How the governance gate sees this caller's calls: by the kernel client when
        the token is the kernels' one, from code mode's kernels when it is one of
        theirs, else through the gateway; "always for this session" applies to the
        token, or to the MCP session of a caller without one."""
        agent = self.agent
        return CallContext(
            username=self.username,
            path=_PATH_OF_KIND.get(self.token_kind, "gateway"),
            token_id=agent.token_id or "",
            token_label=self.token_label,
            client=agent.client or "",
            chat_id=agent.chat_id or "",
            persona_id=agent.persona_id or "",
            session_key=agent.token_id or session_id or self.via,
        )


_current_caller: ContextVar[Caller | None] = ContextVar("dodo_gateway_caller", default=None)


#: Request ``_meta`` key carrying the hop count through MCP itself: the gateway's upstream
#: requests travel in the upstream session's own task, where no per-caller HTTP header
#: can be set, so the count rides in the request that caused them.
HOP_META_KEY = "io.github.dodo-jupyter/hop"


#: How every loop error starts, so gateways further up can recognise and pass it on.
LOOP_ERROR = "Gateway loop:"


def hop_from_meta(meta: Any) -> int:
    """The hop count a request's ``_meta`` carries (0 when absent or not a number)."""
    value = meta.get(HOP_META_KEY) if isinstance(meta, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def outbound_meta() -> dict[str, Any]:
    """The ``_meta`` for an upstream request made on behalf of the current caller."""
    caller = _current_caller.get()
    return {HOP_META_KEY: (caller.hop if caller else 0) + 1}


def current_caller() -> Caller | None:
    """The caller of the gateway request being served in this task; None outside one."""
    return _current_caller.get()
