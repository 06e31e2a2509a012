"""REST: the approved catalog, for everyone, and its admin editor."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import BadRequest
from .base import DodoAPIHandler

__all__ = [
    "AdminAuditHandler",
    "AdminEntryHandler",
    "AdminEntryListHandler",
    "AdminImportHandler",
    "CatalogHandler",
]


class CatalogHandler(DodoAPIHandler):
    """``GET /dodo/api/mcp-catalog``: enabled, non-deleted entries."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.identity()
        cached = await self.dodo.catalog.enabled()
        self.set_header("ETag", cached.etag)
        if self.request.headers.get("If-None-Match") == cached.etag:
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", "application/json")
        self.finish(cached.body)

    def compute_etag(self) -> None:
        # The catalog's ETag is computed once per catalog version, not per response.
        return None


class AdminEntryListHandler(DodoAPIHandler):
    """``GET/POST /dodo/api/admin/approved-mcps``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        (await self.identity()).require_admin()
        include_deleted = self.get_query_argument("include_deleted", "false") == "true"
        entries = await self.dodo.catalog.all(include_deleted=include_deleted)
        self.send_json({"entries": entries})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        who = (await self.identity()).require_admin()
        entry = await self.dodo.catalog.create(who.username, self.json_object())
        self.set_header("Location", self.request.path.rstrip("/") + "/" + entry["id"])
        self.send_json(entry, status=201)


class AdminImportHandler(DodoAPIHandler):
    """``POST /dodo/api/admin/approved-mcps/import``: server.json or entries, all or nothing."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        who = (await self.identity()).require_admin()
        entries = await self.dodo.catalog.import_document(who.username, self.json_body())
        self.send_json({"entries": entries}, status=201)


class AdminEntryHandler(DodoAPIHandler):
    """``GET/PUT/DELETE /dodo/api/admin/approved-mcps/{id}``."""

    @web.authenticated
    @authorized
    async def get(self, entry_id: str) -> None:
        (await self.identity()).require_admin()
        self.send_json(await self.dodo.catalog.get(entry_id))

    @web.authenticated
    @authorized
    async def put(self, entry_id: str) -> None:
        who = (await self.identity()).require_admin()
        self.send_json(await self.dodo.catalog.update(who.username, entry_id, self.json_object()))

    @web.authenticated
    @authorized
    async def delete(self, entry_id: str) -> None:
        who = (await self.identity()).require_admin()
        await self.dodo.catalog.delete(who.username, entry_id)
        self.set_status(204)
        self.finish()


class AdminAuditHandler(DodoAPIHandler):
    """``GET /dodo/api/admin/audit?limit=&before=``: the newest audit rows."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        (await self.identity()).require_admin()
        try:
            limit = int(self.get_query_argument("limit", "100"))
            before = self.get_query_argument("before", None)
            before_id = int(before) if before is not None else None
        except ValueError:
            raise BadRequest("'limit' and 'before' must be whole numbers.") from None
        self.send_json({"entries": await self.dodo.audit.recent(limit, before_id)})
