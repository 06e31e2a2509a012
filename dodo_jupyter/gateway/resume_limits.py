"""How much of the gateway's event streams is kept for resuming them (SEP-1699): the
``DodoApp.resume_*`` settings as one value, light to import (the event store itself,
:mod:`.event_store`, loads the MCP SDK's server side)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ResumeLimits"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class ResumeLimits:
    """How much of the gateway's event streams is kept for resuming them (SEP-1699).

    The values of the ``DodoApp.resume_*`` settings; see their help and
    :mod:`dodo_jupyter.gateway.event_store` for what each bounds.

    Parameters
    ----------
    events_per_session:
        Most events kept per MCP session; 0 turns resumption off.
    bytes_per_session:
        Most bytes of events kept per MCP session (at most ``max_bytes``).
    max_bytes:
        Most bytes of events kept for all sessions together; 0 turns resumption off.
    max_age:
        Seconds an event is kept; 0 turns resumption off.
    retry_interval:
        Seconds a client should wait before reconnecting (the SSE ``retry`` field of each
        stream's priming event); 0 sends no ``retry`` field.
    """

    events_per_session: int = 1000
    bytes_per_session: int = 4 * _MIB
    max_bytes: int = 16 * _MIB
    max_age: float = 300.0
    retry_interval: float = 1.0

    @property
    def enabled(self) -> bool:
        """Whether any event can be kept at all."""
        return min(self.events_per_session, self.bytes_per_session, self.max_bytes) > 0 and (
            self.max_age > 0
        )
