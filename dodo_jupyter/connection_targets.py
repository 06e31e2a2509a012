"""Where a new connection goes: a catalog entry's server, or a URL that is allowed.

``start-auth`` names either a catalog entry or a URL. :func:`resolve_target` answers with
the entry (when there is one), the server's URL and the hosts its sign-in may reach: the
entry's host, its ``known_hosts`` and ``DodoApp.allowed_hosts``. A URL that is some enabled
entry's is that entry; any other URL must be on a host that ``DodoApp.allowed_hosts``
admits (one host rule, :mod:`dodo_jupyter.net.hosts`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .exceptions import Forbidden, ValidationFailed
from .net.hosts import rule_for_url, url_allowed
from .net.urls import check_server_url

if TYPE_CHECKING:
    from .catalog import CatalogService

__all__ = ["resolve_target"]


async def resolve_target(
    catalog: CatalogService,
    catalog_id: object,
    url: object,
    allowed_hosts: list[str],
    allow_insecure_loopback: bool,
) -> tuple[dict[str, Any] | None, str, list[str]]:
    """(catalog entry or None, server URL, hosts the flow may reach).

    Raises
    ------
    ValidationFailed
        neither a catalog id nor a URL, or a malformed one.
    NotFound
        no enabled catalog entry has that id.
    Forbidden
        the URL's host is neither an entry's nor admitted by ``allowed_hosts``.
    """
    if catalog_id is not None:
        if not isinstance(catalog_id, str):
            raise ValidationFailed(
                "'catalog_id' must be a string.", fields={"catalog_id": "must be a string"}
            )
        entry = await catalog.get_enabled(catalog_id)
        hosts = [rule_for_url(entry["url"]), *entry.get("known_hosts", []), *allowed_hosts]
        return entry, entry["url"], hosts
    if url is None:
        raise ValidationFailed("Give 'catalog_id' (or 'url').", fields={"catalog_id": "required"})
    checked = check_server_url(url, allow_insecure_loopback=allow_insecure_loopback)
    for entry in (await catalog.enabled()).entries:
        if entry["url"] == checked:
            return await resolve_target(
                catalog, entry["id"], None, allowed_hosts, allow_insecure_loopback
            )
    if not url_allowed(allowed_hosts, checked):
        raise Forbidden(
            f"The host {rule_for_url(checked)!r} is not approved: ask an administrator to add "
            "the server to the catalog or the host to DodoApp.allowed_hosts."
        )
    return None, checked, [*allowed_hosts]
