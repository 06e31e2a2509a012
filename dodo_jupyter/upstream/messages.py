"""The JSON-RPC messages of dodo's MCP client, whatever the transport carries them
(streamable HTTP in :mod:`.wire`, HTTP+SSE in :mod:`.legacy_sse`): requests and their
ids, ``initialize``, what a stateless 2026-07-28 request carries besides (its ``_meta``,
its routing headers), answers to server requests, cancellation notices, and the errors
both transports raise.

**Server requests.** A server may ask its client something while it works on a call
(``elicitation/create``, ``sampling/createMessage``, ``roots/list``). dodo's client only
relays such a request to whoever made the call (a :class:`Relay`, given with the call);
:func:`relayed_answer` builds the JSON-RPC answer: ``ping`` is answered at once, a request
without a relay gets "method not found" (dodo declared no such capability), and a relay's
failure becomes a JSON-RPC error with a message, never a hang."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httpx2
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
)
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_MODERN_VERSION

from ..net.deadline import host_shown
from ..net.failures import describe_failure
from ..tool_results import WireResult

__all__ = [
    "MAX_EVENT_BYTES",
    "MODERN_VERSION",
    "PROTOCOL_VERSION",
    "OnNotification",
    "Relay",
    "RequestFailed",
    "SessionLost",
    "cancelled_notice",
    "in_background",
    "initialize_params",
    "modern_meta",
    "negotiated_version",
    "relayed_answer",
    "reply_to",
    "request_message",
    "result_of",
    "routing_headers",
]

log = logging.getLogger(__name__)

#: Handles a notification the server sent.
OnNotification = Callable[[dict[str, Any]], Awaitable[None]]


class Relay(Protocol):
    """Whoever made a call, as the server may reach them while it runs: the gateway's
    downstream client session (:mod:`dodo_jupyter.gateway.relay`)."""

    #: The client capabilities to declare to the server (``elicitation``, ``sampling``,
    #: ``roots``): what the one being relayed to declared, nothing more.
    capabilities: dict[str, Any]

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Ask the caller; its result, or :class:`MCPError`."""
        ...

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """Tell the caller (``notifications/message``, ``notifications/elicitation/complete``)."""
        ...


#: The protocol version dodo asks for; the server may answer with another it speaks.
PROTOCOL_VERSION = "2025-11-25"
#: The stateless protocol version dodo speaks (:func:`.wire.connect`).
MODERN_VERSION = LATEST_MODERN_VERSION
#: Largest SSE event accepted (bytes, as the SDK's default).
MAX_EVENT_BYTES = 1024 * 1024

_METHOD_NOT_FOUND = -32601
_INTERNAL_ERROR = -32603
_ids = itertools.count(1)
#: Notices in flight (kept so they are not garbage-collected).
_background: set[asyncio.Task[None]] = set()


class SessionLost(Exception):
    """The server no longer knows our session (it answered 404, or its stream ended)."""


class RequestFailed(Exception):
    """The exchange failed without a JSON-RPC answer."""

    def __init__(
        self, message: str, status: int | None = None, *, unsent: bool = False, reason: str = ""
    ) -> None:
        super().__init__(message)
        #: The HTTP status, when the server answered.
        self.status = status
        #: The request never reached the server (no connection): safe to send again.
        self.unsent = unsent
        #: What happened to the connection ("the connection was refused"), for a failure
        #: in transport.
        self.reason = reason

    @classmethod
    def of_transport(cls, url: str, error: httpx2.HTTPError) -> RequestFailed:
        """The exchange with the MCP server at ``url`` failed in transport: the message
        names the host and what happened (never the exception's class)."""
        unsent = isinstance(error, httpx2.ConnectError | httpx2.ConnectTimeout)
        what = "could not be reached" if unsent else "broke off the exchange"
        reason = describe_failure(error)
        return cls(
            f"The MCP server at {host_shown(url)} {what}: {reason}.", unsent=unsent, reason=reason
        )


def initialize_params(
    client_version: str, capabilities: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``initialize`` parameters dodo sends: its version and the client
    ``capabilities`` it relays (none by default)."""
    return {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": capabilities or {},
        "clientInfo": {"name": "dodo-jupyter", "version": client_version},
    }


def modern_meta(client_version: str, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``_meta`` every stateless 2026-07-28 request carries: its version, dodo as its
    client and the client ``capabilities``."""
    return {
        PROTOCOL_VERSION_META_KEY: MODERN_VERSION,
        CLIENT_INFO_META_KEY: {"name": "dodo-jupyter", "version": client_version},
        CLIENT_CAPABILITIES_META_KEY: capabilities or {},
    }


def routing_headers(method: str, params: dict[str, Any]) -> dict[str, str]:
    """The headers a stateless request repeats from its body: ``Mcp-Method``, and
    ``Mcp-Name`` for a request that names a tool, prompt or resource."""
    headers = {MCP_METHOD_HEADER: method}
    key = NAME_BEARING_METHODS.get(method)
    name = params.get(key) if key is not None else None
    if isinstance(name, str):
        headers[MCP_NAME_HEADER] = encode_header_value(name)
    return headers


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


def result_of(answer: dict[str, Any], size: int | None = None) -> WireResult:
    """The ``result`` of a JSON-RPC answer (``size``: the bytes of the answer's JSON,
    when known); an error answer raises :class:`MCPError`."""
    if "error" in answer:
        error = answer["error"] if isinstance(answer["error"], dict) else {}
        raise MCPError(
            int(error.get("code", -32603)), str(error.get("message", "")), error.get("data")
        )
    result = answer.get("result")
    if not isinstance(result, dict):
        raise RequestFailed("The MCP server answered without a result.")
    return WireResult(result, size)


def reply_to(message: dict[str, Any]) -> dict[str, Any]:
    """The answer to a request the server sent outside any relay: to ``ping``, an empty
    result; to anything else, "method not found"."""
    if message["method"] == "ping":
        return {"jsonrpc": "2.0", "id": message["id"], "result": {}}
    return _error(message, _METHOD_NOT_FOUND, "Method not found")


async def relayed_answer(message: dict[str, Any], relay: Relay | None) -> dict[str, Any]:
    """The answer to the server request ``message``, asking ``relay`` when there is one
    (see the module docstring)."""
    if relay is None or message["method"] == "ping":
        return reply_to(message)
    params = message.get("params")
    try:
        result = await relay.request(message["method"], params if isinstance(params, dict) else {})
    except MCPError as e:
        return _error(message, e.error.code, e.error.message, e.error.data)
    except Exception as e:
        log.warning("dodo: relaying %r failed: %s", message["method"], type(e).__name__)
        return _error(message, _INTERNAL_ERROR, "The gateway could not relay this request.")
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def _error(message: dict[str, Any], code: int, text: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": text}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": message["id"], "error": error}


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
