"""REST: the agents on this server and their configs (the sidebar's Agents section).

See :mod:`dodo_jupyter.agents_service`; the owner only (a visitor gets 403).
"""

from __future__ import annotations

from pathlib import Path

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..agents_service import AgentPlace, AgentsService, builtin_state, gateway_url_for
from .base import DodoAPIHandler

__all__ = ["AgentHandler", "AgentListHandler"]


class _AgentsBase(DodoAPIHandler):
    async def place(self) -> AgentPlace:
        """The owner's agent place; :class:`~dodo_jupyter.exceptions.Forbidden` for a
        visitor."""
        who = (await self.identity()).require_owner()
        root = self.settings.get("server_root_dir") or self.contents_manager.root_dir
        return AgentPlace(
            username=who.username,
            root=Path(root),
            home=Path.home(),
            url=gateway_url_for(self.dodo, self.serverapp),
        )

    def service(self) -> AgentsService:
        runtime, serverapp = self.dodo, self.serverapp
        return AgentsService(runtime.tokens, lambda: builtin_state(runtime, serverapp))


class AgentListHandler(_AgentsBase):
    """``GET /dodo/api/user/agents`` → ``{gateway_url, agents}``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        place = await self.place()
        agents = await self.service().list_all(place)
        self.send_json({"gateway_url": place.url, "agents": agents})


class AgentHandler(_AgentsBase):
    """``POST/DELETE /dodo/api/user/agents/{id}``: write or remove the agent's config."""

    @web.authenticated
    @authorized
    async def post(self, agent_id: str) -> None:
        place = await self.place()
        report = await self.service().write(agent_id, place)
        if "token" in report:
            self.set_header("Cache-Control", "no-store")
        self.send_json(report)

    @web.authenticated
    @authorized
    async def delete(self, agent_id: str) -> None:
        place = await self.place()
        self.send_json(await self.service().remove(agent_id, place))
