"""The JSON-RPC messages of dodo's MCP client, whatever the transport carries them
(streamable HTTP in :mod:`.wire`, HTTP+SSE in :mod:`.legacy_sse`): requests and their
ids, ``initialize``, answers to server requests, cancellation notices, and the errors
both transports raise."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

__all__ = [
    "MAX_EVENT_BYTES",
    "PROTOCOL_VERSION",
    "OnNotification",
    "RequestFailed",
    "SessionLost",
    "cancelled_notice",
    "in_background",
    "initialize_params",
    "negotiated_version",
    "reply_to",
    "request_message",
    "result_of",
]

#: Handles a notification the server sent.
OnNotification = Callable[[dict[str, Any]], Awaitable[None]]

#: The protocol version dodo asks for; the server may answer with another it speaks.
PROTOCOL_VERSION = "2025-11-25"
#: Largest SSE event accepted (bytes, as the SDK's default).
MAX_EVENT_BYTES = 1024 * 1024

_METHOD_NOT_FOUND = -32601
_ids = itertools.count(1)
#: Notices in flight (kept so they are not garbage-collected).
_background: set[asyncio.Task[None]] = set()


class SessionLost(Exception):
    """The server no longer knows our session (it answered 404, or its stream ended)."""


class RequestFailed(Exception):
    """The exchange failed without a JSON-RPC answer."""

    def __init__(self, message: str, status: int | None = None, *, unsent: bool = False) -> None:
        super().__init__(message)
        #: The HTTP status, when the server answered.
        self.status = status
        #: The request never reached the server (no connection): safe to send again.
        self.unsent = unsent


def initialize_params(client_version: str) -> dict[str, Any]:
    """The ``initialize`` parameters dodo sends (its version, no client capabilities)."""
    return {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "dodo-jupyter", "version": client_version},
    }


def negotiated_version(result: dict[str, Any]) -> str:
    """The protocol version of an ``initialize`` result, when dodo speaks it."""
    version = result.get("protocolVersion")
    if version not in HANDSHAKE_PROTOCOL_VERSIONS:
        raise RequestFailed(
            f"The MCP server answered with protocol version {str(version)[:40]!r}, which "
            "dodo does not speak."
        )
    return str(version)


def request_message(method: str, params: dict[str, Any], progress: bool) -> dict[str, Any]:
    """A JSON-RPC request with a new id; with ``progress`` it asks for progress
    notifications, whose token is its id."""
    request_id = f"dodo-{next(_ids)}"
    if progress:
        params = {**params, "_meta": {**(params.get("_meta") or {}), "progressToken": request_id}}
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def result_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` of a JSON-RPC answer; an error answer raises :class:`MCPError`."""
    if "error" in answer:
        error = answer["error"] if isinstance(answer["error"], dict) else {}
        raise MCPError(
            int(error.get("code", -32603)), str(error.get("message", "")), error.get("data")
        )
    result = answer.get("result")
    if not isinstance(result, dict):
        raise RequestFailed("The MCP server answered without a result.")
    return result


def reply_to(message: dict[str, Any]) -> dict[str, Any]:
    """The answer to a request the server sent: to ``ping``, an empty result; to anything
    else, "method not found" (dodo declares no client capabilities)."""
    if message["method"] == "ping":
        return {"jsonrpc": "2.0", "id": message["id"], "result": {}}
    return {
        "jsonrpc": "2.0",
        "id": message["id"],
        "error": {"code": _METHOD_NOT_FOUND, "message": "Method not found"},
    }


def cancelled_notice(request_id: str) -> dict[str, Any]:
    """The notification that tells a server the caller gave up on a request."""
    return {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": request_id, "reason": "The gateway's caller went away."},
    }


def in_background(work: Awaitable[None]) -> None:
    """Run ``work`` (a best-effort notice) in the background, for at most 5 s."""

    async def run() -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(work, 5)

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)
