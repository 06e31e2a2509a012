"""End to end with Jupyter AI 3.2's real packages: a chat message reaches an ACP agent
through jupyter-ai-router, the persona manager and jupyter-ai-acp-client, the agent gets
dodo's gateway in ``session/new`` with no setup by anyone, calls a connected upstream's
tool through ``/dodo/mcp``, answers in the chat, and the call is attributed to it.

What is real: the Jupyter server with dodo, jupyterlab_chat's YChat, the router, the
persona manager, ``BaseAcpPersona`` spawning the agent subprocess and speaking ACP to it
(``agent-client-protocol``), the MCP SDK client in the agent, the upstream MCP server. What
is not: the browser. The chat document is created in memory instead of through a
collaboration room, and the user's message is written into it as a Yjs update from a
second document, as the chat panel's own document sends it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from jupyterlab_chat.models import Message, message_asdict_factory
from jupyterlab_chat.ychat import YChat
from pycrdt import Array, Doc, Map

from dodo_jupyter.jupyter_ai import BUILTIN_TOKEN_KIND, JupyterAIBuiltin
from dodo_jupyter.runtime import DodoRuntime

from .conftest import Api
from .mcp_peers import RunningServer, running_mcp_server

pytestmark = [pytest.mark.jupyter_ai, pytest.mark.usefixtures("upstreams_closed_first")]

AGENT = Path(__file__).parent / "agents" / "acp_tool_agent.py"
PERSONA_FILE = f"""
import sys

from jupyter_ai_acp_client.base_acp_persona import BaseAcpPersona
from jupyter_ai_persona_manager import PersonaDefaults


class ToolAgentAcpPersona(BaseAcpPersona):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, executable=[sys.executable, {str(AGENT)!r}], **kwargs)

    @property
    def defaults(self):
        return PersonaDefaults(
            name="ToolAgent", description="an ACP agent", avatar_path="/dev/null",
            system_prompt="unused",
        )
"""
START = "dodo/api/mcp/start-auth"


@pytest.fixture
def upstream() -> Iterator[RunningServer]:
    with running_mcp_server() as server:
        yield server


@pytest.fixture
def jp_server_config(
    jp_root_dir: Path, dodo_config: dict[str, Any], upstream: RunningServer
) -> dict[str, Any]:
    personas = jp_root_dir / ".jupyter" / "personas"
    personas.mkdir(parents=True)
    (personas / "tool_agent_persona.py").write_text(PERSONA_FILE)
    return {
        "ServerApp": {
            "jpserver_extensions": {
                "dodo_jupyter": True,
                "jupyterlab_chat": True,
                "jupyter_ai_router": True,
                "jupyter_ai_persona_manager": True,
                "jupyter_ai_acp_client": True,
            }
        },
        "DodoApp": {
            **dodo_config,
            "catalog": [{"id": "open", "url": upstream.url, "auth_type": "none"}],
        },
    }


def _send_as_the_chat_panel(chat: YChat, sender: str, body: str, to_persona: str) -> None:
    """Write a message the way JupyterLab's chat panel does: into its own copy of the
    document, synced to the server's as a Yjs update."""
    panel = Doc()
    panel.apply_update(chat.ydoc.get_update())
    message = Message(
        body=body,
        id=str(uuid.uuid4()),
        time=time.time(),
        sender=sender,
        metadata={"to_persona": to_persona},
    )
    before = panel.get_state()
    messages = panel.get("messages", type=Array)
    messages.append(Map(asdict(message, dict_factory=message_asdict_factory)))
    chat.ydoc.apply_update(panel.get_update(before))


async def _wait_for(predicate: Any, what: str) -> Any:
    """``predicate()``'s first truthy value, within 30 s."""
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def test_an_acp_agent_in_a_jupyter_ai_chat_calls_a_connected_tool(
    jp_serverapp: Any,
    api: Api,
    jp_http_port: int,
    jp_base_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = tmp_path / "agent.jsonl"
    monkeypatch.setenv("ACP_TOOL_AGENT_RECORD", str(record))  # the agent inherits it
    runtime: DodoRuntime = jp_serverapp.web_app.settings["dodo"]
    owner = runtime.resolver.owner
    status, body = await api("POST", START, {"catalog_id": "open"})
    assert (status, body["state"]) == (200, "connected")

    # What DodoApp does at start: the personas' built-in MCP servers get the gateway.
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}dodo/mcp"
    await JupyterAIBuiltin(runtime, jp_serverapp, url, enabled=True).start()

    # A chat opens: jupyter-ai-router connects it and the persona manager starts for it.
    jupyter_ai = jp_serverapp.web_app.settings["jupyter-ai"]
    router = await _wait_for(lambda: jupyter_ai.get("router"), "jupyter-ai-router")
    (extension,) = jp_serverapp.extension_manager.extension_apps["jupyter_ai_persona_manager"]
    await _wait_for(lambda: getattr(extension, "router", None), "the persona manager's hook")
    chat = YChat()
    chat.initial_path = "work.chat"
    chat.dirty = False  # loaded (as a collaboration room says once its file is read)
    chat_id = await _wait_for(lambda: chat.ydoc["metadata"].get("id"), "the chat's id")
    router.connect_chat(chat_id, chat)
    manager = jupyter_ai["persona-managers"][chat_id]
    (persona,) = [p for p in manager.personas.values() if p.name == "ToolAgent"]

    _send_as_the_chat_panel(chat, owner, 'call open__double {"n": 21}', persona.id)

    tool = await _wait_for(
        lambda: [r for r in _records(record) if r["event"] == "tool"], "the agent's tool call"
    )
    (session,) = [r for r in _records(record) if r["event"] == "session/new"]
    (dodo,) = [s for s in session["mcp_servers"] if s["name"] == "dodo"]
    assert dodo["url"] == url  # what jupyter-ai-acp-client passed in session/new
    headers = {h["name"]: h["value"] for h in dodo["headers"]}
    assert headers["X-JupyterAI-Persona-Id"] == persona.id
    assert headers["X-Jupyter-Chat-Id"] == chat_id
    assert "open__double" in tool[0]["tools"] and tool[0]["answer"] == "42"

    # The agent's answer is in the chat, from the persona.
    replies = await _wait_for(
        lambda: [m for m in chat.get_messages() if m.sender == persona.id and "42" in m.body],
        "the agent's reply in the chat",
    )
    assert replies

    # The call is attributed to the agent, the persona and the chat.
    await runtime.tokens.flush()
    tokens = (await api("GET", "dodo/api/user/mcp-tokens"))[1]["tokens"]
    (builtin,) = [t for t in tokens if t["kind"] == BUILTIN_TOKEN_KIND]
    assert builtin["last_used_by"]["client"] == "acp-tool-agent 1.0"
    assert builtin["last_used_by"]["persona_id"] == persona.id
    assert builtin["last_used_by"]["chat_id"] == chat_id

    router.disconnect_chat(chat_id)
    await manager.shutdown_personas()
