"""REST: /dodo/api/user/agents — the agents on this server and their configs.

pytest-jupyter's server has a temporary root (``jp_root_dir``) and HOME
(``jp_home_dir``), so the project files and the per-user files land there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dodo_jupyter.agents_service import AGENT_IDS, CLI_TOKEN_LABEL

from .conftest import Api
from .hub_identity import hub_server_config, hub_user

AGENTS = "dodo/api/user/agents"
TOKENS = "dodo/api/user/mcp-tokens"


def by_id(listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in listing["agents"]}


def read_json(path: Path | str) -> Any:
    return json.loads(Path(path).read_text())


def names_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def token_ids(api: Api) -> set[str]:
    return {t["id"] for t in (await api("GET", TOKENS))[1]["tokens"]}


async def test_lists_every_agent(api: Api, jp_root_dir: Path, jp_home_dir: Path) -> None:
    status, listing = await api("GET", AGENTS)
    assert status == 200
    assert listing["gateway_url"].startswith("http://") and listing["gateway_url"].endswith(
        "/dodo/mcp"
    )
    assert [a["id"] for a in listing["agents"]] == list(AGENT_IDS)
    agents = by_id(listing)
    assert agents["claude-code"]["path"] == str(jp_root_dir / ".mcp.json")
    assert agents["nbi"]["path"].startswith(str(jp_home_dir))
    for agent_id in ("jupyter-ai", "nbi", "claude-code"):
        assert agents[agent_id]["state"] == "not_configured"
        assert agents[agent_id]["configured"] is False
        assert agents[agent_id]["message"]
    builtin = agents["jupyter-ai-builtin"]
    assert builtin["state"] in ("on", "off") and "jupyter_ai_builtin" in builtin["setting"]
    cli = agents["claude-cli"]
    assert cli["command"] == (
        f"claude mcp add --transport http dodo {listing['gateway_url']} "
        '--header "Authorization: Bearer <token>"'
    )


async def test_write_then_remove_the_claude_code_project_file(api: Api, jp_root_dir: Path) -> None:
    url = (await api("GET", AGENTS))[1]["gateway_url"]
    path = jp_root_dir / ".mcp.json"
    path.write_text(json.dumps({"mcpServers": {"other": {"type": "stdio", "command": "x"}}}))

    status, report = await api("POST", f"{AGENTS}/claude-code")
    assert status == 200
    assert "token" not in report
    assert report["path"] == str(path) and report["agent"]["state"] == "configured"
    written = json.loads(path.read_text())
    entry = written["mcpServers"]["dodo"]
    assert entry["url"] == url and entry["type"] == "http"
    assert entry["headers"]["Authorization"].startswith(f"Bearer dodo_{report['token_id']}_")
    assert written["mcpServers"]["other"] == {"type": "stdio", "command": "x"}
    secret = entry["headers"]["Authorization"].removeprefix("Bearer ")
    assert secret not in json.dumps(report)  # the token is in the file only
    assert report["token_id"] in await token_ids(api)
    agent = by_id((await api("GET", AGENTS))[1])["claude-code"]
    assert (agent["state"], agent["configured"], agent["token_id"]) == (
        "configured",
        True,
        report["token_id"],
    )

    status, removed = await api("DELETE", f"{AGENTS}/claude-code")
    assert status == 200 and removed["removed"] is True
    assert removed["agent"]["state"] == "not_configured"
    assert "dodo" not in json.loads(path.read_text()).get("mcpServers", {})
    assert report["token_id"] not in await token_ids(api)
    status, again = await api("DELETE", f"{AGENTS}/claude-code")
    assert status == 200 and again["removed"] is False


async def test_nbi_is_written_in_home(api: Api, jp_home_dir: Path) -> None:
    status, report = await api("POST", f"{AGENTS}/nbi")
    assert status == 200
    assert Path(report["path"]).is_relative_to(jp_home_dir)
    assert "dodo" in read_json(report["path"])["mcpServers"]


async def test_an_invalid_file_is_reported_and_left_alone(api: Api, jp_root_dir: Path) -> None:
    path = jp_root_dir / ".mcp.json"
    path.write_text("{not json")
    agent = by_id((await api("GET", AGENTS))[1])["claude-code"]
    assert agent["state"] == "invalid" and str(path) in agent["message"]
    before = await token_ids(api)
    status, reply = await api("POST", f"{AGENTS}/claude-code")
    assert status in (400, 409) and str(path) in reply["message"]
    assert path.read_text() == "{not json"
    assert await token_ids(api) == before  # no token left behind
    assert names_in(jp_root_dir) == [".mcp.json"]


async def test_claude_cli_line_gets_its_own_token(api: Api) -> None:
    url = (await api("GET", AGENTS))[1]["gateway_url"]
    status, report = await api("POST", f"{AGENTS}/claude-cli")
    assert status == 200
    assert report["command"] == (
        f"claude mcp add --transport http dodo {url} "
        f'--header "Authorization: Bearer {report["token"]}"'
    )
    assert report["token"].startswith(f"dodo_{report['token_id']}_")
    assert report["agent"]["state"] == "configured"
    tokens = (await api("GET", TOKENS))[1]["tokens"]
    assert [t["label"] for t in tokens if t["id"] == report["token_id"]] == [CLI_TOKEN_LABEL]
    listing = (await api("GET", AGENTS))[1]
    assert report["token"] not in json.dumps(listing)

    status, removed = await api("DELETE", f"{AGENTS}/claude-cli")
    assert status == 200 and removed["removed"] is True
    assert report["token_id"] not in await token_ids(api)
    assert removed["agent"]["state"] == "not_configured"


async def test_builtin_and_unknown_ids(api: Api) -> None:
    for method in ("POST", "DELETE"):
        status, reply = await api(method, f"{AGENTS}/jupyter-ai-builtin")
        assert status == 400 and "c.DodoApp.jupyter_ai_builtin" in reply["message"]
        status, reply = await api(method, f"{AGENTS}/cursor")
        assert status == 404 and "claude-code" in reply["message"]


class TestHubMode:
    @pytest.fixture(autouse=True)
    def _users(self, hub: Callable[..., None]) -> None:
        hub(alice=hub_user("alice"), bob=hub_user("bob"), root=hub_user("root", admin=True))

    @pytest.fixture
    def jp_server_config(self, dodo_config: dict[str, Any]) -> dict[str, Any]:
        return hub_server_config(dodo_config)

    async def test_visitors_get_403(self, api: Api, jp_root_dir: Path) -> None:
        alice = {"Authorization": "token alice"}
        assert (await api("GET", AGENTS, headers=alice))[0] == 200
        for method, path in [
            ("GET", AGENTS),
            ("POST", f"{AGENTS}/claude-code"),
            ("DELETE", f"{AGENTS}/claude-code"),
            ("POST", f"{AGENTS}/claude-cli"),
        ]:
            for visitor in ("bob", "root"):
                headers = {"Authorization": f"token {visitor}"}
                status, reply = await api(method, path, headers=headers)
                assert status == 403, (visitor, method, path)
                assert "is not the owner of this server ('alice' is)" in reply["message"]
        assert not (jp_root_dir / ".mcp.json").exists()


async def test_jupyter_ai_settings_file_gets_its_own_format(api: Api, jp_root_dir: Path) -> None:
    url = (await api("GET", AGENTS))[1]["gateway_url"]
    status, report = await api("POST", f"{AGENTS}/jupyter-ai")
    assert status == 200 and report["path"] == str(jp_root_dir / ".jupyter" / "mcp_settings.json")
    (entry,) = read_json(report["path"])["mcp_servers"]
    assert (entry["type"], entry["name"], entry["url"]) == ("http", "dodo", url)
    agent = by_id((await api("GET", AGENTS))[1])["jupyter-ai"]
    assert (agent["state"], agent["token_id"]) == ("configured", report["token_id"])
