"""Resumable event streams for the gateway (SEP-1699): a bounded in-memory event store.

**How a stream is resumed** (MCP 2025-11-25, "Resumability and redelivery"). When a
2025-11-25 client POSTs a request and the answer is an event stream, the SDK first sends a
*priming event*: an SSE event with an ``id``, empty ``data`` and ``retry: <ms>`` (how long
to wait before reconnecting). Every message of that request follows (progress
notifications, then the result), each with its own ``id``. If the connection breaks before
the result, the call goes on in the session and its messages are stored; the client sends
``GET`` with its ``Mcp-Session-Id`` and ``Last-Event-ID: <the last id it saw>``, and the
server replays the stored messages of that same stream after that id, then forwards the
rest as they come. 2026-07-28 requests have no session, so nothing of theirs is stored.

**Who does what.** The SDK's ``StreamableHTTPServerTransport`` does the HTTP part and asks
an :class:`~mcp.server.streamable_http.EventStore` to keep each message
(``store_event``, which returns the event id) and to replay (``replay_events_after``).
Its stream ids are the request ids (``"1"``, ``"2"``, …) and ``"_GET_stream"``: the same
in every session, so one store shared by all sessions (the SDK's ``event_store=``) would
mix sessions up and replay one client's messages to another. Here every session has its
own view (:class:`SessionEvents`) of one :class:`BoundedEventStore`: the session manager
(:mod:`.session_manager`) binds the view when the SDK admits a session and drops the
session's events when the SDK discards it (``DELETE``, idle timeout). A
``Last-Event-ID`` is looked up only among the caller's own session's events. A message
of a stream being resumed that comes while the SDK turns from the replay to the live
stream waits for the live stream (:class:`SessionEvents`), instead of being kept but
sent to no one.

**Limits** (:class:`BoundedEventStore`), applied whenever an event is stored:

* at most ``events_per_session`` events and ``bytes_per_session`` bytes per session, its
  oldest dropped first;
* at most ``max_bytes`` for all sessions together, the oldest of all dropped first;
* an event older than ``max_age`` seconds is dropped (by a timer on the event loop, and
  before any store or replay).

An event's size is its JSON, its stream id and :data:`EVENT_OVERHEAD`, so the byte limits
also bound how many events (and sessions) are kept, whatever clients do. Dropping always
takes a session's oldest events, so what is kept of a session is an unbroken run up to
its newest event and a replay never skips an event silently; an event larger than
``bytes_per_session`` is not kept, and its session's older events are dropped with it.

**An unknown id.** A ``Last-Event-ID`` that names no kept event of the session (made up,
another session's, or dropped by the limits) replays nothing: ``replay_events_after``
returns None, as the SDK's interface asks, and the SDK answers an event stream that ends
at once. So does a replay whose next events were dropped while it ran. The client has
lost that call's remaining messages; it can call again.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mcp.server.streamable_http import (
    EventCallback,
    EventId,
    EventMessage,
    EventStore,
    StreamId,
)
from mcp_types import JSONRPCMessage, jsonrpc_message_adapter

if TYPE_CHECKING:
    from .resume_limits import ResumeLimits

__all__ = [
    "EVENT_OVERHEAD",
    "HANDOFF_SECONDS",
    "BoundedEventStore",
    "SessionEvents",
]

log = logging.getLogger("dodo_jupyter.gateway")

#: Bytes counted for each kept event besides its JSON and stream id: its record and the
#: slots that index it (about 330 measured on CPython 3.11). A priming event costs this.
EVENT_OVERHEAD = 400

#: Longest a message of a stream just replayed waits for the SDK to send it live, and how
#: often it looks (:class:`SessionEvents`); the SDK takes a stream over within a send.
HANDOFF_SECONDS = 0.5
HANDOFF_POLL_SECONDS = 0.001

#: An event id this store hands out: a decimal number (never reused while the server runs).
_EVENT_ID = re.compile(r"[0-9]{1,19}")


@dataclass(slots=True)
class _Event:
    number: int
    session: str
    stream: StreamId
    #: The message's JSON; empty for a priming event.
    data: bytes
    size: int
    stored_at: float


@dataclass(slots=True)
class _Session:
    """A session's kept events, oldest first, and what they weigh."""

    events: deque[_Event] = field(default_factory=deque)
    bytes: int = 0
    #: The number of the newest event dropped: every later event of the session is kept.
    dropped_through: int = 0


def _number(event: _Event) -> int:
    return event.number


def _json(message: JSONRPCMessage | None) -> bytes | None:
    """A message's JSON as the SDK sends it (empty for a priming event); None if it cannot
    be written (an exception would end the SDK's message loop of the session)."""
    if message is None:
        return b""
    try:
        return message.model_dump_json(by_alias=True, exclude_unset=True).encode()
    except Exception as e:
        log.warning("dodo gateway: an event could not be kept for resuming: %s", e)
        return None


class BoundedEventStore:
    """Every session's recent events, within the limits the module docstring describes.

    Use :meth:`for_session` to get the SDK's ``EventStore`` for one session. Not
    thread-safe: the gateway's event loop is its only user. Storing never waits (the
    SDK relies on a stored event preceding anything stored after it).

    Parameters
    ----------
    events_per_session:
        Most events kept per session (at least 1).
    bytes_per_session:
        Most bytes of events kept per session (at least 1; at most ``max_bytes`` is used).
    max_bytes:
        Most bytes of events kept for all sessions together (at least 1).
    max_age:
        Seconds an event is kept (more than 0).
    clock:
        Monotonic seconds (``time.monotonic``; tests pass their own).

    Raises
    ------
    ValueError
        A limit out of range; the message names its ``DodoApp`` setting.
    """

    def __init__(
        self,
        *,
        events_per_session: int,
        bytes_per_session: int,
        max_bytes: int,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for setting, value in (
            ("resume_events_per_session", events_per_session),
            ("resume_bytes_per_session", bytes_per_session),
            ("resume_max_bytes", max_bytes),
            ("resume_event_max_age", max_age),
        ):
            if not value > 0:
                raise ValueError(f"DodoApp.{setting} must be more than 0 here, not {value!r}.")
        self.events_per_session = events_per_session
        self.bytes_per_session = min(bytes_per_session, max_bytes)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._clock = clock
        #: Every kept event by number, oldest first (numbers grow with time).
        self._events: OrderedDict[int, _Event] = OrderedDict()
        self._sessions: dict[str, _Session] = {}
        self._bytes = 0
        self._last_number = 0
        self._expiry: asyncio.TimerHandle | None = None

    @classmethod
    def from_limits(cls, limits: ResumeLimits) -> BoundedEventStore:
        """The store for the ``DodoApp.resume_*`` settings."""
        return cls(
            events_per_session=limits.events_per_session,
            bytes_per_session=limits.bytes_per_session,
            max_bytes=limits.max_bytes,
            max_age=limits.max_age,
        )

    def for_session(self, session_id: str, live: Container[object] | None = None) -> SessionEvents:
        """The SDK ``EventStore`` of one session (its transport's ``event_store``);
        ``live``: the streams the transport sends live (see :class:`SessionEvents`)."""
        return SessionEvents(self, session_id, live)

    @property
    def events_kept(self) -> int:
        return len(self._events)

    @property
    def bytes_kept(self) -> int:
        return self._bytes

    @property
    def sessions_kept(self) -> int:
        """Sessions with at least one kept event."""
        return len(self._sessions)

    def forget(self, session_id: str) -> None:
        """Drop every event of a session that ended."""
        kept = self._sessions.get(session_id)
        while kept is not None and self._sessions.get(session_id) is kept:
            self._drop_first(session_id, kept)

    # -- the SDK's EventStore, per session ----------------------------------------------

    def store(
        self, session_id: str, stream_id: StreamId, message: JSONRPCMessage | None
    ) -> EventId:
        """Keep one event of a session's stream (``message`` None: a priming event) and
        return its id; drops what the limits say must go. Never raises for a message."""
        now = self._clock()
        self._expire(now)
        self._last_number += 1
        number = self._last_number
        data = _json(message)
        size = EVENT_OVERHEAD + len(stream_id) + len(data or b"")
        kept = self._sessions.get(session_id)
        if data is None or size > self.bytes_per_session:
            # Not kept: neither may anything before it be replayed (that would skip it).
            log.debug(
                "dodo gateway: event %d (%d bytes) is not kept for resuming "
                "(DodoApp.resume_bytes_per_session is %d)",
                number,
                size,
                self.bytes_per_session,
            )
            if kept is not None:
                self.forget(session_id)
            return str(number)
        if kept is None:
            kept = self._sessions[session_id] = _Session()
        event = _Event(number, session_id, stream_id, data, size, now)
        kept.events.append(event)
        kept.bytes += size
        self._events[number] = event
        self._bytes += size
        while len(kept.events) > self.events_per_session or kept.bytes > self.bytes_per_session:
            self._drop_first(session_id, kept)
        while self._bytes > self.max_bytes:
            oldest = next(iter(self._events.values()))
            self._drop_first(oldest.session, self._sessions[oldest.session])
        self._schedule_expiry()
        return str(number)

    async def replay(
        self, session_id: str, last_event_id: EventId, send: EventCallback
    ) -> StreamId | None:
        """Send the kept messages of the stream ``last_event_id`` belongs to that came after
        it (priming events left out), including those stored while this runs; return
        that stream's id, or None when the id names no kept event of this session or
        the events after it were dropped meanwhile."""
        self._expire(self._clock())
        last = self._event(session_id, last_event_id)
        kept = self._sessions.get(session_id)
        if last is None or kept is None:
            log.debug(
                "dodo gateway: Last-Event-ID %r names no kept event of this session",
                last_event_id[:40],
            )
            return None
        stream = last.stream
        while True:
            if self._sessions.get(session_id) is not kept or kept.dropped_through > last.number:
                log.debug("dodo gateway: events of stream %r were dropped during a replay", stream)
                return None
            index = bisect.bisect_right(kept.events, last.number, key=_number)
            while index < len(kept.events):
                event = kept.events[index]
                if event.stream == stream and event.data:
                    break
                index += 1
            else:
                # The SDK takes the stream over after this returns and after it sent the
                # resumed stream's priming event; SessionEvents holds what comes between.
                return stream
            message = jsonrpc_message_adapter.validate_json(event.data, by_name=False)
            await send(EventMessage(message, str(event.number)))
            last = event

    # -- bookkeeping --------------------------------------------------------------------

    def _event(self, session_id: str, event_id: str) -> _Event | None:
        if not _EVENT_ID.fullmatch(event_id):
            return None
        event = self._events.get(int(event_id))
        return event if event is not None and event.session == session_id else None

    def _expire(self, now: float) -> None:
        limit = now - self.max_age
        while self._events:
            oldest = next(iter(self._events.values()))
            if oldest.stored_at > limit:
                return
            self._drop_first(oldest.session, self._sessions[oldest.session])

    def _schedule_expiry(self) -> None:
        """Drop the oldest event when it comes of age, even if nothing else happens."""
        if self._expiry is not None or not self._events:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop: the next store expires
            return
        oldest = next(iter(self._events.values()))
        delay = max(0.0, oldest.stored_at + self.max_age - self._clock())
        self._expiry = loop.call_later(delay, self._on_expiry)

    def _on_expiry(self) -> None:
        self._expiry = None
        self._expire(self._clock())
        self._schedule_expiry()

    def _drop_first(self, session_id: str, kept: _Session) -> None:
        """Drop a session's oldest event (and the session once it has none)."""
        event = kept.events.popleft()
        del self._events[event.number]
        kept.bytes -= event.size
        kept.dropped_through = event.number
        self._bytes -= event.size
        if not kept.events:
            del self._sessions[session_id]


class SessionEvents(EventStore):
    """The SDK's ``EventStore`` for one session: a view of a :class:`BoundedEventStore`.

    Given ``live``, the streams its transport sends live (the SDK transport's request
    streams), it also closes the SDK's replay-to-live window: after a replay the SDK
    sends the resumed stream's priming event and only then takes the stream over, so a
    message of that stream routed meanwhile would be stored but sent to no one. Such a
    message waits here, once stored, until the stream is live (at most
    :data:`HANDOFF_SECONDS`), and the SDK then sends it on the resumed stream.
    """

    def __init__(
        self, store: BoundedEventStore, session_id: str, live: Container[object] | None = None
    ) -> None:
        self._store = store
        self._session_id = session_id
        self._live = live
        #: Streams replayed but maybe not live yet, and until when to wait for them.
        self._handoffs: dict[StreamId, float] = {}

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = self._store.store(self._session_id, stream_id, message)
        # A priming event is the SDK's own, stored before it takes the stream over.
        if message is not None and stream_id in self._handoffs:
            await self._until_live(stream_id)
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        stream = await self._store.replay(self._session_id, last_event_id, send_callback)
        if stream is not None and self._live is not None:
            self._handoffs[stream] = asyncio.get_running_loop().time() + HANDOFF_SECONDS
        return stream

    async def _until_live(self, stream_id: StreamId) -> None:
        assert self._live is not None
        loop = asyncio.get_running_loop()
        deadline = self._handoffs[stream_id]
        # Polled: the SDK takes a stream over by setting a dict entry, which tells no one.
        while stream_id not in self._live and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(HANDOFF_POLL_SECONDS)
        self._handoffs.pop(stream_id, None)
