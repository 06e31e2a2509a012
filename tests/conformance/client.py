"""A client for the official MCP conformance suite that drives dodo's own OAuth engine.

``npx @modelcontextprotocol/conformance client --command "python -m tests.conformance.client"
--suite auth`` starts, per scenario, an MCP server and an authorization server on
localhost and runs this module with the MCP server URL as its last argument. The
environment carries ``MCP_CONFORMANCE_SCENARIO`` (the scenario's name) and, for some
scenarios, ``MCP_CONFORMANCE_CONTEXT`` (JSON; ``client_id``/``client_secret`` of a
pre-registered client). The suite judges the client by the requests it sees; this module
must exit (0) before the suite's timeout.

Nothing here implements OAuth: a :class:`~dodo_jupyter.runtime.DodoRuntime` on a
throw-away SQLite database does discovery, registration (pre-registered, Client ID
Metadata Document or dynamic), PKCE, the token exchange, step-up and the MCP requests,
exactly as it does behind the REST API. This module only plays the user's browser: it
opens the authorization URL (the suite's authorization server approves at once and
redirects to the callback with ``code``, ``state`` and maybe ``iss``), reads the
callback query from ``Location`` and hands it to
:meth:`~dodo_jupyter.connections.ConnectionService.complete`.

After signing in it lists the tools and calls the first one. A ``403
insufficient_scope`` leads to :meth:`~dodo_jupyter.connections.ConnectionService.step_up`
and a new consent, until the request succeeds or the engine refuses another step-up
(its limit is what the ``scope-retry-limit`` scenario checks).

Run from the repository root so the working tree's ``dodo_jupyter`` is imported. Logs
go to stderr (the suite shows them when a scenario fails).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from dodo_jupyter.connections import MAX_STEP_UPS, ConnectionService
from dodo_jupyter.exceptions import Conflict, DodoError
from dodo_jupyter.identity import LocalIdentityResolver
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.runtime_settings import RuntimeSettings
from dodo_jupyter.upstream import AuthRejected, Upstream

__all__ = ["CLIENT_METADATA_URL", "main", "run"]

log = logging.getLogger("dodo_jupyter.conformance")

#: The Client ID Metadata Document URL the suite's ``basic-cimd`` scenario expects.
CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
#: Where the "browser" would be sent back; nothing listens there, the query is read
#: from the authorization server's redirect.
REDIRECT_URI = "http://localhost:3000/callback"
CATALOG_ID = "conformance"
SECRET_ENV = "DODO_CONFORMANCE_CLIENT_SECRET"
OWNER = "conformance"
#: Stay well inside the suite's 30 s per scenario.
DEADLINE_S = 25.0

T = TypeVar("T")


def runtime_settings(server_url: str, context: dict[str, Any], workdir: Path) -> RuntimeSettings:
    """A runtime on a fresh database whose catalog holds just the suite's server."""
    entry: dict[str, Any] = {
        "id": CATALOG_ID,
        "url": server_url,
        # The suite's authorization server runs on localhost, on another port.
        "known_hosts": ["localhost"],
    }
    environ: dict[str, str] = {}
    if context.get("client_id"):
        entry["oauth"] = {"client_id": str(context["client_id"])}
        if context.get("client_secret"):
            entry["oauth"]["client_secret_env"] = SECRET_ENV
            environ[SECRET_ENV] = str(context["client_secret"])
    return RuntimeSettings(
        db_url=f"sqlite:///{workdir / 'dodo.db'}",
        key_file=workdir / "crypt.key",
        catalog=[entry],
        default_catalog=False,
        allow_insecure_loopback=True,
        catalog_cache_ttl=0.0,
        client_metadata_url=CLIENT_METADATA_URL,
        environ=environ,
    )


async def consent(authorize_url: str) -> dict[str, str]:
    """Open the authorization URL as a browser would; the callback's query parameters."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=10, trust_env=False) as http:
        response = await http.get(authorize_url)
    location = response.headers.get("location")
    if response.status_code not in (301, 302, 303, 307) or not location:
        raise RuntimeError(
            f"the authorization endpoint answered HTTP {response.status_code} without a redirect"
        )
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    log.info("consent: redirected with %s", sorted(query))
    return query


class Session:
    """One user's connection to the suite's server, driven through dodo's services."""

    def __init__(self, connections: ConnectionService, owner: str) -> None:
        self.connections = connections
        self.owner = owner
        self.connection_id = ""

    async def connect(self) -> None:
        started = await self.connections.start_auth(
            self.owner, catalog_id=CATALOG_ID, redirect_uri=REDIRECT_URI
        )
        self.connection_id = str(started["connection_id"])
        log.info("start-auth: %s", started["state"])
        if started["state"] == "authenticating":
            await self.connections.complete(self.owner, await consent(started["authorize_url"]))

    async def use(self, operation: Callable[[Upstream], Awaitable[T]]) -> T:
        """Run ``operation`` with fresh credentials: refresh once after a 401, step up
        after a 403 ``insufficient_scope`` until the engine refuses (Conflict)."""
        refreshed = False
        for _ in range(MAX_STEP_UPS + 2):  # the engine's limit ends the loop first
            row = await self.connections.get(self.owner, self.connection_id)
            headers = await self.connections.headers_for(row)
            try:
                return await operation(self.connections.upstream(row, headers))
            except AuthRejected as e:
                log.info("MCP request rejected: HTTP %d %s", e.http_status, e.challenge)
                if e.http_status == 401 and not refreshed and "Authorization" in headers:
                    refreshed = True
                    stale = headers["Authorization"].removeprefix("Bearer ")
                    await self.connections.headers_for(row, stale=stale)
                    continue
                if e.http_status != 403 or e.challenge.error != "insufficient_scope":
                    raise
                url = await self.connections.step_up(self.owner, self.connection_id, e.challenge)
                await self.connections.complete(self.owner, await consent(url))
        raise RuntimeError("the step-up limit did not stop the retries")


async def run(server_url: str, scenario: str, context: dict[str, Any]) -> int:
    """Connect to ``server_url``, list the tools, call the first; the exit status."""
    with tempfile.TemporaryDirectory(prefix="dodo-conformance-") as tmp:
        settings = runtime_settings(server_url, context, Path(tmp))
        runtime = DodoRuntime(settings, LocalIdentityResolver(OWNER))
        await asyncio.to_thread(runtime.open_sync)
        try:
            session = Session(runtime.connections, OWNER)
            await session.connect()
            tools = await session.use(lambda up: up.list_tools())
            log.info("tools: %s", [t.name for t in tools])
            if tools:
                result = await session.use(lambda up: up.call_tool(tools[0].name, {}))
                log.info("%s: isError=%s", tools[0].name, result.is_error)
        except Conflict as e:
            log.info("%s: the engine stopped stepping up: %s", scenario, e.message)
        except DodoError as e:
            log.error("%s: %s (%s)", scenario, e.message, type(e).__name__)
            return 1
        finally:
            await runtime.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(name)s %(levelname)s %(message)s"
    )
    if not argv:
        print("usage: python -m tests.conformance.client <server-url>", file=sys.stderr)
        return 2
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    log.info("scenario %r, server %s", scenario, argv[-1])
    try:
        return asyncio.run(asyncio.wait_for(run(argv[-1], scenario, context), DEADLINE_S))
    except TimeoutError:
        log.error("%s: gave up after %.0f s", scenario, DEADLINE_S)
        return 1


if __name__ == "__main__":
    sys.exit(main())
