"""Which tool policy applies to a connection's tools: a catalog server's is the
administrator's (its catalog entry's ``tool_policy``), another server's its user's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..governance.tool_policy import ToolPolicy, policy_from

if TYPE_CHECKING:
    from ..catalog import CatalogService
    from ..store.models import MCPConnection

__all__ = ["CatalogPolicies"]


class CatalogPolicies:
    """The tool policy of each enabled catalog entry, by id, from the catalog's in-memory
    copy (read again only when that expired)."""

    def __init__(self, catalog: CatalogService) -> None:
        self._catalog = catalog
        self._map: dict[str, ToolPolicy] = {}
        self._source: object = None

    async def current(self) -> dict[str, ToolPolicy]:
        cached = self._catalog.cache.get() or await self._catalog.enabled()
        if self._source is not cached:
            self._map = {
                entry["id"]: policy_from(entry.get("tool_policy")) for entry in cached.entries
            }
            self._source = cached
        return self._map

    async def of_entry(self, catalog_id: str) -> ToolPolicy:
        """The policy of catalog entry ``catalog_id`` as it is now."""
        return (await self.current()).get(catalog_id) or policy_from(None)

    @staticmethod
    def of(row: MCPConnection, policies: dict[str, ToolPolicy]) -> ToolPolicy:
        """The policy of ``row``'s tools, given :meth:`current`."""
        if row.catalog_id:
            return policies.get(row.catalog_id) or policy_from(None)
        return policy_from(row.tool_policy)
