"""Who may talk to an upstream MCP server: a bare probe (:func:`probe`: does it want
credentials?), the credentials on every request (:class:`ConnectionAuth`, an
``httpx2.Auth`` that asks for a fresher token once after a ``401``: the one place a
refresh after a rejection happens), and the rejection that stands (:class:`AuthRejected`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx2

from ..exceptions import DodoError, UpstreamError
from ..net.deadline import exchange_deadline, exchange_seconds, host_shown
from ..net.failures import describe_failure
from ..oauth.discovery import Challenge, parse_challenge
from .messages import PROTOCOL_VERSION, initialize_params

__all__ = ["AuthRejected", "ConnectionAuth", "Headers", "ProbeResult", "probe"]

#: ``await headers(stale_token)``: the request headers (a fresher token when ``stale``).
Headers = Callable[[str | None], Awaitable[dict[str, str]]]

_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": initialize_params("probe"),
}


class AuthRejected(DodoError):
    """The MCP server answered 401 or 403: credentials missing, expired or too narrow."""

    status = 502
    code = "upstream_auth"

    def __init__(self, status: int, challenge: Challenge) -> None:
        super().__init__(f"The MCP server answered HTTP {status}.")
        self.http_status = status
        self.challenge = challenge


@dataclass(frozen=True)
class ProbeResult:
    """How an MCP server answered an ``initialize`` without (or with) credentials."""

    status: int
    challenge: Challenge = field(default_factory=Challenge)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


async def probe(
    http: httpx2.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> ProbeResult:
    """POST an MCP ``initialize`` and report the status (the body is not read); the
    head must arrive within the client's deadline
    (:func:`~dodo_jupyter.net.deadline.exchange_deadline`, naming the host)."""
    request_headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": PROTOCOL_VERSION,
        **(headers or {}),
    }
    try:
        async with (
            exchange_deadline(url, "answer to initialize", exchange_seconds(http)),
            http.stream("POST", url, json=_INITIALIZE, headers=request_headers) as response,
        ):
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            return ProbeResult(response.status_code, challenge)
    except httpx2.HTTPError as e:
        raise UpstreamError(
            f"The MCP server at {host_shown(url)} did not answer: {describe_failure(e)}."
        ) from None


class ConnectionAuth(httpx2.Auth):
    """Adds a connection's credentials to every request; after a 401 asks once for a
    fresher token (``headers(stale_token)``) and retries. A 401/403 that stands is kept
    in :attr:`rejected`: the MCP SDK reports it as a generic error, and dodo must see it
    to start a sign-in or step up scopes."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers
        #: The last 401/403 that stood (after any retry): its status and challenge.
        self.rejected: tuple[int, Challenge] | None = None

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        sent = await self._headers(None)
        request.headers.update(sent)
        response = yield request
        bearer = sent.get("Authorization", "")
        if response.status_code == 401 and bearer.startswith("Bearer "):
            fresh = await self._headers(bearer.removeprefix("Bearer "))
            if fresh.get("Authorization") != bearer:
                request.headers.update(fresh)
                response = yield request
        if response.status_code in (401, 403):
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            self.rejected = (response.status_code, challenge)
