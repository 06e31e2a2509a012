"""A governed upstream MCP server and an agent at the gateway, for the tests that drive
governance through real peers (tests/test_governance_gateway.py, tests/test_codemode_*.py):
tools that say what they do (annotations), a catalog entry with a tool policy, the MCP
SDK's client with a fresh gateway token, the call history."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import Context, MCPServer

from dodo_jupyter.runtime import DodoRuntime

from .conftest import Api
from .mcp_peers import RunningServer, running_mcp_server

ADMIN = "dodo/api/admin/approved-mcps"
HISTORY = "dodo/api/user/tool-calls"


def governed_server() -> MCPServer:
    """Tools that say what they do, and one that changes another's description."""
    mcp = MCPServer("gov")

    @mcp.tool(annotations=types.ToolAnnotations(read_only_hint=True))
    def list_items() -> str:
        """List the items."""
        return "a, b"

    @mcp.tool(annotations=types.ToolAnnotations(destructive_hint=True))
    def delete_item(name: str) -> str:
        """Delete an item."""
        return f"deleted {name}"

    @mcp.tool()
    def rename_item(name: str, to: str) -> str:
        """Rename an item (no annotations: the MCP defaults apply)."""
        return f"renamed {name} to {to}"

    @mcp.tool(annotations=types.ToolAnnotations(read_only_hint=True))
    async def change_description(text: str, ctx: Context) -> str:
        """Give list_items a new description, and say the tool list changed."""
        mcp.remove_tool("list_items")
        mcp.add_tool(
            list_items,
            description=text,
            annotations=types.ToolAnnotations(read_only_hint=True),
        )
        await ctx.session.send_notification(
            types.ToolListChangedNotification(), related_request_id=ctx.request_id
        )
        return "changed"

    return mcp


@contextlib.contextmanager
def governed_upstream() -> Iterator[RunningServer]:
    """:func:`governed_server` on loopback."""
    app = governed_server().streamable_http_app(host="127.0.0.1")
    with running_mcp_server(app=app) as server:
        yield server


async def govern(api: Api, upstream: RunningServer, **policy: Any) -> None:
    """(Re)approve the upstream as "gov" with ``policy``, and connect it."""
    entry = {"id": "gov", "url": upstream.url, "auth_type": "none", "tool_policy": policy}
    status, _ = await api("PUT", f"{ADMIN}/gov", entry)
    if status == 404:
        status, _ = await api("POST", ADMIN, entry)
    assert status in (200, 201)
    status, body = await api("POST", "dodo/api/mcp/start-auth", {"catalog_id": "gov"})
    assert body["state"] == "connected", body


@contextlib.asynccontextmanager
async def agent(
    runtime: DodoRuntime,
    url: str,
    kind: str = "user",
    *,
    mode: str = "auto",
    http_timeout: float = 10,
) -> AsyncIterator[Client]:
    """An MCP SDK client at the gateway with a fresh gateway token (of ``kind``);
    ``mode="legacy"`` opens a 2025-11-25 session (``auto`` is stateless 2026-07-28)."""
    await runtime.ready()
    new = await runtime.tokens.create(runtime.resolver.owner, "an agent", kind=kind)
    headers = {"Authorization": f"Bearer {new.token}"}
    info = types.Implementation(name="test-agent", version="1.0")
    async with (
        httpx2.AsyncClient(headers=headers, timeout=http_timeout) as http,
        Client(
            streamable_http_client(url, http_client=http), client_info=info, mode=mode
        ) as client,
    ):
        yield client


async def names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def history(api: Api, runtime: DodoRuntime, **filters: str) -> list[dict[str, Any]]:
    await runtime.history.flush()
    status, body = await api("GET", HISTORY, **filters)
    assert status == 200
    return list(body["calls"])
