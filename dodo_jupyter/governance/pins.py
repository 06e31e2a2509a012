"""Pinned tool definitions: a server may not change what a tool says it does behind the
user's back.

When a connection first lists its tools, dodo records a digest of each tool's definition
(name, title, description, input and output schema, annotations). From then on:

* a tool whose definition changed is **quarantined** (not listed to agents, not
  callable) until its owner accepts the change, seeing what changed;
* a tool that appears later is accepted at once, unless the server's policy says
  ``review_new_tools``: then it waits for acceptance too;
* a tool that disappears loses its pin (no review: removing can smuggle in nothing).

:func:`review` is the decision, pure; :class:`PinBook` keeps the pins of each connection
in memory (read once from ``tool_pins``) and writes what changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import mcp_types as types
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .. import audit
from ..exceptions import NotFound
from ..store import Store
from ..store.models import ToolPin, utcnow

__all__ = ["LISTED", "Pin", "PinBook", "Review", "definition_of", "digest_of", "review"]

#: The pin row that says a connection listed its tools once (a name no tool can have).
LISTED = ""
Quarantine = Literal["changed", "new"]
_DEFINITION_FIELDS = (
    "name",
    "title",
    "description",
    "inputSchema",
    "outputSchema",
    "annotations",
)


def definition_of(tool: types.Tool) -> dict[str, Any]:
    """The parts of a tool that are pinned, as the server sent them."""
    dumped = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {k: dumped[k] for k in _DEFINITION_FIELDS if k in dumped}


def digest_of(definition: Mapping[str, Any]) -> str:
    """A stable digest of a definition (canonical JSON, SHA-256)."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Pin:
    """One tool's pin: the accepted definition and, when the server now says something
    else, the definition waiting for review. A tool that appeared and waits has no
    accepted definition (``digest`` empty)."""

    digest: str
    definition: dict[str, Any] | None
    pending_digest: str | None = None
    pending: dict[str, Any] | None = None

    @property
    def waiting(self) -> Quarantine | None:
        if self.pending_digest is None:
            return None
        return "changed" if self.digest else "new"


@dataclass
class Review:
    """What a listing showed: the quarantined tools, and the pins to write (None: delete)."""

    quarantined: dict[str, Quarantine] = field(default_factory=dict)
    writes: dict[str, Pin | None] = field(default_factory=dict)


def review(pins: Mapping[str, Pin], tools: Iterable[types.Tool], *, review_new: bool) -> Review:
    """Compare a listing with a connection's pins (see the module docstring)."""
    result = Review()
    first = LISTED not in pins
    if first:
        result.writes[LISTED] = Pin(LISTED, None)
    seen = {LISTED}
    for tool in tools:
        seen.add(tool.name)
        definition = definition_of(tool)
        digest = digest_of(definition)
        pin = pins.get(tool.name)
        if pin is None:
            if first or not review_new:
                result.writes[tool.name] = Pin(digest, definition)
            else:
                result.writes[tool.name] = Pin("", None, digest, definition)
                result.quarantined[tool.name] = "new"
        elif digest == pin.digest:
            if pin.pending_digest is not None:  # changed back: nothing left to review
                result.writes[tool.name] = Pin(pin.digest, pin.definition)
        else:
            if pin.pending_digest != digest:
                result.writes[tool.name] = Pin(pin.digest, pin.definition, digest, definition)
            result.quarantined[tool.name] = "changed" if pin.digest else "new"
    for name in pins:
        if name not in seen:
            result.writes[name] = None
    return result


class PinBook:
    """The pins of every connection: read once per connection, kept in memory."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pins: dict[str, dict[str, Pin]] = {}
        #: One review at a time per connection (concurrent first listings would both
        #: record the first pins).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, connection_id: str) -> asyncio.Lock:
        lock = self._locks.get(connection_id)
        if lock is None:
            lock = self._locks[connection_id] = asyncio.Lock()
        return lock

    async def _pins_of(self, connection_id: str) -> dict[str, Pin]:
        pins = self._pins.get(connection_id)
        if pins is None:
            pins = self._pins[connection_id] = await self._load(connection_id)
        return pins

    async def check(
        self, connection_id: str, tools: list[types.Tool], *, review_new: bool
    ) -> dict[str, Quarantine]:
        """The quarantined tools of a listing (recording new and changed pins)."""
        async with self._lock(connection_id):
            pins = await self._pins_of(connection_id)
            result = review(pins, tools, review_new=review_new)
            if result.writes:
                await self._write(connection_id, result.writes)
                for name, pin in result.writes.items():
                    if pin is None:
                        pins.pop(name, None)
                    else:
                        pins[name] = pin
            return result.quarantined

    def waiting(self, connection_id: str) -> dict[str, Pin]:
        """The pins of ``connection_id`` that wait for review (from memory)."""
        pins = self._pins.get(connection_id, {})
        return {name: pin for name, pin in pins.items() if pin.waiting is not None}

    async def accept(self, connection_id: str, name: str, digest: str, by: str) -> None:
        """Accept the reviewed definition ``digest`` of a waiting tool.

        Raises
        ------
        NotFound
            the tool waits for no review, or for another definition than ``digest``
            (the server changed it again: review the new one).
        """
        async with self._lock(connection_id):
            pins = await self._pins_of(connection_id)
            pin = pins.get(name)
            if pin is None or pin.pending_digest is None or pin.pending_digest != digest:
                raise NotFound(
                    f"The tool {name!r} has no change waiting with that digest; reload the "
                    "list to review its current definition."
                )
            accepted = Pin(digest, pin.pending)
            await self._write(connection_id, {name: accepted}, accepted_by=by)
            pins[name] = accepted

    def forget(self, connection_id: str) -> None:
        """Drop a connection's pins from memory (its rows go with the connection)."""
        self._pins.pop(connection_id, None)

    def clear(self) -> None:
        self._pins.clear()

    async def _load(self, connection_id: str) -> dict[str, Pin]:
        def query(session: Session) -> dict[str, Pin]:
            rows = session.scalars(select(ToolPin).where(ToolPin.connection_id == connection_id))
            return {
                row.tool_name: Pin(row.digest, row.definition, row.pending_digest, row.pending)
                for row in rows
            }

        return await self._store.db.read(query)

    async def _write(
        self, connection_id: str, writes: Mapping[str, Pin | None], accepted_by: str = ""
    ) -> None:
        def save(session: Session) -> None:
            for name, pin in writes.items():
                if pin is None:
                    session.execute(
                        delete(ToolPin).where(
                            ToolPin.connection_id == connection_id, ToolPin.tool_name == name
                        )
                    )
                    continue
                row = session.get(ToolPin, (connection_id, name))
                if row is None:
                    row = ToolPin(connection_id=connection_id, tool_name=name)
                    session.add(row)
                row.digest = pin.digest
                row.definition = pin.definition
                row.pending_digest = pin.pending_digest
                row.pending = pin.pending
                row.updated_at = utcnow()
                if accepted_by:
                    row.accepted_by = accepted_by
                    row.accepted_at = row.updated_at
                    audit.record(
                        session,
                        accepted_by,
                        "tool.accept",
                        connection_id,
                        tool=name,
                        digest=pin.digest,
                    )

        await self._store.db.write(save)
