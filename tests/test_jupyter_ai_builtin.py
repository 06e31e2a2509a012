"""Jupyter AI with zero setup: dodo's entry reaches every persona through Jupyter AI's own
code (jupyter-ai-persona-manager 0.3's PersonaManager and BasePersona), its token works
and dies with the server, an admin's servers are kept, and on a shared hub server only
the owner's messages are served."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from jupyterlab_chat.models import Message
from jupyterlab_chat.ychat import YChat
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import select
from sqlalchemy.orm import Session

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server
from dodo_jupyter.jupyter_ai import (
    BUILTIN_TOKEN_KIND,
    JupyterAIBuiltin,
    merged_servers,
    refusal_for_builtin_request,
)
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.store import Store
from dodo_jupyter.store.models import UserMCPToken
from dodo_jupyter.tokens import mint_token

from .conftest import Api
from .hub_identity import hub_server_config, hub_user
from .jupyter_process import ServerProcess
from .mcp_peers import INITIALIZE, MCP_HEADERS

JUPYTER_AI = {
    "jupyterlab_chat": True,
    "jupyter_ai_router": True,
    "jupyter_ai_persona_manager": True,
}
TEAM_SERVER = {"type": "http", "name": "team", "url": "http://127.0.0.1:9/mcp", "headers": []}
PERSONA_FILE = """
from jupyter_ai_persona_manager import BasePersona, PersonaDefaults


class ToolUser(BasePersona):
    @property
    def defaults(self):
        return PersonaDefaults(
            name="ToolUser", description="calls tools", avatar_path="/dev/null", system_prompt=""
        )

    async def process_message(self, message):
        return None
"""


@pytest.fixture
def persona_root(jp_root_dir: Path) -> Path:
    """The contents root with a local persona (``.jupyter/personas/``), as users add them."""
    personas = jp_root_dir / ".jupyter" / "personas"
    personas.mkdir(parents=True)
    (personas / "tool_user_persona.py").write_text(PERSONA_FILE)
    return jp_root_dir


def _with_jupyter_ai(config: dict[str, Any]) -> dict[str, Any]:
    config["ServerApp"]["jpserver_extensions"].update(JUPYTER_AI)
    config["PersonaManager"] = {"builtin_mcp_servers": [TEAM_SERVER]}  # the admin's own
    return config


@pytest.fixture
def jp_server_config(persona_root: Path, dodo_config: dict[str, Any]) -> dict[str, Any]:
    return _with_jupyter_ai(
        {"ServerApp": {"jpserver_extensions": {"dodo_jupyter": True}}, "DodoApp": dodo_config}
    )


@pytest.fixture
def gateway_url(http_server_client: Any, jp_http_port: int, jp_base_url: str) -> str:
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}dodo/mcp"


def _persona_manager(serverapp: Any) -> Any:
    """A chat's PersonaManager, made by the persona manager extension's own code for a
    real jupyterlab_chat YChat."""
    (extension,) = serverapp.extension_manager.extension_apps["jupyter_ai_persona_manager"]
    chat = YChat()
    chat.initial_path = "team.chat"
    manager = extension._init_persona_manager(chat)
    assert manager is not None, "the persona manager could not start for the chat"
    return manager


def _tool_user(manager: Any) -> Any:
    (persona,) = [p for p in manager.personas.values() if p.name == "ToolUser"]
    return persona


def _headers(server: Any) -> dict[str, str]:
    return {h.name: h.value for h in server.headers}


async def _list(url: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, **headers})


def test_merging_keeps_others_and_replaces_ours() -> None:
    ours = {"type": "http", "name": "dodo", "url": "http://h/dodo/mcp", "headers": []}
    old_by_url = {**ours, "name": "renamed"}
    assert merged_servers([TEAM_SERVER, old_by_url], ours) == [TEAM_SERVER, ours]
    assert merged_servers([{**ours, "url": "http://old/"}, TEAM_SERVER], ours) == [
        TEAM_SERVER,
        ours,
    ]
    assert merged_servers([TEAM_SERVER, ours], None) == [TEAM_SERVER]


async def test_every_persona_gets_the_gateway_without_setup(
    jp_serverapp: Any, gateway_url: str, api: Api
) -> None:
    runtime: DodoRuntime = jp_serverapp.web_app.settings["dodo"]
    builtin = JupyterAIBuiltin(runtime, jp_serverapp, gateway_url, enabled=True)
    stored = builtin.start()
    manager = _persona_manager(jp_serverapp)  # a chat opened before the token row is written
    await stored

    settings = manager.get_mcp_settings()  # Jupyter AI's own merge of its MCP servers
    assert settings is not None
    by_name = {server.name: server for server in settings.mcp_servers}
    assert set(by_name) == {"team", "dodo"}  # the admin's server is kept
    dodo = by_name["dodo"]
    assert dodo.type == "http" and dodo.url == gateway_url

    # What a persona hands its agent: Jupyter AI adds its chat and persona headers.
    persona = _tool_user(manager)
    (stamped,) = [s for s in persona.get_mcp_settings().mcp_servers if s.name == "dodo"]
    headers = _headers(stamped)
    assert headers["X-JupyterAI-Persona-Id"] == persona.id
    assert (await _list(gateway_url, headers)).status_code == 200
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10) as http,
        Client(streamable_http_client(gateway_url, http_client=http), mode="2026-07-28") as agent,
    ):
        assert (await agent.list_tools()).tools == []  # nothing connected yet

    tokens = (await api("GET", "dodo/api/user/mcp-tokens"))[1]["tokens"]
    (row,) = [t for t in tokens if t["kind"] == BUILTIN_TOKEN_KIND]
    assert row["label"] == "Jupyter AI (built in)" and row["id"] == builtin.token_id
    await runtime.tokens.flush()
    tokens = (await api("GET", "dodo/api/user/mcp-tokens"))[1]["tokens"]
    (row,) = [t for t in tokens if t["kind"] == BUILTIN_TOKEN_KIND]
    assert row["last_used_by"]["persona_id"] == persona.id
    assert row["last_used_by"]["chat_id"] == manager.chat.get_id()
    assert builtin.status() == {
        "installed": True,
        "enabled": True,
        "active": True,
        "token_id": row["id"],
        "url": gateway_url,
    }

    # Stopping the server takes the entry out and kills the token.
    await builtin.stop()
    assert (await _list(gateway_url, headers)).status_code == 401
    later = _persona_manager(jp_serverapp).get_mcp_settings()
    assert later is not None and [s.name for s in later.mcp_servers] == ["team"]


async def test_a_new_start_replaces_the_token_and_off_means_none(
    jp_serverapp: Any, gateway_url: str, api: Api
) -> None:
    runtime: DodoRuntime = jp_serverapp.web_app.settings["dodo"]
    first = JupyterAIBuiltin(runtime, jp_serverapp, gateway_url, enabled=True)
    await first.start()
    old = _headers(_dodo_entry(jp_serverapp))
    # A crash: no stop. The next start deletes the token the last one left.
    second = JupyterAIBuiltin(runtime, jp_serverapp, gateway_url, enabled=True)
    await second.start()
    new = _headers(_dodo_entry(jp_serverapp))
    assert new != old
    assert (await _list(gateway_url, old)).status_code == 401
    assert (await _list(gateway_url, new)).status_code == 200

    off = JupyterAIBuiltin(runtime, jp_serverapp, gateway_url, enabled=False)
    await off.start()
    assert (await _list(gateway_url, new)).status_code == 401
    tokens = (await api("GET", "dodo/api/user/mcp-tokens"))[1]["tokens"]
    assert [t for t in tokens if t["kind"] == BUILTIN_TOKEN_KIND] == []
    assert off.status()["active"] is False


def _dodo_entry(serverapp: Any) -> Any:
    settings = _persona_manager(serverapp).get_mcp_settings()
    assert settings is not None
    (entry,) = [s for s in settings.mcp_servers if s.name == "dodo"]
    return entry


class TestSharedHubServer:
    """alice's server, shared with bob: her personas answer her, never bob."""

    @pytest.fixture(autouse=True)
    def _users(self, hub: Callable[..., None]) -> None:
        hub(alice=hub_user("alice"), bob=hub_user("bob"))

    @pytest.fixture
    def jp_server_config(self, persona_root: Path, dodo_config: dict[str, Any]) -> dict[str, Any]:
        return _with_jupyter_ai(hub_server_config(dodo_config))

    async def test_only_messages_the_owner_sent_are_served(
        self, jp_serverapp: Any, gateway_url: str
    ) -> None:
        runtime: DodoRuntime = jp_serverapp.web_app.settings["dodo"]
        assert runtime.resolver.owner == "alice"
        builtin = JupyterAIBuiltin(runtime, jp_serverapp, gateway_url, enabled=True)
        await builtin.start()
        manager = _persona_manager(jp_serverapp)
        jp_serverapp.web_app.settings["jupyter-ai"]["persona-managers"][manager.chat.get_id()] = (
            manager
        )
        persona = _tool_user(manager)
        (entry,) = [s for s in persona.get_mcp_settings().mcp_servers if s.name == "dodo"]
        headers = _headers(entry)

        idle = await _list(gateway_url, headers)  # answering nobody
        assert idle.status_code == 403 and "only messages alice sends" in idle.json()["message"]
        async with persona.track_processing(_message("bob")):
            refused = await _list(gateway_url, headers)
        assert refused.status_code == 403
        async with persona.track_processing(_message("alice")):
            assert (await _list(gateway_url, headers)).status_code == 200
        token_only = {"Authorization": headers["Authorization"]}  # headers dropped
        assert (await _list(gateway_url, token_only)).status_code == 403


def _message(sender: str) -> Message:
    return Message(body="use the tools", id=str(uuid.uuid4()), time=time.time(), sender=sender)


def test_outside_a_hub_there_are_no_visitors() -> None:
    assert refusal_for_builtin_request({}, None, None, "me", hub_mode=False) is None
    assert refusal_for_builtin_request({}, "c", "p", "me", hub_mode=True) is not None


# -- through DodoApp's own start and stop, in a real server process ---------------------


def _builtin_tokens(server: ServerProcess) -> list[dict[str, Any]]:
    listed = server.client.get("/dodo/api/user/mcp-tokens").json()["tokens"]
    return [t for t in listed if t["kind"] == BUILTIN_TOKEN_KIND]


def _wait_builtin(server: ServerProcess) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = _builtin_tokens(server)
        if found:
            return found
        time.sleep(0.1)
    return []


@pytest.fixture
def demo() -> Iterator[DemoHandle]:
    with running_demo_server(DemoConfig(port=0)) as handle:
        yield handle


def test_the_server_offers_it_at_start_and_takes_it_back_at_stop(
    tmp_path: Path, demo: DemoHandle
) -> None:
    server = ServerProcess(tmp_path, demo, extensions=JUPYTER_AI)
    try:
        server.start()
        (first,) = _wait_builtin(server)
        assert first["label"] == "Jupyter AI (built in)"
        server.stop()
        server.start()
        (second,) = _wait_builtin(server)
        assert second["id"] != first["id"]  # one token per server run
        server.stop()
        assert _stored_builtin(server) == []  # deleted at stop
    finally:
        if server.process is not None:
            server.kill()
        server.client.close()


def test_off_means_no_entry_and_no_token(tmp_path: Path, demo: DemoHandle) -> None:
    server = ServerProcess(
        tmp_path, demo, extensions=JUPYTER_AI, dodo={"jupyter_ai_builtin": False}
    )
    try:
        server.start()
        server.stop()
        # A token left by a run that was killed (and then the setting turned off) ...
        _store_token(server, mint_token("root", "left over", kind=BUILTIN_TOKEN_KIND))
        assert len(_stored_builtin(server)) == 1
        server.start()
        deadline = time.monotonic() + 10
        while _stored_builtin(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _stored_builtin(server) == []  # ... is deleted at start, and none is made
        assert _builtin_tokens(server) == []
    finally:
        if server.process is not None:
            server.kill()
        server.client.close()


def _store_token(server: ServerProcess, minted: Any) -> None:
    def add(session: Session) -> None:
        session.add(minted.row)

    _with_store(server, lambda store: store.db.write_sync(add))


def _stored_builtin(server: ServerProcess) -> list[str]:
    def ids(session: Session) -> list[str]:
        rows = session.scalars(select(UserMCPToken).where(UserMCPToken.kind == BUILTIN_TOKEN_KIND))
        return [row.id for row in rows]

    return list(_with_store(server, lambda store: store.db.read_sync(ids)))


def _with_store(server: ServerProcess, fn: Callable[[Store], Any]) -> Any:
    store = Store(server.db_url, server.key_file, environ={})
    store.open_sync()
    try:
        return fn(store)
    finally:
        store.close()
