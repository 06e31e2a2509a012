"""Recognising the gateway's most common requests: plain 2026-07-28 ``tools/call`` and
``tools/list``.

Nearly all traffic on ``/dodo/mcp`` is an agent listing tools and calling them,
statelessly, without asking for progress. The SDK serves such a POST through its ASGI
app, a task group and a memory stream (kept ready for notifications that never come), a
request kernel and its middleware chain; measured on loopback that machinery costs more
CPU than routing the call does (``bench/gateway_overhead.py``).
:func:`read_plain_request` recognises such a request, and
:meth:`~dodo_jupyter.gateway.endpoint.GatewayEndpoint.answer_plain` answers it with the
same listing and tool-call code as the SDK path, shaped for the wire as the SDK shapes
it.

"Plain" is decided by the SDK's own public validation ladder (:mod:`mcp.shared.inbound`,
:mod:`mcp_types.methods`), so the two paths cannot disagree about what is valid. Anything
else returns ``None`` and goes through the SDK: other methods and notifications, a
request that asks for progress (its answer may become an SSE stream), a listing with a
cursor, one the ladder rejects (the SDK writes the rejection), a call whose tool's input
schema is not cached yet (the SDK lists the tools to check ``Mcp-Param-*`` headers), and
the 2025-11-25 protocol.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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

__all__ = ["CALL", "LIST", "PlainRequest", "read_plain_request"]

_PARAM_PREFIX = MCP_PARAM_HEADER_PREFIX.lower()
CALL = "tools/call"
LIST = "tools/list"


@dataclass(frozen=True)
class PlainRequest:
    """A request the gateway answers itself: its method, id, version and ``_meta``, and
    for a call the tool's name and arguments."""

    method: str
    request_id: str | int
    protocol_version: str
    meta: dict[str, Any]
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


def _accepts_json_and_sse(accept: str) -> bool:
    """The SDK's Accept rule for its SSE-capable endpoint (both types, wildcards count)."""
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    if "*/*" in types:
        return True
    return bool(types & {CONTENT_TYPE_JSON, "application/*"}) and bool(
        types & {CONTENT_TYPE_SSE, "text/*"}
    )


def read_plain_request(
    headers: Sequence[tuple[str, str]],
    body: bytes,
    input_schema: Callable[[str], dict[str, Any] | None],
) -> PlainRequest | None:
    """The plain ``tools/call`` or ``tools/list`` in a POST, or ``None`` when the SDK
    should serve it.

    ``headers`` are the request's raw header lines; ``input_schema(name)`` is the cached
    input schema of a tool of the caller (``None`` when not cached).
    """
    folded: dict[str, str] = {}
    for name, value in headers:
        folded.setdefault(name.lower(), value)  # the first of a repeated header, as the SDK
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
    method = decoded.get("method") if isinstance(decoded, dict) else None
    if method not in (CALL, LIST):
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
        methods.validate_client_request(method, route.protocol_version, params)
    except Exception:  # the SDK path says what is wrong
        return None
    meta = params.get("_meta")
    if not isinstance(meta, dict) or meta.get("progressToken") is not None:
        return None
    if method == LIST:
        if params.get("cursor") is not None:
            return None
        return PlainRequest(LIST, request_id, route.protocol_version, meta)
    name = params["name"]
    arguments = params.get("arguments") or {}
    if arguments or params_headers:
        schema = input_schema(name)
        if schema is None:
            return None
        if validate_mcp_param_headers(schema, arguments, folded) is not None:
            return None
    return PlainRequest(CALL, request_id, route.protocol_version, meta, name, dict(arguments))
