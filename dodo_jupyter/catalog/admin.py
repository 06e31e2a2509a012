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

Either way every entry an answer carries says whether this server accepts it
(``not_accepted``: None, or why not and what to change; :mod:`.acceptance`), and the
listing names the configured entries that never made it into the catalog
(:meth:`CatalogAdmin.left_out`).

Both take the ``If-Match`` of a PUT or DELETE (an entry's ``etag`` as the editor loaded
it) and refuse the edit with 412 when the entry changed since
(:mod:`~dodo_jupyter.catalog.conditional`); the hub's 412 comes back as it was.
"""

from __future__ import annotations

from typing import Any

from ..identity import Identity
from . import acceptance
from .hub_client import HubCatalogClient
from .mirror import HubCatalogMirror
from .service import CatalogService

__all__ = ["CatalogAdmin", "HubCatalogAdmin", "LocalCatalogAdmin"]

_ENTRIES = "approved-mcps"


class CatalogAdmin:
    """The administrator's operations on the catalog; see the module docstring.

    Parameters
    ----------
    allow_insecure_loopback:
        This server's ``DodoApp.allow_insecure_loopback``: each entry is judged by it.
    """

    #: Whether an entry this server's validation refuses is left out of its users'
    #: catalog (hub-catalog mode) rather than listed and refused on connecting.
    leaves_out_refused: bool = False

    def __init__(self, *, allow_insecure_loopback: bool) -> None:
        self.allow_insecure_loopback = allow_insecure_loopback

    def judged(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``entries``, each with ``not_accepted`` as this server judges it."""
        return acceptance.with_acceptance(
            entries,
            allow_insecure_loopback=self.allow_insecure_loopback,
            left_out_here=self.leaves_out_refused,
        )

    def left_out(self) -> list[dict[str, str]]:
        """Entries this server was configured with that are not in the catalog, each
        ``{"id", "reason"}``."""
        return []

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

    async def update(
        self, actor: str, entry_id: str, changes: object, *, if_match: str | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def delete(self, actor: str, entry_id: str, *, if_match: str | None = None) -> None:
        raise NotImplementedError


class LocalCatalogAdmin(CatalogAdmin):
    """Edits this server's own catalog (:class:`CatalogService`)."""

    def __init__(self, catalog: CatalogService) -> None:
        super().__init__(allow_insecure_loopback=catalog.allow_insecure_loopback)
        self.catalog = catalog

    def authorize(self, who: Identity) -> Identity:
        return who.require_admin("administer the approved catalog")

    def left_out(self) -> list[dict[str, str]]:
        return acceptance.left_out(self.catalog.skipped)

    async def entries(self, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        return self.judged(await self.catalog.all(include_deleted=include_deleted))

    async def get(self, entry_id: str) -> dict[str, Any]:
        return self.judged([await self.catalog.get(entry_id)])[0]

    async def create(self, actor: str, data: object) -> dict[str, Any]:
        return self.judged([await self.catalog.create(actor, data)])[0]

    async def import_document(self, actor: str, doc: object) -> list[dict[str, Any]]:
        return self.judged(await self.catalog.import_document(actor, doc))

    async def update(
        self, actor: str, entry_id: str, changes: object, *, if_match: str | None = None
    ) -> dict[str, Any]:
        return self.judged(
            [await self.catalog.update(actor, entry_id, changes, if_match=if_match)]
        )[0]

    async def delete(self, actor: str, entry_id: str, *, if_match: str | None = None) -> None:
        await self.catalog.delete(actor, entry_id, if_match=if_match)


class HubCatalogAdmin(CatalogAdmin):
    """Forwards to the hub catalog service; the actor there is the server's owner (whose
    token is sent), which :meth:`authorize` made sure is the caller."""

    leaves_out_refused = True

    def __init__(self, client: HubCatalogClient, mirror: HubCatalogMirror) -> None:
        super().__init__(allow_insecure_loopback=mirror.allow_insecure_loopback)
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
        return self.judged(list(result["entries"]))

    async def get(self, entry_id: str) -> dict[str, Any]:
        return self.judged([dict(await self.client.forward("GET", f"{_ENTRIES}/{entry_id}"))])[0]

    async def create(self, actor: str, data: object) -> dict[str, Any]:
        result = dict(await self.client.forward("POST", _ENTRIES, body=data))
        await self._changed()
        return self.judged([result])[0]

    async def import_document(self, actor: str, doc: object) -> list[dict[str, Any]]:
        result = await self.client.forward("POST", f"{_ENTRIES}/import", body=doc)
        await self._changed()
        return self.judged(list(result["entries"]))

    async def update(
        self, actor: str, entry_id: str, changes: object, *, if_match: str | None = None
    ) -> dict[str, Any]:
        path = f"{_ENTRIES}/{entry_id}"
        result = await self.client.forward("PUT", path, body=changes, headers=_if(if_match))
        await self._changed()
        return self.judged([result])[0]

    async def delete(self, actor: str, entry_id: str, *, if_match: str | None = None) -> None:
        await self.client.forward("DELETE", f"{_ENTRIES}/{entry_id}", headers=_if(if_match))
        await self._changed()


def _if(if_match: str | None) -> dict[str, str] | None:
    """The ``If-Match`` header to forward, if the request had one."""
    return None if if_match is None else {"If-Match": if_match}
