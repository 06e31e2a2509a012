"""Import of MCP Registry ``server.json`` documents and of dodo's own entry files.

A ``server.json`` (https://registry.modelcontextprotocol.io, schema
``server.schema.json``) describes one server; each entry of its ``remotes`` array is a
remote endpoint and becomes one catalog entry. Headers the remote declares make it a
``static_headers`` entry; a remote without headers is imported as ``oauth`` (a server
that needs no authorization still connects: the OAuth flow only starts on a 401). A
registry says nothing of what agents may do, so an imported entry gets the cautious
``tool_policy`` :data:`~dodo_jupyter.governance.tool_policy.IMPORTED` (approval before
destructive calls, review of new tools), which an administrator may then change.

Accepted shapes: a ``server.json`` object, a registry API answer (``{"server": {...}}``
or ``{"servers": [...]}``), dodo's own entries (``{"entries": [...]}`` or a list).
"""

from __future__ import annotations

import re
from typing import Any

from ..exceptions import ValidationFailed
from ..governance.tool_policy import IMPORTED

__all__ = ["entries_from_document", "entries_from_server_json", "slug_for"]

_SLUG_STRIP = re.compile(r"[^a-z0-9-]+")
_TEMPLATE_VAR = re.compile(r"\{[^}]*\}")


def slug_for(name: str) -> str:
    """A catalog id from a registry name like ``io.github.acme/weather-mcp``."""
    tail = name.rsplit("/", 1)[-1].lower()
    slug = _SLUG_STRIP.sub("-", tail).strip("-")
    slug = re.sub(r"-{2,}", "-", slug)[:32].strip("-")
    return slug or "server"


def _text(value: object) -> str:
    """An optional free-text field of a server.json: anything but a string is left out
    (it is only shown to people; the document's author can fix it upstream)."""
    return value if isinstance(value, str) else ""


def _is_server_json(doc: dict[str, Any]) -> bool:
    return "remotes" in doc or ("name" in doc and "packages" in doc)


def entries_from_server_json(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Catalog entries (as dicts, not yet validated) for each remote of a server.json."""
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationFailed("server.json has no 'name'.", fields={"name": "required"})
    remotes = doc.get("remotes")
    if not isinstance(remotes, list) or not remotes:
        raise ValidationFailed(
            f"server.json {name!r} has no 'remotes': only remote (HTTP) MCP servers can be "
            "approved; packages that run locally are not supported.",
            fields={"remotes": "required"},
        )
    base_id = slug_for(name)
    title = doc.get("title")
    title = title if isinstance(title, str) else None
    description = doc.get("description")
    description = description if isinstance(description, str) else ""
    entries = []
    for index, remote in enumerate(remotes):
        if not isinstance(remote, dict):
            raise ValidationFailed(f"remotes[{index}] of {name!r} must be an object.")
        url = remote.get("url")
        if isinstance(url, str) and _TEMPLATE_VAR.search(url):
            raise ValidationFailed(
                f"remotes[{index}] of {name!r} has a templated URL {url!r}: fill in its "
                "variables and add the entry with the admin API instead.",
                fields={f"remotes.{index}.url": "templated URLs are not supported"},
            )
        transport = remote.get("type", "streamable-http")
        headers = [
            {
                "name": h.get("name", ""),
                "description": _text(h.get("description"))[:300],
                "is_secret": bool(h.get("isSecret", True)),
            }
            for h in remote.get("headers") or []
            if isinstance(h, dict)
        ]
        entry_id = base_id
        if len(remotes) > 1:
            suffix = "-sse" if transport == "sse" else f"-{index + 1}"
            entry_id = f"{base_id[: 32 - len(suffix)]}{suffix}"
        entry: dict[str, Any] = {
            "id": entry_id,
            "name": name,
            "display_name": (title or name.rsplit("/", 1)[-1])[:100],
            "description": description[:100],
            "url": url,
            "transport": transport,
            "auth_type": "static_headers" if headers else "oauth",
            # A registry document says nothing of policy: the safe default, never wider.
            "tool_policy": IMPORTED.to_json(),
        }
        if headers:
            entry["headers"] = headers
        if isinstance(doc.get("websiteUrl"), str):
            entry["setup_guide"] = f"See {doc['websiteUrl']}"
        entries.append(entry)
    return entries


def entries_from_document(doc: object) -> list[dict[str, Any]]:
    """Catalog entries from any accepted import shape (see the module docstring)."""
    if isinstance(doc, list):
        if doc and _all_server_docs(doc):
            return [e for item in doc for e in entries_from_document(item)]
        return _as_entries(doc)
    if not isinstance(doc, dict):
        raise ValidationFailed("An import must be a JSON object or a list.")
    if "entries" in doc:
        return _as_entries(doc["entries"])
    if "servers" in doc and isinstance(doc["servers"], list):
        return [e for item in doc["servers"] for e in entries_from_document(item)]
    if "server" in doc and isinstance(doc["server"], dict):
        return entries_from_server_json(doc["server"])
    if _is_server_json(doc):
        return entries_from_server_json(doc)
    if "id" in doc and "url" in doc:
        return [doc]
    raise ValidationFailed(
        "Unrecognised import: give an MCP Registry server.json (with 'remotes'), "
        "{'servers': [...]}, or dodo entries ({'entries': [...]})."
    )


def _all_server_docs(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and ("server" in i or _is_server_json(i)) for i in items)


def _as_entries(items: object) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValidationFailed("'entries' must be a list of objects.")
    return list(items)
