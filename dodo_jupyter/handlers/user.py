"""REST: the caller's identity and their gateway tokens."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import ValidationFailed
from .base import DodoAPIHandler

__all__ = ["MeHandler", "TokenHandler", "TokenListHandler"]


class MeHandler(DodoAPIHandler):
    """``GET /dodo/api/me`` → ``{username, mode, is_owner, is_admin}``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send_json((await self.identity()).to_json())


class TokenListHandler(DodoAPIHandler):
    """``GET/POST /dodo/api/user/mcp-tokens``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        who = (await self.identity()).require_owner()
        self.send_json({"tokens": await self.dodo.tokens.list(who.username)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        who = (await self.identity()).require_owner()
        body = self.json_object()
        unknown = sorted(set(body) - {"label", "expires_in_days"})
        if unknown:
            raise ValidationFailed(
                f"Unknown field(s) {', '.join(unknown)}: send 'label' and optionally "
                "'expires_in_days'.",
                fields={k: "unknown field" for k in unknown},
            )
        new = await self.dodo.tokens.create(
            who.username, body.get("label"), body.get("expires_in_days")
        )
        self.set_header("Cache-Control", "no-store")
        self.send_json({**new.info, "token": new.token}, status=201)


class TokenHandler(DodoAPIHandler):
    """``DELETE /dodo/api/user/mcp-tokens/{id}``."""

    @web.authenticated
    @authorized
    async def delete(self, token_id: str) -> None:
        who = (await self.identity()).require_owner()
        await self.dodo.tokens.delete(who.username, token_id)
        self.set_status(204)
        self.finish()
