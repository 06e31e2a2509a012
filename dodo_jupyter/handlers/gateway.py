"""``{base_url}dodo/mcp``: the gateway's MCP endpoint on the Jupyter server's own port.

The handler decides who is calling (:class:`~.mcp_caller.MCPCallerHandler`: gateway
token, service token or Jupyter's own authentication), then hands the request to the
MCP SDK through a thin ASGI bridge (:class:`~.asgi_bridge.ASGIBridge`; the SDK's session
manager is the app). A malformed JSON-RPC message is refused here with a sentence, not
the SDK's pydantic dump. Code mode's endpoint (:mod:`.codemode`) is this handler with
another MCP server behind it.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import allow_unauthenticated

from .mcp_caller import TOKEN_PREFIX, MCPCallerHandler

if TYPE_CHECKING:
    from ..gateway.host import HostedEndpoint, HostedTask

__all__ = ["TOKEN_PREFIX", "GatewayHandler"]

#: JSON-RPC 2.0 §5.1, the code the MCP SDK answers a malformed message with.
_INVALID_PARAMS = -32602


def _invalid_message_reason(content_type: str, body: bytes | None) -> str | None:
    """Why ``body`` is not a JSON-RPC message, in a sentence naming the member and what
    it must be; None when it is one, or is not JSON at all (the SDK answers those).

    A request or notification is checked by its members' types only (the SDK validates
    it whole anyway, and this runs on every call); only what is neither is checked with
    the SDK's own adapter."""
    if not content_type.split(";")[0].strip().lower() == "application/json":
        return None
    try:
        raw = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(raw, dict):
        return "A JSON-RPC message must be one JSON object (batches are not supported)."
    if raw.get("jsonrpc") != "2.0":
        return "'jsonrpc' must be \"2.0\"."
    if "id" in raw and (isinstance(raw["id"], bool) or not isinstance(raw["id"], (str, int))):
        return "'id' must be a string or an integer."
    if "method" in raw:
        if not isinstance(raw["method"], str):
            return "'method' must be a string."
        if "params" in raw and not isinstance(raw["params"], dict):
            return "'params' must be an object."
        return None
    from mcp_types import jsonrpc_message_adapter
    from pydantic import ValidationError

    try:
        jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except ValidationError:
        return (
            "A JSON-RPC message needs 'method' (a request or notification), or 'id' with "
            "'result' or an 'error' object (a response)."
        )
    return None


class GatewayHandler(MCPCallerHandler):
    """``GET/POST/DELETE {base_url}dodo/mcp`` (MCP Streamable HTTP)."""

    #: A request served in the SDK's JSON form, cancelled if the client leaves (``post``).
    _json_call: asyncio.Future[None] | None = None

    def _host(self) -> HostedTask[Any]:
        return self.dodo.endpoint

    # -- the MCP methods --------------------------------------------------------------

    @allow_unauthenticated
    async def get(self) -> None:
        await self._bridge(await self._endpoint())

    @allow_unauthenticated
    async def post(self) -> None:
        endpoint = await self._endpoint()
        request = self.request
        reason = _invalid_message_reason(request.headers.get("Content-Type", ""), request.body)
        if reason is not None:
            # The SDK would answer with pydantic's dump of the message; a person reads this.
            error = {"code": _INVALID_PARAMS, "message": reason}
            self.set_status(400)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"jsonrpc": "2.0", "id": None, "error": error}))
            return
        if not endpoint.answers_in_json(request.headers, request.body or b""):
            await self._bridge(endpoint)
            return
        # The SDK's JSON form does not watch for the client leaving: the request runs in
        # its own task, which on_connection_close cancels (and the upstream is told).
        self._json_call = asyncio.ensure_future(self._bridge(endpoint, in_json=True))
        try:
            await self._json_call
        except asyncio.CancelledError:
            if not self._gone.is_set():
                raise

    @allow_unauthenticated
    async def delete(self) -> None:
        await self._bridge(await self._endpoint())

    async def _endpoint(self) -> HostedEndpoint:
        await self.dodo.mcp_ready()
        endpoint: HostedEndpoint = await self._host().endpoint()
        return endpoint

    async def _bridge(self, endpoint: HostedEndpoint, *, in_json: bool = False) -> None:
        caller = self._caller
        assert caller is not None
        await self.serve_asgi(
            lambda scope, receive, send: endpoint.handle(
                scope, receive, send, caller, in_json=in_json
            )
        )

    def _finish_response(self) -> None:
        # APIHandler.finish would otherwise force application/json.
        self.finish(set_content_type=self._content_type)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self._json_call is not None:
            self._json_call.cancel()
