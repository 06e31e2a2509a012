"""The base of every dodo REST handler: JSON in, JSON out, errors as ``{error, message}``.

Handlers stay thin: parse the request, resolve the caller's :class:`Identity`, call a
service from :class:`~dodo_jupyter.runtime.DodoRuntime`, write JSON. Every
:class:`~dodo_jupyter.exceptions.DodoError` becomes its 4xx/5xx JSON answer here, in one
place; anything unexpected becomes a 500 whose details stay in the server log.
"""

from __future__ import annotations

import json
from http.client import responses
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import APIHandler
from tornado.web import HTTPError, RequestHandler

from ..exceptions import DodoError, PayloadTooLarge
from ..json_requests import JsonRequestMixin

if TYPE_CHECKING:
    from ..identity import Identity
    from ..runtime import DodoRuntime

__all__ = ["DodoAPIHandler", "allowed_methods", "describe_http_error", "set_allow_header"]

#: The methods a dodo handler may implement (tornado's ``SUPPORTED_METHODS``, in order).
_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    503: "unavailable",
}


class DodoAPIHandler(JsonRequestMixin, APIHandler):
    """Base class: authorization resource ``dodo``, JSON bodies, uniform errors."""

    auth_resource = "dodo"

    @property
    def dodo(self) -> DodoRuntime:
        return self.settings["dodo"]

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        limit = self.dodo.max_request_bytes
        if len(self.request.body or b"") > limit:
            raise PayloadTooLarge(
                f"The request body is larger than {limit} bytes (DodoApp.max_request_bytes)."
            )

    async def identity(self, *, mcp: bool = False) -> Identity:
        """The caller, once the store is ready (and, with ``mcp``, the connection and
        gateway services, which load the MCP SDK on first use)."""
        await (self.dodo.mcp_ready() if mcp else self.dodo.ready())
        await self.dodo.hygiene_if_due()
        who = self.dodo.resolver.resolve(self.current_user)
        hub_user = getattr(self.current_user, "hub_user", None)
        if who.is_owner and isinstance(hub_user, dict) and hub_user.get("user_info"):
            from ..owner import email_of

            await self.dodo.note_owner_email(email_of(hub_user))
        return who

    # -- errors -----------------------------------------------------------------------

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, DodoError):
            if e.status >= 500:
                self.log.warning("dodo: %s (%s)", e.message, e.__cause__ or e.code)
            if self._finished:
                return
            self.clear()
            self.set_status(e.status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(e.to_json()))
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        set_allow_header(self, status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(describe_http_error(status_code, kwargs.get("exc_info"))))


def allowed_methods(handler: type[RequestHandler]) -> list[str]:
    """The HTTP methods ``handler`` answers: those dodo's own classes implement (the
    ones ``openapi.json`` documents), in tornado's order."""
    return [
        method
        for method in _METHODS
        if any(
            klass.__module__.startswith("dodo_jupyter.") and method.lower() in vars(klass)
            for klass in handler.__mro__
        )
    ]


def set_allow_header(handler: RequestHandler, status_code: int) -> None:
    """On a 405, the ``Allow`` header RFC 9110 §15.5.6 requires: what the resource does
    answer."""
    if status_code == 405:
        handler.set_header("Allow", ", ".join(allowed_methods(type(handler))))


def describe_http_error(status_code: int, exc_info: Any = None) -> dict[str, str]:
    """``{error, message}`` for an error tornado or jupyter_server raised (the arguments
    of ``RequestHandler.write_error``); an unexpected exception's details stay in the log.
    """
    message = responses.get(status_code, "Unknown HTTP Error")
    error = _STATUS_CODES.get(status_code, "error")
    if exc_info and isinstance(exc_info[1], HTTPError):
        message = exc_info[1].log_message or exc_info[1].reason or message
        if exc_info[1].args:
            try:
                message = message % exc_info[1].args
            except (TypeError, ValueError):
                pass
    elif status_code >= 500:
        error = "internal_error"
        message = "Unexpected error in dodo; the server log has the details."
    return {"error": error, "message": message}
