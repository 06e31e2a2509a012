"""Kernels inherit DODO_MCP_URL and a server-lifetime DODO_MCP_TOKEN for the gateway."""

from __future__ import annotations

import os
from typing import Any

import httpx

from dodo_jupyter.kernel_access import (
    MCP_TOKEN_ENV,
    MCP_URL_ENV,
    export_kernel_access,
    revoke_kernel_access,
)

from .conftest import Api
from .mcp_peers import INITIALIZE, MCP_HEADERS


async def test_kernel_token_is_exported_usable_and_revoked(
    api: Api, jp_serverapp: Any, jp_http_port: int, jp_base_url: str, monkeypatch: Any
) -> None:
    monkeypatch.delenv(MCP_URL_ENV, raising=False)
    monkeypatch.delenv(MCP_TOKEN_ENV, raising=False)
    runtime = jp_serverapp.web_app.settings["dodo"]
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}dodo/mcp"
    await runtime.ready()
    leftover = await runtime.tokens.create(runtime.resolver.owner, "old", kind="kernel")

    await export_kernel_access(runtime, url)
    token = os.environ[MCP_TOKEN_ENV]
    assert os.environ[MCP_URL_ENV] == url and token.startswith("dodo_")
    assert await runtime.tokens.authenticate(leftover.token) is None  # a crashed run's token
    listed = (await api("GET", "dodo/api/user/mcp-tokens"))[1]["tokens"]
    assert [(t["kind"], t["expires_at"]) for t in listed] == [("kernel", None)]

    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, json=INITIALIZE, headers=headers)).status_code == 200

        await revoke_kernel_access(runtime)
        assert MCP_TOKEN_ENV not in os.environ and MCP_URL_ENV not in os.environ
        assert (await client.post(url, json=INITIALIZE, headers=headers)).status_code == 401
