"""Where the catalog a server shows comes from, and whether it is current.

``GET dodo/api/mcp-catalog`` answers ``{"entries": [...]}`` plus these fields:

``catalog_source``
    ``"local"`` (this server's own store) or ``"hub"`` (a copy of the hub catalog
    service's catalog, hub-catalog mode).
``catalog_stale``
    true when the hub catalog service could not be asked the last time: the entries are
    the last good copy.
``catalog_stale_reason``
    why, in words for people (null when not stale).
``catalog_synced_at``
    when the service last confirmed the copy (ISO 8601, UTC; null in local mode or
    before the first copy).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = ["LOCAL_STATUS", "CatalogStatus", "render_catalog"]


@dataclass(frozen=True)
class CatalogStatus:
    """The catalog's source and freshness (see the module docstring)."""

    source: Literal["local", "hub"]
    stale: bool = False
    reason: str | None = None
    synced_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "catalog_source": self.source,
            "catalog_stale": self.stale,
            "catalog_stale_reason": self.reason,
            "catalog_synced_at": self.synced_at.isoformat() if self.synced_at else None,
        }


LOCAL_STATUS = CatalogStatus("local")


def render_catalog(
    entries_body: bytes, entries_etag: str, status: CatalogStatus
) -> tuple[bytes, str]:
    """The response body and ETag for a pre-serialised ``{"entries": [...]}``.

    The status fields are spliced into the cached body (no re-serialisation of the
    entries on the hot path). The ETag depends on the catalog's content
    (``entries_etag``, a hash of the entries) and on where it comes from and whether it
    is current (``catalog_source``, ``catalog_stale``, ``catalog_stale_reason``), not on
    ``catalog_synced_at``: that moves every time the hub confirms an unchanged copy, and
    an unchanged catalog must answer 304. Two answers under one ETag may therefore differ
    in ``catalog_synced_at`` alone, so the ETag is weak (``W/"..."``; ``If-None-Match``
    compares weakly).
    """
    meta = json.dumps(status.to_json(), separators=(",", ":")).encode()
    body = entries_body[:-1] + b"," + meta[1:]
    validated = json.dumps([status.source, status.stale, status.reason]).encode()
    digest = hashlib.sha256(entries_etag.encode() + validated).hexdigest()[:32]
    return body, f'W/"{digest}"'
