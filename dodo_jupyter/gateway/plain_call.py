"""Recognising the gateway's most common request: a plain 2026-07-28 ``tools/call``.

Nearly all traffic on ``/dodo/mcp`` is an agent calling a tool, statelessly, without
asking for progress. The SDK serves such a POST through its ASGI app, a task group and a
memory stream (kept ready for notifications that never come), a request kernel and its
middleware chain; measured on loopback that machinery costs more CPU than routing the
call does (``bench/gateway_overhead.py``). :func:`read_plain_tool_call` recognises such
a request, and :meth:`~dodo_jupyter.gateway.endpoint.GatewayEndpoint.answer_plain_call`
answers it with the same tool-call code as the SDK path, shaped for the wire as the SDK
shapes it.

"Plain" is decided by the SDK's own public validation ladder (:mod:`mcp.shared.inbound`,
:mod:`mcp_types.methods`), so the two paths cannot disagree about what is valid. Anything
else returns ``None`` and goes through the SDK: other methods and notifications, a
request that asks for progress (its answer may become an SSE stream), one the ladder
rejects (the SDK writes the rejection), one whose tool's input schema is not cached yet
(the SDK lists the tools to check ``Mcp-Param-*`` headers), and the 2025-11-25 protocol.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.streamable_http import CONTENT_TYPE_JSON, CONTENT_TYPE_SSE
from mcp.shared.inbound import (
    MCP_PARAM_HEADER_PREFIX,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp_types import methods

__all__ = ["PlainToolCall", "read_plain_tool_call"]

_PARAM_PREFIX = MCP_PARAM_HEADER_PREFIX.lower()
_METHOD = "tools/call"


@dataclass(frozen=True)
class PlainToolCall:
    """A ``tools/call`` the gateway answers itself: its id, version and parameters."""

    request_id: str | int
    protocol_version: str
    name: str
    arguments: dict[str, Any]
    meta: dict[str, Any]


def _accepts_json_and_sse(accept: str) -> bool:
    """The SDK's Accept rule for its SSE-capable endpoint (both types, wildcards count)."""
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    if "*/*" in types:
        return True
    return bool(types & {CONTENT_TYPE_JSON, "application/*"}) and bool(
        types & {CONTENT_TYPE_SSE, "text/*"}
    )


def read_plain_tool_call(
    headers: Sequence[tuple[str, str]],
    body: bytes,
    input_schema: Callable[[str], dict[str, Any] | None],
) -> PlainToolCall | None:
    """The plain ``tools/call`` in a POST, or ``None`` when the SDK should serve it.

    ``headers`` are the request's raw header lines; ``input_schema(name)`` is the cached
    input schema of a tool of the caller (``None`` when not cached).
    """
    folded = {name.lower(): value for name, value in headers}
    if not folded.get("content-type", "").lower().startswith(CONTENT_TYPE_JSON):
        return None
    if not _accepts_json_and_sse(folded.get("accept", "")):
        return None
    if find_duplicated_routing_header(headers) is not None:
        return None
    params_headers = [name.lower() for name, _ in headers if name.lower().startswith(_PARAM_PREFIX)]
    if len(params_headers) != len(set(params_headers)):
        return None  # the SDK rejects a repeated Mcp-Param-* header
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict) or decoded.get("method") != _METHOD:
        return None
    request_id = decoded.get("id")
    params = decoded.get("params")
    if (
        decoded.get("jsonrpc") != "2.0"
        or isinstance(request_id, bool)
        or not isinstance(request_id, str | int)
        or not isinstance(params, dict)
    ):
        return None
    route = classify_inbound_request(decoded, headers=folded)
    if isinstance(route, InboundLadderRejection):
        return None
    try:
        methods.validate_client_request(_METHOD, route.protocol_version, params)
    except Exception:  # the SDK path says what is wrong
        return None
    meta = params.get("_meta")
    if not isinstance(meta, dict) or meta.get("progressToken") is not None:
        return None
    name = params["name"]
    arguments = params.get("arguments") or {}
    if arguments or params_headers:
        schema = input_schema(name)
        if schema is None:
            return None
        if validate_mcp_param_headers(schema, arguments, folded) is not None:
            return None
    return PlainToolCall(request_id, route.protocol_version, name, dict(arguments), meta)
