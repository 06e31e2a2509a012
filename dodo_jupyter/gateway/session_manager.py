"""The SDK's streamable-HTTP session manager as the gateway and code mode run it
(:class:`ResumableSessionManager`): each session gets its own view of the gateway's event
store (:mod:`.event_store`, which says how streams are resumed), and its transport
(:class:`SessionVersionTransport`) primes streams by the version the session opened with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp.server.streamable_http import StreamableHTTPServerTransport, StreamId
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types.version import is_version_at_least

from .event_store import BoundedEventStore

if TYPE_CHECKING:
    from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
    from mcp.server.lowlevel import Server
    from mcp.server.streamable_http import SSEEvent
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCRequest
    from starlette.requests import Request

    from .resume_limits import ResumeLimits

__all__ = ["ResumableSessionManager", "SessionVersionTransport"]

log = logging.getLogger("dodo_jupyter.gateway")


def _sdk_binds_sessions() -> bool:
    """Whether this MCP SDK has the two hooks :class:`ResumableSessionManager` uses."""
    return all(
        callable(getattr(StreamableHTTPSessionManager, name, None))
        for name in ("_admit_session", "_discard_session")
    )


class SessionVersionTransport(StreamableHTTPServerTransport):
    """The SDK's transport of one session, which primes a stream (and lets a tool close it
    to be resumed) by the protocol version the *session* opened with, not only by the
    request's ``MCP-Protocol-Version`` header.

    The SDK decides per request, from the header: below 2025-11-25 a stream gets no
    priming event, because a client that old cannot parse one. A client whose
    ``initialize`` asked for 2025-11-25 can, whatever a later request's header says; some
    send an older header on later requests (the pinned conformance suite sends
    2025-03-26 on the calls of its SEP-1699 scenario), and without this their streams
    could not be resumed. A session opened at an older version is left as the SDK has it.
    """

    #: The protocol version the session's ``initialize`` asked for (None until then).
    _session_version: str | None = None

    def _version(self, header_version: str) -> str:
        """The later of the request's version and the session's."""
        session = self._session_version
        if session is not None and is_version_at_least(session, header_version):
            return session
        return header_version

    async def _mint_priming_event(
        self, stream_id: StreamId, protocol_version: str
    ) -> SSEEvent | None:
        return await super()._mint_priming_event(stream_id, self._version(protocol_version))

    def _create_session_message(
        self, message: JSONRPCRequest, request: Request, request_id: Any, protocol_version: str
    ) -> SessionMessage:
        if message.method == "initialize":
            self._session_version = protocol_version
        version = self._version(protocol_version)
        return super()._create_session_message(message, request, request_id, version)


class ResumableSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, with each session's transport given its own
    :class:`SessionEvents` (see the module docstring for why not one shared store).

    It overrides two private hooks of MCP SDK 2.3 (``_admit_session``,
    ``_discard_session``). On an SDK without them it logs a warning and resumes
    nothing; the SDK itself never holds a store, so sessions can never be mixed up.

    Parameters
    ----------
    app:
        The MCP server.
    resume:
        The limits of the event store; None (or limits that keep nothing): no priming
        events, no replay.
    on_session_end:
        Told the id of each session the SDK discards (``DELETE``, idle timeout, a
        failed opening), once; code mode ends the session's kernel then.
    **options:
        The SDK manager's other keyword arguments (not ``event_store`` or
        ``retry_interval``, which come from ``resume``).
    """

    def __init__(
        self,
        app: Server[Any],
        *,
        resume: ResumeLimits | None,
        on_session_end: Callable[[str], None] | None = None,
        **options: Any,
    ) -> None:
        #: The sessions' events; None when streams are not resumable.
        self.events: BoundedEventStore | None = None
        self._on_session_end = on_session_end
        retry_ms: int | None = None
        if resume is not None and resume.enabled:
            if _sdk_binds_sessions():
                self.events = BoundedEventStore.from_limits(resume)
                retry_ms = round(resume.retry_interval * 1000) or None
            else:
                log.warning(
                    "dodo gateway: this MCP SDK cannot give each session its own event "
                    "store; streams are not resumable (DodoApp.resume_* are ignored)."
                )
        super().__init__(app, event_store=None, retry_interval=retry_ms, **options)

    def _admit_session(
        self, requestor: AuthorizationContext | None
    ) -> StreamableHTTPServerTransport | None:
        transport = super()._admit_session(requestor)
        if transport is not None and self.events is not None and transport.mcp_session_id:
            transport._event_store = self.events.for_session(
                transport.mcp_session_id, live=transport._request_streams
            )
            # The SDK builds its own transport class; this one only adds two overrides.
            transport.__class__ = SessionVersionTransport
        return transport

    async def _discard_session(
        self, session_id: str, transport: StreamableHTTPServerTransport
    ) -> None:
        known = session_id in self._server_instances
        try:
            await super()._discard_session(session_id, transport)
        finally:
            if self.events is not None:
                self.events.forget(session_id)
            if known and self._on_session_end is not None:
                try:
                    self._on_session_end(session_id)
                except Exception:  # a listener's bug never keeps a session alive
                    log.exception("dodo gateway: a session-end listener failed")
