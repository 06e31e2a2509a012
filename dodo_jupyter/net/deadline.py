"""The total deadline on an answer's head (:class:`DeadlineTransport`), for every client
dodo builds: guarded (:func:`~.guard.guarded_client`) and trusted
(:func:`~.outbound.trusted_client`).

httpx2's timeouts apply to each step (connect, each write, each read), and a server that
sends one byte at a time never trips them: every read is quick, the whole never ends.
So the answer's head (status line and headers) must arrive within the request's connect,
write and read timeouts added up (:func:`head_deadline`), counted from the moment the
request is handed to the transport: for a guarded client that includes the guard's name
resolution. The body is the reader's to bound: :func:`~.guard.read_limited` reads it
whole within the read timeout, and a stream a caller reads itself (an MCP session's event
streams) is bounded by that caller's own deadline.
"""

from __future__ import annotations

import asyncio

import httpx2

from .transport import request_timeouts

__all__ = ["DeadlineTransport", "head_deadline"]


def head_deadline(request: httpx2.Request) -> float | None:
    """Seconds a request may take until its answer's head is in: its connect, write and
    read timeouts added up (name resolution and each step within its own timeout); None
    only when none of them is set (never for a client dodo builds)."""
    steps = [request_timeouts(request).get(step) for step in ("connect", "write", "read")]
    bounded = [seconds for seconds in steps if seconds is not None]
    return sum(bounded) if bounded else None


class DeadlineTransport(httpx2.AsyncBaseTransport):
    """``inner`` with a total deadline on each answer's head (:func:`head_deadline`).

    Past the deadline the request fails with :class:`httpx2.ReadTimeout`, as a read that
    timed out would; ``inner`` is owned and closed with this transport.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        seconds = head_deadline(request)
        try:
            async with asyncio.timeout(seconds) as deadline:
                return await self.inner.handle_async_request(request)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise httpx2.ReadTimeout(
                f"no complete answer within {seconds:g} s (the total deadline of a request)",
                request=request,
            ) from None

    async def aclose(self) -> None:
        await self.inner.aclose()
