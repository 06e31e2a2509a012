"""Whether this server accepts a catalog entry, and if not, why: the admin API's
``not_accepted`` (per entry) and ``left_out`` (configured entries never stored).

An entry can be judged by rules other than this server's. In hub-catalog mode the hub
catalog service keeps the catalog, and its rules may be looser: it may allow plain-http
loopback URLs (``DodoHubApp.allow_insecure_loopback``) while the user servers do not. A
user server leaves such an entry out of its users' catalog (:mod:`.mirror`). In local
mode a stored entry may predate a change of this server's settings. And an entry whose
URL names an address the SSRF guard refuses (a loopback or private IP) passes every URL
rule yet cannot be connected to.

None of that may pass silently: :func:`not_accepted` says, for one entry, what this
server will not do with it and what to change, and the admin API sends it with every
entry (:class:`~.admin.CatalogAdmin`) so the editor can flag it. Entries of the
configuration that seeding skipped (:meth:`~.service.CatalogService.seed_sync`) never
reach the store; :func:`left_out` lists them with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import OutboundRefused, ValidationFailed
from ..net.addresses import parse_host_ip, refusal_reason
from ..net.hosts import canonical_host
from ..net.urls import is_loopback_host
from .entry import EntryInput, parse_entry

__all__ = ["ADMIN_MANAGED", "left_out", "not_accepted", "with_acceptance"]

#: The reason seeding gives for a configured entry an administrator took over: not a
#: problem (the administrator's version is the one in the catalog).
ADMIN_MANAGED = "managed by an administrator"

_SETTING_HINT = (
    "set DodoApp.allow_insecure_loopback=True on this server (development only), or give "
    "the entry a URL it can reach"
)


def not_accepted(
    entry: Mapping[str, Any], *, allow_insecure_loopback: bool, left_out_here: bool
) -> str | None:
    """Why this server will not use ``entry`` (a catalog entry as the admin API shows
    it), saying what to change; None when it will.

    Parameters
    ----------
    entry:
        The entry; bookkeeping fields (``managed_by``, ``created_at``…) are ignored.
    allow_insecure_loopback:
        This server's ``DodoApp.allow_insecure_loopback``.
    left_out_here:
        Whether an entry that fails this server's validation is left out of its users'
        catalog (hub-catalog mode) rather than shown and refused on connecting (local).
    """
    fields = {name: entry[name] for name in EntryInput.model_fields if name in entry}
    try:
        parse_entry(fields, allow_insecure_loopback=allow_insecure_loopback)
    except ValidationFailed as e:
        why = e.message.rstrip(".")
        if left_out_here:
            return f"This server leaves it out of its users' catalog. {why}."
        return f"Users of this server cannot connect to it. {why}."
    problem = _address_problem(str(entry.get("url", "")), allow_insecure_loopback)
    return None if problem is None else f"Users of this server cannot connect to it: {problem}."


def _address_problem(url: str, allow_insecure_loopback: bool) -> str | None:
    """What the SSRF guard will refuse about ``url``'s host, known without DNS: a
    literal address it refuses, or a loopback host while loopback is not allowed."""
    try:
        host = canonical_host(urlsplit(url).hostname or "")
    except (OutboundRefused, ValueError):
        return None  # parse_entry judged the URL already
    if is_loopback_host(host) and not allow_insecure_loopback:
        return f"{host} is this machine (loopback), which this server refuses; {_SETTING_HINT}"
    ip = parse_host_ip(host)
    why = None if ip is None else refusal_reason(ip, allow_loopback=allow_insecure_loopback)
    if why is None:
        return None
    return f"{host} is {why}, and dodo only connects to public addresses; give a public URL"


def with_acceptance(
    entries: Iterable[dict[str, Any]], *, allow_insecure_loopback: bool, left_out_here: bool
) -> list[dict[str, Any]]:
    """``entries``, each with its ``not_accepted`` (see :func:`not_accepted`)."""
    return [
        {
            **entry,
            "not_accepted": not_accepted(
                entry,
                allow_insecure_loopback=allow_insecure_loopback,
                left_out_here=left_out_here,
            ),
        }
        for entry in entries
    ]


def left_out(skipped: Mapping[str, str]) -> list[dict[str, str]]:
    """The configured entries seeding skipped (id → reason), as the admin API lists them:
    ``[{"id", "reason"}]``, without the ones an administrator took over."""
    return [
        {"id": entry_id, "reason": f"Not in the catalog: {reason.rstrip('.')}."}
        for entry_id, reason in sorted(skipped.items())
        if reason != ADMIN_MANAGED
    ]
