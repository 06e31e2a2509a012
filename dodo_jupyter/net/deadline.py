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

On top of that, each whole exchange (head *and* body) has one total deadline,
:func:`exchange_deadline`, which fails with a message naming the host and the step::

    async with exchange_deadline(url, "authorization server metadata", 10.0):
        async with client.stream("GET", url) as response:
            body = await read_limited(response, max_bytes)

    UpstreamTimeout: auth.example.com did not send its authorization server metadata
    within 10 s; ...

The OAuth steps (discovery, registration, token, revocation) get
``DodoApp.outbound_timeout`` (:func:`exchange_seconds` reads it from the client the
step uses); an MCP session bounds each of its requests itself
(:class:`~dodo_jupyter.upstream.session.UpstreamSession`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx2

from ..exceptions import UpstreamTimeout
from .transport import request_timeouts

__all__ = [
    "DeadlineTransport",
    "exchange_deadline",
    "exchange_seconds",
    "head_deadline",
    "host_shown",
]


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


def host_shown(url: str) -> str:
    """The host (and an explicit port) of ``url``, as a message shows it: never the
    credentials, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "the server"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


def exchange_seconds(client: httpx2.AsyncClient) -> float:
    """The total deadline of one exchange made with ``client``: its read timeout, which
    for the clients of the OAuth steps is ``DodoApp.outbound_timeout``."""
    seconds = client.timeout.read
    return seconds if seconds is not None else 10.0


@contextlib.asynccontextmanager
async def exchange_deadline(
    url: str, step: str, seconds: float, *, setting: str = "DodoApp.outbound_timeout"
) -> AsyncIterator[None]:
    """Run one whole exchange with ``url`` (request, head and body) within ``seconds``.

    ``step`` names what the server should have sent ("authorization server metadata").
    A step timeout of the client's on the way (connect, a read) is reported the same way.

    Raises
    ------
    UpstreamTimeout
        naming the host, the step, the deadline and ``setting``; never the URL's path,
        query or credentials.
    """
    try:
        async with asyncio.timeout(seconds) as deadline:
            yield
    except TimeoutError:
        if not deadline.expired():
            raise
        raise _late(url, step, seconds, setting) from None
    except httpx2.TimeoutException:
        raise _late(url, step, seconds, setting) from None


def _late(url: str, step: str, seconds: float, setting: str) -> UpstreamTimeout:
    return UpstreamTimeout(
        f"{host_shown(url)} did not send its {step} within {seconds:g} s; the server may be "
        f"down or overloaded: try again later (the deadline is {setting})."
    )
