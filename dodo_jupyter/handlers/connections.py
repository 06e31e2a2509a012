"""REST: the caller's MCP connections, and the OAuth callback page."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from ..exceptions import DodoError, ValidationFailed
from ..oauth.pages import render_callback_page
from .base import DodoAPIHandler, describe_http_error, set_allow_header

__all__ = [
    "CallbackHandler",
    "ClientMetadataHandler",
    "ConfigsHandler",
    "DeleteAuthHandler",
    "RefreshStateHandler",
    "ServerPolicyHandler",
    "ServersHandler",
    "StartAuthHandler",
]

CALLBACK_PATH = "dodo/oauth/callback"


def _connection_id(body: dict[str, object]) -> str:
    value = body.get("connection_id")
    if not isinstance(value, str) or not value:
        raise ValidationFailed(
            "Give 'connection_id' (a string).", fields={"connection_id": "required string"}
        )
    return value


class OAuthAPIHandler(DodoAPIHandler):
    """Adds the redirect URI this server's OAuth flows use."""

    def redirect_uri(self) -> str:
        """``<public origin><base_url>dodo/oauth/callback``; the origin is
        ``DodoApp.public_url`` or the one the browser used."""
        origin = self.dodo.public_url or f"{self.request.protocol}://{self.request.host}"
        return origin.rstrip("/") + self.base_url + CALLBACK_PATH


class StartAuthHandler(OAuthAPIHandler):
    """``POST /dodo/api/mcp/start-auth {catalog_id}`` (or ``{url}``)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        body = self.json_object()
        result = await self.dodo.connections.start_auth(
            who.username,
            catalog_id=body.get("catalog_id"),
            url=body.get("url"),
            redirect_uri=self.redirect_uri(),
        )
        self.send_json(result)


class DeleteAuthHandler(DodoAPIHandler):
    """``POST /dodo/api/mcp/delete-auth {connection_id}``."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        conn_id = _connection_id(self.json_object())
        self.send_json(await self.dodo.connections.delete_auth(who.username, conn_id))


class RefreshStateHandler(DodoAPIHandler):
    """``POST /dodo/api/mcp/refresh-state {connection_id}``."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        conn_id = _connection_id(self.json_object())
        server = await self.dodo.connections.refresh_state(who.username, conn_id)
        (shown,) = await self.dodo.gateway.step_ups.annotate(who.username, [server])
        self.send_json(shown)


class ServersHandler(DodoAPIHandler):
    """``GET /dodo/api/mcp/servers``: the caller's connections; one whose tool asked for
    more scopes is ``needs_scope``, with the consent URL in ``step_up`` (the owner's
    only: a visitor is refused)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        servers = await self.dodo.connections.for_user(who.username)
        shown = await self.dodo.gateway.step_ups.annotate(who.username, servers)
        self.send_json({"servers": shown})


class ServerPolicyHandler(DodoAPIHandler):
    """``PUT /dodo/api/mcp/servers/{connection_id}/tool-policy {allow, deny, ...}``: the
    caller's own tool policy of a server outside the catalog."""

    @web.authenticated
    @authorized
    async def put(self, connection_id: str) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        connections = self.dodo.connections
        answer = await connections.set_tool_policy(who.username, connection_id, self.json_body())
        self.send_json(answer)


class ConfigsHandler(DodoAPIHandler):
    """``POST /dodo/api/mcp/configs {catalog_id, headers}`` for static-header servers."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        body = self.json_object()
        result = await self.dodo.connections.configure_headers(
            who.username, body.get("catalog_id"), body.get("headers")
        )
        self.send_json(result)


class CallbackHandler(JupyterHandler):
    """``GET /dodo/oauth/callback``: finishes a flow and renders the result page.

    It asks for no login of its own: the ``state`` it carries is what it trusts (random,
    single use, expiring, bound to the user who started the flow; a signed-in user who is
    not that user is refused).
    """

    auth_resource = "dodo"

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors tornado raises itself (an unknown method, a malformed body) as the
        result page. Jupyter's error template would ask for the current user, which does
        not exist yet when tornado refuses a request before ``prepare()``."""
        message = describe_http_error(status_code, kwargs.get("exc_info"))["message"]
        set_allow_header(self, status_code)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(render_callback_page(ok=False, message=message))

    @allow_unauthenticated
    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")
        runtime = self.settings["dodo"]
        query = {
            name: self.get_query_argument(name, None)
            for name in ("state", "code", "iss", "error", "error_description")
        }
        try:
            await runtime.mcp_ready()
            user = self.current_user
            username = runtime.resolver.resolve(user).username if user else None
            connection_id = await runtime.connections.complete(username, query)
        except DodoError as e:
            self.set_status(e.status if e.status < 500 else 502)
            self.finish(render_callback_page(ok=False, message=e.message))
            return
        self.finish(
            render_callback_page(
                ok=True, message="The MCP server is connected.", connection_id=connection_id
            )
        )


class ClientMetadataHandler(JupyterHandler):
    """``GET /dodo/oauth/client-metadata.json``: dodo's Client ID Metadata Document."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors as JSON ``{error, message}``, like the REST API's (and without Jupyter's
        error template, which fails before ``prepare()``: see :class:`CallbackHandler`)."""
        set_allow_header(self, status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(describe_http_error(status_code, kwargs.get("exc_info"))))

    @allow_unauthenticated
    def get(self) -> None:
        runtime = self.settings["dodo"]
        document = runtime.client_metadata_document(self.base_url + CALLBACK_PATH)
        if document is None:
            raise web.HTTPError(404, "DodoApp.public_url is not an https URL")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))
