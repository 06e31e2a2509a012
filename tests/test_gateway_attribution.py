"""Which agent used a gateway token: the MCP clientInfo and Jupyter AI's chat and persona
headers, recorded by the real gateway and shown in the token list ("last used by")."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client

from dodo_jupyter.gateway.attribution import (
    CHAT_ID_HEADER,
    MAX_LABEL,
    PERSONA_ID_HEADER,
    Attribution,
    clean_label,
    client_label,
)
from dodo_jupyter.runtime import DodoRuntime

from .conftest import Api

TOKENS = "dodo/api/user/mcp-tokens"
PERSONA = "jupyter-ai-personas::jupyter_ai::JupyternautPersona"


@contextlib.asynccontextmanager
async def _legacy(
    url: str, headers: dict[str, str], info: types.Implementation
) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, client_info=info) as session,
    ):
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def _modern(
    url: str, headers: dict[str, str], info: types.Implementation
) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10) as http,
        Client(
            streamable_http_client(url, http_client=http), mode="2026-07-28", client_info=info
        ) as client,
    ):
        yield client


async def _used_by(api: Api, runtime: DodoRuntime, token_id: str) -> dict[str, Any] | None:
    await runtime.tokens.flush()
    status, listing = await api("GET", TOKENS)
    assert status == 200
    (row,) = [t for t in listing["tokens"] if t["id"] == token_id]
    return row["last_used_by"]


def test_labels_are_cut_and_cleaned() -> None:
    assert clean_label("  chat-1\r\nInjected: yes\x00 ") == "chat-1Injected: yes"
    assert clean_label("x" * 10_000) == "x" * MAX_LABEL
    assert clean_label("") is None and clean_label(None) is None and clean_label(42) is None
    assert client_label({"name": "Claude Code", "version": "2.1.0"}) == "Claude Code 2.1.0"
    assert client_label(types.Implementation(name="nbi", version="6.2")) == "nbi 6.2"
    assert client_label({"version": "1"}) is None
    agent = Attribution.from_headers({CHAT_ID_HEADER: "c1", PERSONA_ID_HEADER: "p1"}.get, "t1")
    assert agent.as_json() == {"client": None, "chat_id": "c1", "persona_id": "p1"}
    assert agent.with_client({"name": "a", "version": "1"}).client == "a 1"


@pytest.mark.parametrize("protocol", ["2026-07-28", "2025-11-25"])
async def test_a_token_shows_the_agent_that_used_it_last(
    api: Api, runtime_: DodoRuntime, gateway_url: str, protocol: str
) -> None:
    await runtime_.ready()
    new = await runtime_.tokens.create(runtime_.resolver.owner, "Jupyter AI")
    assert await _used_by(api, runtime_, new.info["id"]) is None  # never used yet

    headers = {
        "Authorization": f"Bearer {new.token}",
        CHAT_ID_HEADER: "6f2c0d1e-chat",
        PERSONA_ID_HEADER: PERSONA + "\t" + "y" * 500,  # untrusted: cleaned and cut
    }
    info = types.Implementation(name="Jupyter AI ACP agent", version="0.3.3")
    session = _modern if protocol == "2026-07-28" else _legacy
    async with session(gateway_url, headers, info) as client:
        await client.list_tools()
        result = await client.call_tool("nothing__here", {})
        assert result.is_error  # still a use of the token

    used = await _used_by(api, runtime_, new.info["id"])
    assert used is not None
    assert used["client"] == "Jupyter AI ACP agent 0.3.3"
    assert used["chat_id"] == "6f2c0d1e-chat"
    assert used["persona_id"] == (PERSONA + "y" * 500)[:MAX_LABEL]
    assert used["at"]

    # Another agent with the same token, without Jupyter AI's headers, replaces the record.
    other = types.Implementation(name="claude-code", version="2.1.0")
    async with session(gateway_url, {"Authorization": f"Bearer {new.token}"}, other) as client:
        await client.list_tools()
    used = await _used_by(api, runtime_, new.info["id"])
    assert used is not None
    assert used["client"] == "claude-code 2.1.0"
    assert used["chat_id"] is None and used["persona_id"] is None


async def test_attribution_headers_grant_nothing(runtime_: DodoRuntime, gateway_url: str) -> None:
    """Jupyter AI's headers alone are not a credential."""
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(
            gateway_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            headers={
                "Accept": "application/json, text/event-stream",
                CHAT_ID_HEADER: "c",
                PERSONA_ID_HEADER: PERSONA,
            },
        )
    assert response.status_code == 401
