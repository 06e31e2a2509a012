"""Who a tool call is for and how it came (:class:`CallContext`): what the governance
gate records and decides on. Light on purpose: the gateway's handler imports it at
server start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CallContext", "CallPath"]

#: How a call reached dodo.
CallPath = Literal["gateway", "try_it", "kernel", "code_mode"]


@dataclass(frozen=True)
class CallContext:
    """Who calls, by which path, as which agent (labels for records, never for
    authorization)."""

    username: str
    path: CallPath
    token_id: str = ""
    #: The token's label as its owner named it (shown when asking for approval).
    token_label: str = ""
    client: str = ""
    chat_id: str = ""
    persona_id: str = ""
    #: Who "always for this tool in this session" applies to (token or MCP session).
    session_key: str = ""
