"""Who edits the catalog a server uses, and where the edit goes.

The REST admin endpoints (``dodo/api/admin/approved-mcps...``) call a
:class:`CatalogAdmin`; which one depends on where the catalog lives:

:class:`LocalCatalogAdmin`
    This server's own store (local mode, or hub mode without a catalog service). Any
    dodo administrator may edit it, including a hub admin who opened the owner's server.
:class:`HubCatalogAdmin`
    The hub catalog service (``DodoApp.hub_catalog_url``). The caller must be the
    server's owner (a visitor cannot make the server act with its owner's token) and a
    dodo administrator here; the request is then forwarded with the server's hub token
    and the service decides again, with the hub. Its answer is passed on; after a
    change the server's copy is refreshed at once.
"""

from __future__ import annotations

from typing import Any

from ..identity import Identity
from .hub_client import HubCatalogClient
from .mirror import HubCatalogMirror
from .service import CatalogService

__all__ = ["CatalogAdmin", "HubCatalogAdmin", "LocalCatalogAdmin"]

_ENTRIES = "approved-mcps"


class CatalogAdmin:
    """The administrator's operations on the catalog; see the module docstring."""

    def authorize(self, who: Identity) -> Identity:
        """Return ``who`` when they may administer the catalog here, else raise
        :class:`~dodo_jupyter.exceptions.Forbidden`."""
        raise NotImplementedError

    async def entries(self, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def get(self, entry_id: str) -> dict[str, Any]:
        raise NotImplementedError

    async def create(self, actor: str, data: object) -> dict[str, Any]:
        raise NotImplementedError

    async def import_document(self, actor: str, doc: object) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def update(self, actor: str, entry_id: str, changes: object) -> dict[str, Any]:
        raise NotImplementedError

    async def delete(self, actor: str, entry_id: str) -> None:
        raise NotImplementedError


class LocalCatalogAdmin(CatalogAdmin):
    """Edits this server's own catalog (:class:`CatalogService`)."""

    def __init__(self, catalog: CatalogService) -> None:
        self.catalog = catalog

    def authorize(self, who: Identity) -> Identity:
        return who.require_admin("administer the approved catalog")

    async def entries(self, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        return await self.catalog.all(include_deleted=include_deleted)

    async def get(self, entry_id: str) -> dict[str, Any]:
        return await self.catalog.get(entry_id)

    async def create(self, actor: str, data: object) -> dict[str, Any]:
        return await self.catalog.create(actor, data)

    async def import_document(self, actor: str, doc: object) -> list[dict[str, Any]]:
        return await self.catalog.import_document(actor, doc)

    async def update(self, actor: str, entry_id: str, changes: object) -> dict[str, Any]:
        return await self.catalog.update(actor, entry_id, changes)

    async def delete(self, actor: str, entry_id: str) -> None:
        await self.catalog.delete(actor, entry_id)


class HubCatalogAdmin(CatalogAdmin):
    """Forwards to the hub catalog service; the actor there is the server's owner (whose
    token is sent), which :meth:`authorize` made sure is the caller."""

    def __init__(self, client: HubCatalogClient, mirror: HubCatalogMirror) -> None:
        self.client = client
        self.mirror = mirror

    def authorize(self, who: Identity) -> Identity:
        return who.require_owner(
            "this server administers the hub's catalog with its owner's hub token, so "
            "administer it from your own server."
        ).require_admin("administer the hub's catalog")

    async def _changed(self) -> None:
        await self.mirror.refresh(force=True)

    async def entries(self, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        params = {"include_deleted": "true"} if include_deleted else None
        result = await self.client.forward("GET", _ENTRIES, params=params)
        return list(result["entries"])

    async def get(self, entry_id: str) -> dict[str, Any]:
        return dict(await self.client.forward("GET", f"{_ENTRIES}/{entry_id}"))

    async def create(self, actor: str, data: object) -> dict[str, Any]:
        result = dict(await self.client.forward("POST", _ENTRIES, body=data))
        await self._changed()
        return result

    async def import_document(self, actor: str, doc: object) -> list[dict[str, Any]]:
        result = await self.client.forward("POST", f"{_ENTRIES}/import", body=doc)
        await self._changed()
        return list(result["entries"])

    async def update(self, actor: str, entry_id: str, changes: object) -> dict[str, Any]:
        result = dict(await self.client.forward("PUT", f"{_ENTRIES}/{entry_id}", body=changes))
        await self._changed()
        return result

    async def delete(self, actor: str, entry_id: str) -> None:
        await self.client.forward("DELETE", f"{_ENTRIES}/{entry_id}")
        await self._changed()
