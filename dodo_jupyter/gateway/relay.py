"""What an upstream server asks or says during a call, relayed to the client session
that made the call.

A server working on ``tools/call`` may ask its client to fill a form or open a URL
(``elicitation/create``), to run a model (``sampling/createMessage``) or for its roots
(``roots/list``), and may log (``notifications/message``). Behind the gateway, "its
client" is dodo, and the one who can answer is the agent's client that called the
gateway's tool. :class:`DownstreamRelay` (a :class:`~dodo_jupyter.upstream.messages.Relay`)
carries each of these to that client on the call's own stream and the answer back:

* the upstream session is opened declaring exactly the capabilities the client declared
  (:attr:`DownstreamRelay.capabilities`), so a server never asks what the client cannot
  answer; should it ask anyway, or should the client be unable to receive a request
  (the stateless 2026-07-28 protocol has no channel for one), the server gets a JSON-RPC
  error saying so at once, never a hang;
* a request or answer that is not MCP's shape is refused with a short message, and so
  is a URL-mode elicitation whose URL is not ``https`` (plain ``http`` only to a
  loopback address): the client is about to show that URL to a person;
* log messages carry the server's alias as their ``logger`` and respect the level the
  client set.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import BaseModel, ConfigDict, ValidationError

from ..net.addresses import parse_host_ip
from .live import Downstream, level_passes, logger_name

__all__ = ["RELAYED", "DownstreamRelay", "capabilities_key", "relayed_capabilities"]

#: Server requests the gateway relays: method -> (client capability, request model).
RELAYED: dict[str, tuple[str, type[BaseModel]]] = {
    "elicitation/create": ("elicitation", types.ElicitRequest),
    "sampling/createMessage": ("sampling", types.CreateMessageRequest),
    "roots/list": ("roots", types.ListRootsRequest),
}
log = logging.getLogger(__name__)

_METHOD_NOT_FOUND = -32601
_INVALID_PARAMS = -32602


class _Answer(BaseModel):
    """A client's result, kept whole (the SDK checks its shape against the spec)."""

    model_config = ConfigDict(extra="allow")


def relayed_capabilities(capabilities: types.ClientCapabilities | None) -> dict[str, Any]:
    """The client capabilities the gateway declares upstream for a client that declared
    ``capabilities``: its elicitation, sampling and roots, nothing else (roots without
    ``listChanged``: the gateway does not relay root changes)."""
    if capabilities is None:
        return {}
    declared = capabilities.model_dump(by_alias=True, mode="json", exclude_none=True)
    relayed: dict[str, Any] = {
        key: declared[key] for key in ("elicitation", "sampling") if key in declared
    }
    if "roots" in declared:
        relayed["roots"] = {}
    return relayed


def capabilities_key(capabilities: dict[str, Any]) -> str:
    """A stable text for a set of relayed capabilities ("" for none)."""
    return json.dumps(capabilities, sort_keys=True, separators=(",", ":")) if capabilities else ""


def _safe_url(url: object) -> bool:
    """Whether an elicitation URL may be shown to a person: https, or http to loopback."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    ip = parse_host_ip(parts.hostname or "") if parts.scheme == "http" else None
    return ip is not None and ip.is_loopback


class DownstreamRelay:
    """Relays one call's server requests and log messages to the calling client session.

    Parameters
    ----------
    session:
        The SDK's ``ctx.session`` of the gateway's ``tools/call``.
    request_id:
        The id of that request: what is relayed rides its stream.
    alias:
        The upstream server's alias (for log messages and error texts).
    downstream:
        The client's open session, when it has one (its log level).
    """

    def __init__(
        self, session: Any, request_id: Any, alias: str, downstream: Downstream | None = None
    ) -> None:
        self._session = session
        self._request_id = request_id
        self.alias = alias
        self._downstream = downstream
        self.capabilities: dict[str, Any] = {}
        if session.can_send_request:
            if downstream is None:
                self.capabilities = relayed_capabilities(session.client_capabilities)
            else:  # the session's declaration does not change: read it once
                if downstream.relayed is None:
                    downstream.relayed = relayed_capabilities(session.client_capabilities)
                self.capabilities = downstream.relayed

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        relayed = RELAYED.get(method)
        if relayed is None or relayed[0] not in self.capabilities:
            raise MCPError(
                _METHOD_NOT_FOUND,
                f"The agent's MCP client did not declare support for {method}, so dodo's "
                "gateway cannot ask it; the tool has to do without.",
            )
        model = relayed[1]
        try:
            request = model.model_validate({"method": method, "params": params})
        except ValidationError:
            raise MCPError(
                _INVALID_PARAMS, f"This {method} request is not what MCP specifies."
            ) from None
        if params.get("mode") == "url" and not _safe_url(params.get("url")):
            raise MCPError(
                _INVALID_PARAMS,
                "dodo's gateway only relays elicitation URLs that use https (or http to a "
                "loopback address); give the user an https URL.",
            )
        try:
            answer = await self._session.send_request(
                request,
                _Answer,
                metadata=ServerMessageMetadata(related_request_id=self._request_id),
            )
        except ValidationError:
            raise MCPError(
                _INVALID_PARAMS, f"The agent's answer to {method} is not what MCP specifies."
            ) from None
        return answer.model_dump(by_alias=True, mode="json", exclude_none=True)

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """Pass a log message or an elicitation's completion on; one that is not MCP's
        shape, or that the client cannot take, is dropped (the call goes on)."""
        model: type[BaseModel]
        if method == "notifications/message":
            minimum = self._downstream.log_level if self._downstream else None
            if not level_passes(params.get("level"), minimum):
                return
            params = {**params, "logger": logger_name(self.alias, params.get("logger"))}
            model = types.LoggingMessageNotification
        elif method == "notifications/elicitation/complete":
            model = types.ElicitCompleteNotification
        else:
            return
        try:
            notification = model.model_validate({"method": method, "params": params})
            await self._session.send_notification(notification, related_request_id=self._request_id)
        except Exception as e:
            log.debug("dodo gateway: %s from %s not relayed: %s", method, self.alias, e)
