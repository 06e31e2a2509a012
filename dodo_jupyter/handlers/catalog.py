"""REST: the approved catalog, for everyone, and its admin editor.

The catalog answer carries where it comes from and whether it is current
(:mod:`dodo_jupyter.catalog.status`). Admin requests go to ``runtime.catalog_admin``:
this server's store, or in hub-catalog mode the hub catalog service
(:mod:`dodo_jupyter.catalog.admin`), which also decides who may send them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import ValidationFailed
from .base import DodoAPIHandler

if TYPE_CHECKING:
    from ..catalog.admin import CatalogAdmin
    from ..identity import Identity

__all__ = [
    "AdminAuditHandler",
    "AdminEntryHandler",
    "AdminEntryListHandler",
    "AdminImportHandler",
    "CatalogHandler",
]


class CatalogHandler(DodoAPIHandler):
    """``GET /dodo/api/mcp-catalog``: enabled, non-deleted entries, and
    ``catalog_source``/``catalog_stale``/``catalog_stale_reason``/``catalog_synced_at``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.identity()
        # Imported here: dodo_jupyter.catalog loads SQLAlchemy, which a server imports on
        # a thread after start (see tests/test_gateway_endpoint.py), not with the handlers.
        from ..catalog.status import render_catalog

        cached = await self.dodo.catalog.enabled()
        body, etag = render_catalog(cached.body, cached.etag, self.dodo.catalog_status())
        self.set_header("ETag", etag)
        if self.check_etag_header():  # tornado's If-None-Match rules: lists, W/, *
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    def compute_etag(self) -> None:
        # The catalog's ETag is computed once per catalog version, not per response.
        return None


class CatalogAdminHandler(DodoAPIHandler):
    """Base of the admin endpoints: the caller, checked by where the catalog lives."""

    async def catalog_admin(self) -> tuple[CatalogAdmin, Identity]:
        who = await self.identity()
        admin = self.dodo.catalog_admin
        return admin, admin.authorize(who)


class AdminEntryListHandler(CatalogAdminHandler):
    """``GET/POST /dodo/api/admin/approved-mcps``: each entry with ``not_accepted``, and
    the configured entries ``left_out`` of the catalog."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        admin, _ = await self.catalog_admin()
        include_deleted = self.get_query_argument("include_deleted", "false")
        if include_deleted not in ("true", "false"):
            raise ValidationFailed(
                f"'include_deleted' must be 'true' or 'false', not {include_deleted[:50]!r}.",
                fields={"include_deleted": "'true' or 'false'"},
            )
        entries = await admin.entries(include_deleted=include_deleted == "true")
        self.send_json({"entries": entries, "left_out": admin.left_out()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        admin, who = await self.catalog_admin()
        entry = await admin.create(who.username, self.json_object())
        self.set_header("Location", self.request.path.rstrip("/") + "/" + entry["id"])
        self.send_json(entry, status=201)


class AdminImportHandler(CatalogAdminHandler):
    """``POST /dodo/api/admin/approved-mcps/import``: server.json or entries, all or nothing."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        admin, who = await self.catalog_admin()
        entries = await admin.import_document(who.username, self.json_body())
        self.send_json({"entries": entries}, status=201)


class AdminEntryHandler(CatalogAdminHandler):
    """``GET/PUT/DELETE /dodo/api/admin/approved-mcps/{id}``: the entry's ``etag`` is its
    ``ETag``; a PUT or DELETE with ``If-Match`` is refused with 412 when it is stale."""

    def send_entry(self, entry: dict[str, Any]) -> None:
        if entry.get("etag"):
            self.set_header("ETag", entry["etag"])
        self.send_json(entry)

    @web.authenticated
    @authorized
    async def get(self, entry_id: str) -> None:
        admin, _ = await self.catalog_admin()
        self.send_entry(await admin.get(entry_id))

    @web.authenticated
    @authorized
    async def put(self, entry_id: str) -> None:
        admin, who = await self.catalog_admin()
        if_match = self.request.headers.get("If-Match")
        changes = self.json_object()
        self.send_entry(await admin.update(who.username, entry_id, changes, if_match=if_match))

    @web.authenticated
    @authorized
    async def delete(self, entry_id: str) -> None:
        admin, who = await self.catalog_admin()
        await admin.delete(who.username, entry_id, if_match=self.request.headers.get("If-Match"))
        self.set_status(204)
        self.finish()


class AdminAuditHandler(DodoAPIHandler):
    """``GET /dodo/api/admin/audit?limit=&before=``: the newest audit rows."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        (await self.identity()).require_admin("read the audit log")
        limit, before_id = self.page_arguments()
        self.send_json({"entries": await self.dodo.audit.recent(limit, before_id)})
