"""Conditional catalog edits: an entry's revision as its ETag, and ``If-Match``.

Every write of an entry bumps its ``revision`` (the model's version counter: the
UPDATE says ``WHERE id = ? AND revision = ?``), so of two writers that read the same
revision only one can write, whatever process each runs in. The editing transaction
also locks the row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has one writer at a
time), so the second writer reads the first one's result before it decides.

Administrators see the revision as ``etag`` on every entry and as the ``ETag`` header of
``GET .../approved-mcps/{id}``. A PUT or DELETE that sends it back in ``If-Match`` is
applied only when the entry is still at that revision; otherwise it is refused with 412
and who changed the entry, and when (:func:`check_if_match`). Without ``If-Match`` an
edit applies to the entry as it is at that moment: the last writer wins (a PUT changes
only the fields it names, so it keeps other writers' changes to other fields).

``If-Match`` follows RFC 9110 §13.1.1: ``*`` (any current entry) or a list of entity
tags, compared strongly (a weak ``W/"..."`` tag never matches).
"""

from __future__ import annotations

import re

from ..exceptions import PreconditionFailed
from ..store.models import ApprovedMCP

__all__ = ["check_if_match", "entry_etag"]

#: An entity tag or ``*`` in an ``If-Match`` list (tornado's ``check_etag_header`` rule).
_TAGS = re.compile(r'\*|(?:W/)?"[^"]*"')


def entry_etag(revision: int) -> str:
    """The strong ETag of an entry at ``revision``: ``"7"``."""
    return f'"{revision}"'


def check_if_match(if_match: str | None, row: ApprovedMCP) -> None:
    """Let the edit of ``row`` go ahead when ``if_match`` (the request's ``If-Match``,
    None when absent) names its current revision.

    A deleted row still counts as current for its own ETag (the caller answers 404 for a
    deleted entry); ``*`` matches live rows only.

    Raises
    ------
    PreconditionFailed
        saying who changed (or deleted) the entry since, and when; or that the header
        names no ETag this API sends.
    """
    if if_match is None:
        return
    tags = _TAGS.findall(if_match)
    current = entry_etag(row.revision)
    if current in tags or ("*" in tags and row.deleted_at is None):
        return
    if not any(tag == "*" or tag.startswith('"') for tag in tags):
        raise PreconditionFailed(
            f"If-Match {if_match[:100]!r} names no ETag of catalog entry {row.id!r}: send "
            f"the 'etag' of the entry as you loaded it (it is {current} now), or no "
            "If-Match to change the entry as it is."
        )
    what = "deleted" if row.deleted_at is not None else "changed"
    when = f"{row.updated_at:%Y-%m-%d %H:%M:%S} UTC"
    raise PreconditionFailed(
        f"Catalog entry {row.id!r} was {what} by {row.updated_by or 'someone'} at {when} "
        "since you loaded it: reload it and apply your change again."
    )
