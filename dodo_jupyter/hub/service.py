"""The hub catalog service's state: its store, the catalog, the audit log, the tool-call
history its users' servers forward, who may call.

:class:`CatalogHub` is what the service's handlers use; it knows nothing of tornado, so
tests drive it directly. It opens the store on a thread (migrations, then reconciling
the catalog with the configuration, as a Jupyter server does in local mode); until that
has worked, requests get a 503 that says why and the next request after
:data:`RETRY_OPEN_AFTER_S` tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import DodoError, Unavailable
from .auth import HubCaller, TokenAuthority

if TYPE_CHECKING:
    from ..audit import AuditLogService
    from ..catalog import CatalogService, SeedReport
    from ..governance.history import CallHistory
    from ..store import Store

__all__ = ["RETRY_OPEN_AFTER_S", "CatalogHub", "CatalogHubSettings"]

log = logging.getLogger(__name__)

RETRY_OPEN_AFTER_S = 5.0


@dataclass
class CatalogHubSettings:
    """Plain values :class:`CatalogHub` needs; ``DodoHubApp`` fills them from its traits."""

    db_url: str
    catalog: list[dict[str, Any]] = field(default_factory=list)
    catalog_file: str = ""
    default_catalog: bool = True
    allow_insecure_loopback: bool = False
    catalog_cache_ttl: float = 5.0


class CatalogHub:
    """The store, catalog and audit log of the hub catalog service, and its authority.

    Parameters
    ----------
    settings:
        Database URL and catalog configuration.
    authority:
        Decides who a token belongs to and what they may do.
    """

    store: Store
    catalog: CatalogService
    audit: AuditLogService
    #: Every user's tool calls, as their servers forward them.
    history: CallHistory

    def __init__(self, settings: CatalogHubSettings, authority: TokenAuthority) -> None:
        self.settings = settings
        self.authority = authority
        self._opened = False
        self._opening: asyncio.Future[SeedReport] | None = None
        self._failed_at = 0.0
        self._lock = asyncio.Lock()

    def open_sync(self) -> SeedReport:
        """Open the store (migrations) and reconcile the catalog with the configuration
        (blocking)."""
        from ..audit import AuditLogService
        from ..catalog import CatalogService
        from ..catalog.config import configured_entries
        from ..governance.history import CallHistory
        from ..store import Store

        settings = self.settings
        if not hasattr(self, "store"):
            # No key file: the catalog holds no secrets, so the service keeps no vault.
            self.store = Store(settings.db_url, None)
            self.catalog = CatalogService(
                self.store,
                allow_insecure_loopback=settings.allow_insecure_loopback,
                cache_max_age=settings.catalog_cache_ttl,
            )
            self.audit = AuditLogService(self.store)
            self.history = CallHistory(self.store)
        self.store.open_sync()
        report = self.catalog.seed_sync(
            configured_entries(
                default_catalog=settings.default_catalog,
                catalog_file=settings.catalog_file,
                catalog=settings.catalog,
                owner="DodoHubApp",
            )
        )
        if report.added or report.updated or report.removed:
            log.info(
                "dodo hub catalog from configuration: %d added, %d updated, %d removed",
                len(report.added),
                len(report.updated),
                len(report.removed),
            )
        self._opened = True
        return report

    async def ready(self) -> None:
        """Wait until the store is open; :class:`Unavailable` while it cannot be."""
        if self._opened:
            return
        async with self._lock:
            if self._opened:
                return
            if self._failed_at and time.monotonic() - self._failed_at < RETRY_OPEN_AFTER_S:
                raise self._unavailable()
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self.open_sync)
            except Exception as e:
                self._failed_at = time.monotonic()
                log.error("dodo hub catalog: opening the database failed: %s", e, exc_info=e)
                raise self._unavailable() from None

    def _unavailable(self) -> DodoError:
        return Unavailable(
            "The dodo catalog service cannot open its database: check DodoHubApp.db_url and "
            "that the database is running (the service log has details); it retries on the "
            "next request."
        )

    async def caller(self, header: str | None, *, admin: bool = False) -> HubCaller:
        """The caller of a request (see :meth:`TokenAuthority.authorize`)."""
        return await self.authority.authorize(header, admin=admin)

    async def close(self) -> None:
        if hasattr(self, "store"):
            await asyncio.get_running_loop().run_in_executor(None, self.store.close)
