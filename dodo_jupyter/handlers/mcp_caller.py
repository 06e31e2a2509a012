"""Who is calling one of dodo's MCP endpoints (``{base_url}dodo/mcp`` and
``{base_url}dodo/mcp/codemode``): :class:`MCPCallerHandler` decides it once, for both.

Credentials, in this order:

1. ``Authorization: Bearer dodo_…``: a gateway token (``runtime.tokens``), its user.
2. ``Authorization: Bearer <DodoApp.service_token>`` (constant-time compare): the owner,
   logged at INFO as service use (never the token).
3. Jupyter's own authentication (cookie, Jupyter token), mapped to dodo's identity: the
   owner is served, a visitor on a shared hub server gets 403.

Anything else gets 401 JSON with ``WWW-Authenticate: Bearer realm="dodo"``. For 1 and 2
Jupyter's identity provider is not consulted (in hub mode that would be a hub API call
per token) and XSRF does not apply: a browser never attaches an ``Authorization``
header on its own, so such a request cannot be forged cross-site. Cookie requests keep
Jupyter's XSRF and Origin checks.

Also: ``X-Dodo-Hop`` (an integer, 0 when absent) above
:data:`~dodo_jupyter.gateway.caller.MAX_HOPS` gets 429, which stops a catalog entry that
points at a gateway from looping; Jupyter AI's built-in token serves only personas
answering the owner; every authenticated request counts as server activity for idle
culling (``api_last_activity``, as jupyter_server's API handlers do); while the endpoint
stops (:meth:`MCPCallerHandler._host`), requests get 503.

The result is :attr:`MCPCallerHandler._caller`, a
:class:`~dodo_jupyter.gateway.caller.Caller`; subclasses hand it to their MCP server.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

from jupyter_core.utils import ensure_async
from jupyter_server._tz import utcnow
from jupyter_server.auth.identity import User
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from jupyter_server.prometheus.log_functions import prometheus_log_method
from tornado.web import HTTPError

from ..exceptions import (
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    TooManyHops,
    Unauthorized,
    Unavailable,
)
from ..gateway.attribution import Attribution
from ..gateway.caller import HOP_HEADER, MAX_HOPS, Caller, Via
from ..jupyter_ai import BUILTIN_TOKEN_KIND, refusal_for_builtin_request
from ..logs import shown_level
from .asgi_bridge import ASGIBridge
from .base import DodoAPIHandler

if TYPE_CHECKING:
    from ..gateway.host import HostedTask
    from ..tokens import CheckedToken

__all__ = ["TOKEN_PREFIX", "MCPCallerHandler", "bearer_of"]

_BEARER = "bearer "
#: ``dodo_jupyter.tokens.TOKEN_PREFIX``, spelled out: importing tokens (SQLAlchemy) here
#: would slow down server start.
TOKEN_PREFIX = "dodo_"  # noqa: S105 - a public prefix, not a secret


def bearer_of(header: str) -> str | None:
    """The credential of an ``Authorization: Bearer …`` header; None for any other."""
    if header[: len(_BEARER)].lower() != _BEARER:
        return None
    return header[len(_BEARER) :].strip() or None


class MCPCallerHandler(ASGIBridge, DodoAPIHandler):
    """The base of dodo's MCP endpoint handlers: authenticates the request and sets
    :attr:`_caller` (see the module docstring). Subclasses say which endpoint they
    serve (:meth:`_host`) and implement the HTTP methods."""

    _caller: Caller | None = None
    _own_credential = False

    def _host(self) -> HostedTask[Any]:
        """The host of the MCP endpoint this handler serves (503 while it stops)."""
        raise NotImplementedError

    async def prepare(self) -> None:  # type: ignore[override]
        if self.request.method == "OPTIONS":  # a CORS preflight carries no credentials
            await super().prepare()
            return
        if self._host().stopping:
            raise Unavailable("dodo is shutting down; try again once the server is back.")
        bearer = bearer_of(self.request.headers.get("Authorization", ""))
        if bearer is not None and (
            bearer.startswith(TOKEN_PREFIX) or self._is_service_token(bearer)
        ):
            await self._prepare_own_credential()
        else:
            await super().prepare()
        await self.dodo.ready()
        # Agents are often the only callers left after a hub rename (the owner's own hub
        # tokens get 403): the owner check runs for them too, before the token is trusted.
        await self.dodo.hygiene_if_due()
        username, via, token = await self._authenticate(bearer)
        agent = Attribution.from_headers(
            self.request.headers.get, token.token_id if token is not None else None
        )
        if token is not None and token.kind == BUILTIN_TOKEN_KIND:
            self._check_builtin(agent)
        kind, label = (token.kind, token.label) if token is not None else ("", "")
        self._caller = Caller(username, via, self._hop(), agent, kind, label)
        if self._own_credential:
            # For Jupyter's request log ("200 POST /dodo/mcp (<user>@<ip>)") only.
            self.current_user = User(username)
        self.settings["api_last_activity"] = utcnow()

    async def _prepare_own_credential(self) -> None:
        """jupyter_server's prepare, minus its identity provider and XSRF check."""
        self._own_credential = True
        self.current_user = self._jupyter_current_user = None
        if not self.check_host():
            raise HTTPError(403)
        self.set_cors_headers()
        limit = self.dodo.max_request_bytes
        if len(self.request.body or b"") > limit:
            raise PayloadTooLarge(
                f"The request body is larger than {limit} bytes (DodoApp.max_request_bytes)."
            )

    def check_xsrf_cookie(self) -> None:
        """Jupyter's XSRF check, except for a request nobody is authenticated by: that
        one gets the 401 an MCP client understands, and can do nothing anyway."""
        if hasattr(self, "_jupyter_current_user") and not self._jupyter_current_user:
            return None
        return super().check_xsrf_cookie()

    def _is_service_token(self, presented: str) -> bool:
        expected = self.dodo.settings.service_token
        return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())

    def _hop(self) -> int:
        raw = self.request.headers.get(HOP_HEADER)
        if raw is None:
            return 0
        try:
            hop = int(raw.strip())
        except ValueError:
            raise BadRequest(f"{HOP_HEADER} must be a whole number, not {raw[:20]!r}.") from None
        if hop < 0:
            raise BadRequest(f"{HOP_HEADER} must not be negative, not {hop}.")
        if hop > MAX_HOPS:
            raise TooManyHops(
                f"This request already passed through {hop} dodo gateways (at most {MAX_HOPS}): "
                "an approved MCP server probably points back at a gateway."
            )
        return hop

    def _check_builtin(self, agent: Attribution) -> None:
        """Jupyter AI's built-in token serves only personas answering the owner."""
        refusal = refusal_for_builtin_request(
            self.settings,
            agent.chat_id,
            agent.persona_id,
            self.dodo.resolver.owner,
            self.dodo.resolver.mode == "hub",
        )
        if refusal is not None:
            raise Forbidden(refusal)

    async def _authenticate(self, bearer: str | None) -> tuple[str, Via, CheckedToken | None]:
        """Who is calling, how they proved it, and the gateway token if one."""
        if bearer is not None and bearer.startswith(TOKEN_PREFIX):
            token = await self.dodo.tokens.check(bearer)
            if token is not None:
                return token.username, "token", token
        if self._own_credential and bearer is not None and self._is_service_token(bearer):
            owner = self.dodo.resolver.owner_identity().username
            self.log.info(
                "dodo gateway: service token used for %s %s (acting as %r) from %s",
                self.request.method,
                self.request.path,
                owner,
                self.request.remote_ip,
            )
            return owner, "service", None
        if self._own_credential:
            raise Unauthorized(
                "The gateway token is not valid (unknown, deleted or expired): create one in "
                "JupyterLab's MCP panel and send it as 'Authorization: Bearer dodo_…'.",
            )
        user = self.current_user
        if not user:
            raise Unauthorized(
                "Authentication required: send a gateway token as 'Authorization: Bearer "
                "dodo_…' (create one in JupyterLab's MCP panel)."
            )
        method = self.request.method or "GET"
        action = HTTP_METHOD_TO_AUTH_ACTION.get(method, "write")
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, user, action, self.auth_resource)
        )
        if not allowed:
            raise Forbidden(f"You are not allowed to {action} dodo on this server.")
        who = self.dodo.resolver.resolve(user).require_owner()
        return who.username, "jupyter", None

    # -- errors and records -----------------------------------------------------------

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, Unauthorized) and not self._finished:
            self.clear()
            self.set_status(e.status)
            # RFC 6750 §3: a presented token that failed says so; no token, no error code.
            challenge = 'Bearer realm="dodo"'
            if self._own_credential:
                challenge += ', error="invalid_token"'
            self.set_header("WWW-Authenticate", challenge)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(e.to_json()))
            return
        super()._handle_request_exception(e)

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        if self._caller is not None:
            self.settings["api_last_activity"] = utcnow()
        return super().finish(*args, **kwargs)

    def _log(self) -> None:
        """Answered MCP requests skip jupyter_server's access line unless debug logging is
        on (it is formatted even when not shown: a measurable share of a gateway call);
        failures are logged as usual and request metrics are always recorded."""
        if self.get_status() >= 300 or shown_level(self.log) <= logging.DEBUG:
            super()._log()
        elif getattr(self.serverapp, "record_http_request_metrics", True):
            prometheus_log_method(self)

    def compute_etag(self) -> None:
        """No ETag: MCP responses are never the same twice."""
        return None
