"""Resource URIs at the gateway: ``dodo://<server>/<original URI>``.

Two connected servers may both offer ``file:///README.md``; an agent reading through the
gateway must get the right one, and must be able to read again a URI it was given. So
every resource URI (and resource template) an upstream lists is shown to agents as

    dodo://<server alias>/<the server's own URI, unchanged>

where the alias is the server's catalog id (``srv-<6 hex>`` for a server added by URL;
the same alias that prefixes its tools). The mapping is reversible without a table:
:func:`split_uri` takes everything after the first ``/`` behind the alias as the
original URI, byte for byte, so a URI round-trips whatever it contains. The original
URI and the server also stay visible in the item's ``_meta`` under :data:`ORIGIN_KEY`.
A template's variables sit in the original part, so a template maps the same way and
an expanded template is read like any other URI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ORIGIN_KEY", "PREFIX", "gateway_uri", "origin_meta", "split_uri"]

PREFIX = "dodo://"
#: ``_meta`` key of a listed item: ``{"server": alias, "uri": original}``.
ORIGIN_KEY = "io.github.dodo-jupyter/origin"


def gateway_uri(alias: str, uri: str) -> str:
    """The gateway's URI for the server ``alias``'s resource (or template) ``uri``."""
    return f"{PREFIX}{alias}/{uri}"


def split_uri(uri: str) -> tuple[str, str] | None:
    """``(alias, original URI)`` of a gateway URI; None when ``uri`` is not one."""
    if not uri.startswith(PREFIX):
        return None
    alias, slash, original = uri[len(PREFIX) :].partition("/")
    if not alias or not slash or not original:
        return None
    return alias, original


def origin_meta(meta: Any, alias: str, uri: str, key: str = "uri") -> dict[str, Any]:
    """``meta`` (an item's ``_meta``, if any) with the item's origin added."""
    merged = dict(meta) if isinstance(meta, dict) else {}
    merged[ORIGIN_KEY] = {"server": alias, key: uri}
    return merged
