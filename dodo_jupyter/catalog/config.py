"""The catalog a configuration asks for: the default catalog, a catalog file, a list.

A Jupyter server in local mode (``DodoApp``) and the hub catalog service
(``DodoHubApp``) read the same three settings and reconcile their store with the result
(:meth:`~dodo_jupyter.catalog.service.CatalogService.seed_sync`).
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

from ..exceptions import DodoError
from .registry import entries_from_document

__all__ = ["configured_entries", "load_default_catalog"]

log = logging.getLogger(__name__)


def load_default_catalog() -> list[dict[str, Any]]:
    """The catalog shipped with dodo (``catalog/default_catalog.json``)."""
    text = resources.files("dodo_jupyter.catalog").joinpath("default_catalog.json").read_text()
    return entries_from_document(json.loads(text))


def configured_entries(
    *,
    default_catalog: bool,
    catalog_file: str,
    catalog: list[dict[str, Any]],
    owner: str = "DodoApp",
) -> list[dict[str, Any]]:
    """Entries the configuration manages, later sources winning on equal ids: the default
    catalog (when ``default_catalog``), then ``catalog_file``, then ``catalog``.

    An unreadable or invalid ``catalog_file`` is logged (naming ``<owner>.catalog_file``)
    and left out; the other sources still apply.
    """
    sources: list[list[dict[str, Any]]] = []
    if default_catalog:
        sources.append(load_default_catalog())
    if catalog_file:
        path = Path(catalog_file)
        try:
            sources.append(entries_from_document(json.loads(path.read_text())))
        except (OSError, ValueError, DodoError) as e:
            log.error("%s.catalog_file %r cannot be used: %s", owner, str(path), e)
    sources.append(list(catalog))
    merged: dict[str, dict[str, Any]] = {}
    for source in sources:
        for item in source:
            merged[str(item.get("id"))] = item
    return list(merged.values())
