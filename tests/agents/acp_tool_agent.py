"""A minimal ACP agent for the tests, run the way jupyter-ai-acp-client runs agents (a
subprocess speaking ACP on stdin/stdout).

It declares HTTP MCP support, keeps the MCP servers ``session/new`` hands it, and on each
prompt calls the tool the prompt names (``call <tool> <json arguments>``) on the server
named ``dodo``, with exactly the URL and headers it received, through the MCP SDK client
(it sends its own ``clientInfo``). It replies with the tool's text and appends what it
received and got to the JSON-lines file named by ``ACP_TOOL_AGENT_RECORD``.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import httpx2
import mcp_types as types
from acp import PROTOCOL_VERSION, run_agent, text_block, update_agent_message
from acp.interfaces import Client
from acp.schema import (
    AgentCapabilities,
    Implementation,
    InitializeResponse,
    McpCapabilities,
    NewSessionResponse,
    PromptResponse,
)
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client

RECORD = os.environ.get("ACP_TOOL_AGENT_RECORD", "acp-tool-agent.jsonl")
CLIENT_INFO = types.Implementation(name="acp-tool-agent", version="1.0")


def _record(entry: dict[str, Any]) -> None:
    with open(RECORD, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


class ToolAgent:
    def __init__(self) -> None:
        self._conn: Client | None = None
        self._servers: dict[str, dict[str, Any]] = {}

    def on_connect(self, conn: Client) -> None:
        self._conn = conn

    async def initialize(self, protocol_version: int, **kwargs: Any) -> InitializeResponse:
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(mcp_capabilities=McpCapabilities(http=True)),
            agent_info=Implementation(name="acp-tool-agent", version="1.0"),
        )

    async def new_session(
        self, cwd: str, mcp_servers: list[Any] | None = None, **kwargs: Any
    ) -> NewSessionResponse:
        session_id = uuid.uuid4().hex
        servers = [s.model_dump(mode="json") for s in mcp_servers or []]
        self._servers[session_id] = {s["name"]: s for s in servers}
        _record({"event": "session/new", "mcp_servers": servers})
        return NewSessionResponse(session_id=session_id)

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        text = " ".join(getattr(block, "text", "") for block in prompt)
        line = text[text.rindex("call ") :].split(maxsplit=2)
        tool, arguments = line[1], json.loads(line[2]) if len(line) > 2 else {}
        server = self._servers[session_id]["dodo"]
        headers = {h["name"]: h["value"] for h in server["headers"]}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            McpClient(
                streamable_http_client(server["url"], http_client=http),
                mode="2026-07-28",
                client_info=CLIENT_INFO,
            ) as client,
        ):
            names = [t.name for t in (await client.list_tools()).tools]
            result = await client.call_tool(tool, arguments)
        answer = " ".join(getattr(b, "text", "") for b in result.content)
        _record({"event": "tool", "tools": names, "tool": tool, "answer": answer})
        assert self._conn is not None
        await self._conn.session_update(session_id, update_agent_message(text_block(answer)))
        return PromptResponse(stop_reason="end_turn")


if __name__ == "__main__":
    asyncio.run(run_agent(ToolAgent()))
