"""Server-sent events from a stream of bytes (the WHATWG "event stream" format).

:class:`EventParser` is fed the body of a ``text/event-stream`` response as it arrives,
in chunks cut anywhere, and gives back each complete event. It follows the parsing rules
of the HTML standard (section 9.2.6): lines end with CR LF, LF or CR; a line starting
with ``:`` is a comment; ``field: value`` loses one space after the colon; ``data``
lines are joined with LF; a blank line dispatches the event (none when it has no data);
an ``id`` containing NUL is ignored; ``retry`` takes only ASCII digits; one byte order
mark at the start is skipped. The event type defaults to ``message``. An event whose
data (in UTF-8 bytes) grows beyond ``max_event_bytes`` is refused.

The stream's state is on the parser: :attr:`EventParser.last_event_id` (to resume the
stream with ``Last-Event-ID``) and :attr:`EventParser.retry_ms` (the reconnection delay
the server asked for), both updated as soon as their line is read.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "EventParser", "EventTooLarge"]

_BOM = "\ufeff".encode()


class EventTooLarge(ValueError):
    """An event (or a line of one) grew beyond the parser's limit."""


@dataclass(frozen=True)
class Event:
    """One dispatched event: its type and its data."""

    event: str
    data: str


class EventParser:
    """Turns byte chunks into :class:`Event` objects; see the module docstring."""

    def __init__(self, max_event_bytes: int = 1024 * 1024) -> None:
        self.max_event_bytes = max_event_bytes
        self._buffer = b""
        self._skip_lf = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        #: The last event id the stream set (``None`` until it sets one).
        self.last_event_id: str | None = None
        #: The reconnection delay the stream asked for, in milliseconds (``None``: none).
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """The events completed by ``chunk``."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buffer = self._buffer + chunk if self._buffer else chunk
        if not self._started:  # one leading byte order mark is skipped
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            buffer = buffer.removeprefix(_BOM)
        if b"\r" in buffer:
            # A CR at the end ends its line; the LF of a CR LF may come in the next chunk.
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = buffer.split(b"\n")
        self._buffer = rest
        events: list[Event] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(rest) + self._size > self.max_event_bytes:
            raise EventTooLarge(f"An event is larger than {self.max_event_bytes} bytes.")
        return events

    def _line(self, raw: bytes) -> Event | None:
        if not raw:
            return self._dispatch()
        line = raw.decode("utf-8", errors="replace")
        if line[0] == ":":
            return None
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._size += len(raw) - (len(line) - len(value)) + 1  # the value's bytes
            if self._size > self.max_event_bytes:
                raise EventTooLarge(f"An event is larger than {self.max_event_bytes} bytes.")
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Event | None:
        data, event = self._data, self._event
        self._data, self._event, self._size = [], "", 0
        return Event(event or "message", "\n".join(data)) if data else None
