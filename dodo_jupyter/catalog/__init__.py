"""The approved catalog of MCP servers."""

from .entry import EntryInput, HeaderSpec, OAuthPolicy, parse_entry
from .registry import entries_from_document, entries_from_server_json
from .service import CatalogService, SeedReport

__all__ = [
    "CatalogService",
    "EntryInput",
    "HeaderSpec",
    "OAuthPolicy",
    "SeedReport",
    "entries_from_document",
    "entries_from_server_json",
    "parse_entry",
]
