"""Talking to an upstream MCP server: probing it and listing or calling its tools.

Used by connections (is the server reachable, does it want OAuth, how many tools does it
have) and by the tools API. The MCP SDK's client does the protocol; an ``httpx2``
response hook watches for ``401``/``403`` because the SDK turns those into generic
JSON-RPC errors, and dodo must see them to refresh a token or step up scopes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from .exceptions import DodoError, UpstreamError, describe_error
from .oauth.discovery import Challenge, parse_challenge

__all__ = ["AuthRejected", "ProbeResult", "Upstream", "probe"]

log = logging.getLogger(__name__)

_PROTOCOL_VERSION = "2025-11-25"
_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": _PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "dodo-jupyter", "version": "probe"},
    },
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
    http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> ProbeResult:
    """POST an MCP ``initialize`` and report the status (the body is not read)."""
    request_headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": _PROTOCOL_VERSION,
        **(headers or {}),
    }
    try:
        async with http.stream("POST", url, json=_INITIALIZE, headers=request_headers) as response:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            return ProbeResult(response.status_code, challenge)
    except httpx.TimeoutException:
        raise UpstreamError("The MCP server did not answer in time.") from None
    except httpx.HTTPError as e:
        raise UpstreamError(f"The MCP server could not be reached ({type(e).__name__}).") from None


class _AuthWatch:
    """An httpx2 response hook that remembers the last 401/403 and its challenge."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.challenge = Challenge()

    async def __call__(self, response: httpx2.Response) -> None:
        if response.status_code in (401, 403):
            self.status = response.status_code
            self.challenge = parse_challenge(response.headers.get("WWW-Authenticate"))


ClientFactory = Callable[..., httpx2.AsyncClient]


class Upstream:
    """One short MCP session to a server, with the given request headers.

    Parameters
    ----------
    make_client:
        Builds the guarded ``httpx2.AsyncClient`` (keyword arguments are passed through).
    url:
        The server's MCP endpoint.
    headers:
        Request headers: ``Authorization`` for OAuth, or the static headers.
    """

    def __init__(self, make_client: ClientFactory, url: str, headers: dict[str, str]) -> None:
        self._make_client = make_client
        self.url = url
        self.headers = headers

    async def _session_call(self, work: Callable[[ClientSession], Any]) -> Any:
        watch = _AuthWatch()
        client = self._make_client(headers=self.headers, event_hooks={"response": [watch]})
        try:
            async with (
                client,
                streamable_http_client(self.url, http_client=client) as (
                    read,
                    write,
                ),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await work(session)
        except DodoError:
            raise
        except Exception as e:
            if watch.status is not None:
                raise AuthRejected(watch.status, watch.challenge) from None
            log.debug("dodo: MCP session to %s failed", self.url, exc_info=True)
            raise UpstreamError(f"The MCP session failed: {describe_error(e)}") from None

    async def list_tools(self) -> list[Any]:
        """Every tool the server lists (all pages)."""

        async def work(session: ClientSession) -> list[Any]:
            tools: list[Any] = []
            cursor = None
            for _ in range(100):  # bounded: a server cannot page forever
                params = {"cursor": cursor} if cursor else None
                result = await session.list_tools(params=params)
                tools.extend(result.tools)
                cursor = result.next_cursor
                if not cursor:
                    break
            return tools

        return await self._session_call(work)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call one tool; the SDK's result object (``isError`` set for tool errors)."""

        async def work(session: ClientSession) -> Any:
            return await session.call_tool(name, arguments)

        return await self._session_call(work)
