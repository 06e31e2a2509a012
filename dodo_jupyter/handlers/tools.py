"""REST: the caller's aggregated tools, their agent switches, and "try it"."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import ValidationFailed
from ..governance.context import CallContext
from ..tool_results import wire_form
from .base import DodoAPIHandler

__all__ = ["ToolCallHandler", "ToolHandler", "ToolListHandler"]


class ToolListHandler(DodoAPIHandler):
    """``GET /dodo/api/mcp/tools``: ``name, server_id, original_name, description,
    input_schema, enabled`` for every tool of the caller's connected servers."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        self.send_json({"tools": await self.dodo.gateway.describe_tools(who.username)})


class ToolHandler(DodoAPIHandler):
    """``PUT /dodo/api/mcp/tools/{name} {enabled}``: expose a tool to agents, or not."""

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        body = self.json_object()
        self.send_json(await self.dodo.gateway.set_enabled(who.username, name, body.get("enabled")))


class ToolCallHandler(DodoAPIHandler):
    """``POST /dodo/api/mcp/tools/call {name, arguments}``: call a tool as agents would,
    through the same governance gate (a refused call is a 403 or 429 saying why)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        body = self.json_object()
        name, arguments = body.get("name"), body.get("arguments", {})
        if not isinstance(name, str) or not name:
            raise ValidationFailed("Give the tool's 'name'.", fields={"name": "required string"})
        if not isinstance(arguments, dict):
            raise ValidationFailed(
                "'arguments' must be a JSON object.", fields={"arguments": "object required"}
            )
        context = CallContext(who.username, "try_it", session_key="try_it")
        result = await self.dodo.gateway.call_tool(who.username, name, arguments, None, context)
        self.send_json(wire_form(result))
