"""`jupyter dodo`: catalog, tokens, db upgrade and rotate-key, from a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from dodo_jupyter.identity import LocalIdentityResolver
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.runtime_settings import RuntimeSettings
from dodo_jupyter.store import migrate

#: The ``jupyter`` command of the environment the tests run in.
JUPYTER = Path(sys.executable).parent / "jupyter"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DODO_", "JUPYTER"))}
    clean.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        JUPYTER_NO_CONFIG="",
    )
    return clean


def dodo(env: dict[str, str], *args: str, db_url: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dodo_jupyter.cli", *args]
    if db_url:
        cmd += ["--db-url", db_url]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_help_for_every_command(env: dict[str, str]) -> None:
    for args in (
        [],
        ["catalog"],
        ["catalog", "list"],
        ["catalog", "add"],
        ["catalog", "remove"],
        ["catalog", "import"],
        ["tokens"],
        ["tokens", "list"],
        ["tokens", "create"],
        ["tokens", "revoke"],
        ["db"],
        ["db", "upgrade"],
        ["rotate-key"],
        ["agents"],
        ["agents", "configure"],
        ["agents", "remove"],
    ):
        result = dodo(env, *args, "--help")
        assert result.returncode == 0, (args, result.stderr)
        assert "usage: jupyter dodo" in result.stdout


def test_jupyter_subcommand_is_installed(env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(JUPYTER), "dodo", "--version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_catalog_commands(env: dict[str, str], db_url: str, tmp_path: Path) -> None:
    out = dodo(env, "catalog", "list", db_url=db_url)
    assert out.returncode == 0 and "The catalog is empty" in out.stdout

    added = dodo(
        env,
        "catalog",
        "add",
        "--id",
        "wx",
        "--url",
        "https://wx.example.com/mcp",
        "--description",
        "Weather",
        "--deny",
        "delete_*",
        "--deny",
        "drop_*",
        "--approval",
        "destructive",
        "--calls-per-minute",
        "30",
        db_url=db_url,
    )
    assert added.returncode == 0, added.stderr
    dup = dodo(
        env, "catalog", "add", "--id", "wx", "--url", "https://wx.example.com/mcp", db_url=db_url
    )
    assert dup.returncode == 1 and "already exists" in dup.stderr

    bad = dodo(
        env, "catalog", "add", "--id", "Bad Id", "--url", "http://x.example.com", db_url=db_url
    )
    assert bad.returncode == 1 and "id:" in bad.stderr and "Traceback" not in bad.stderr

    server_json = tmp_path / "server.json"
    server_json.write_text(
        json.dumps(
            {
                "name": "io.github.acme/tickets",
                "remotes": [{"type": "streamable-http", "url": "https://tickets.example.com/mcp"}],
            }
        )
    )
    imported = dodo(env, "catalog", "import", str(server_json), db_url=db_url)
    assert imported.returncode == 0 and "tickets" in imported.stdout, imported.stderr
    missing = dodo(env, "catalog", "import", str(tmp_path / "nope.json"), db_url=db_url)
    assert missing.returncode == 1 and "Cannot read" in missing.stderr

    listing = json.loads(dodo(env, "catalog", "list", "--json", db_url=db_url).stdout)
    assert {e["id"] for e in listing["entries"]} == {"wx", "tickets"}
    policy = {e["id"]: e["tool_policy"] for e in listing["entries"]}["wx"]
    assert (policy["deny"], policy["approval"], policy["calls_per_minute"]) == (
        ["delete_*", "drop_*"],
        "destructive",
        30,
    )
    flags = ["--id", "x2", "--url", "https://x2.example.com/mcp", "--deny", "rm -rf"]
    bad_policy = dodo(env, "catalog", "add", *flags, db_url=db_url)
    assert bad_policy.returncode == 1 and "tool_policy.deny" in bad_policy.stderr

    removed = dodo(env, "catalog", "remove", "wx", db_url=db_url)
    assert removed.returncode == 0
    gone = dodo(env, "catalog", "remove", "wx", db_url=db_url)
    assert gone.returncode == 1 and "No catalog entry 'wx'" in gone.stderr
    table = dodo(env, "catalog", "list", "--all", db_url=db_url).stdout
    assert "deleted" in table and "tickets" in table


def test_token_commands(env: dict[str, str], db_url: str) -> None:
    created = dodo(
        env, "tokens", "create", "--label", "ci", "--expires-in-days", "3", db_url=db_url
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("dodo_")
    listing = dodo(env, "tokens", "list", "--json", db_url=db_url)
    (info,) = json.loads(listing.stdout)["tokens"]
    assert info["label"] == "ci" and token not in listing.stdout
    bad = dodo(env, "tokens", "revoke", "nope", db_url=db_url)
    assert bad.returncode == 1 and "No token" in bad.stderr
    assert dodo(env, "tokens", "revoke", info["id"], db_url=db_url).returncode == 0
    assert "No gateway tokens" in dodo(env, "tokens", "list", db_url=db_url).stdout


def test_db_upgrade_from_empty(env: dict[str, str], db_url: str) -> None:
    first = dodo(env, "db", "upgrade", db_url=db_url)
    assert first.returncode == 0 and "was empty" in first.stdout, first.stderr
    second = dodo(env, "db", "upgrade", db_url=db_url)
    assert f"was {migrate.HEAD}" in second.stdout


def test_rotate_key_keeps_secrets_readable(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    assert dodo(env, "tokens", "list", db_url=db_url).returncode == 0  # creates the key file
    key_file = tmp_path / "data" / "dodo" / "crypt.key"
    old = key_file.read_text()
    rotated = dodo(env, "rotate-key", db_url=db_url)
    assert rotated.returncode == 0 and "Re-encrypted 1 secret" in rotated.stdout, rotated.stderr
    assert key_file.read_text() != old
    runtime = DodoRuntime(
        RuntimeSettings(db_url=db_url, key_file=key_file, environ={}), LocalIdentityResolver()
    )
    runtime.open_sync(seed=False)
    try:
        assert runtime.store.vault_error is None
    finally:
        runtime.store.close()


def test_rotate_key_with_wrong_key_fails_clearly(env: dict[str, str], db_url: str) -> None:
    assert dodo(env, "tokens", "list", db_url=db_url).returncode == 0
    wrong = dict(env, DODO_CRYPT_KEY="00" * 32)
    result = dodo(wrong, "rotate-key", db_url=db_url)
    assert result.returncode == 1
    assert "cannot be decrypted" in result.stderr and "Traceback" not in result.stderr


def test_config_file_is_read(env: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "from-config.sqlite"
    config = tmp_path / "jupyter_server_config.json"
    config.write_text(json.dumps({"DodoApp": {"db_url": f"sqlite:///{db}"}}))
    result = dodo(env, "db", "upgrade", "--config", str(config))
    assert result.returncode == 0 and db.exists()
    missing = dodo(env, "db", "upgrade", "--config", str(tmp_path / "none.py"))
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_agents_configure_merges_keeps_a_backup_and_never_clobbers(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    env["HOME"] = str(tmp_path / "home")
    project = tmp_path / "project"
    settings = project / ".jupyter" / "mcp_settings.json"
    settings.parent.mkdir(parents=True)
    other = {"type": "http", "name": "other", "url": "https://other.example/mcp", "headers": []}
    existing = {"mcp_servers": [other], "theme": "dark"}
    settings.write_text(json.dumps(existing))
    url = "http://127.0.0.1:8888/dodo/mcp"

    def configure(target: str) -> subprocess.CompletedProcess:
        args = ["agents", "configure", target, "--url", url, "--root", str(project)]
        return dodo(env, *args, db_url=db_url)

    def tokens() -> list[dict[str, Any]]:
        listing = dodo(env, "tokens", "list", "--json", db_url=db_url).stdout
        return list(json.loads(listing)["tokens"])

    first = configure("jupyter-ai")
    assert first.returncode == 0, first.stderr
    data = json.loads(settings.read_text())
    assert data["theme"] == "dark" and data["mcp_servers"][0] == other
    entry = data["mcp_servers"][1]
    token = entry["headers"][0]["value"].removeprefix("Bearer ")
    assert entry["url"] == url and entry["type"] == "http" and token.startswith("dodo_")
    assert token not in first.stdout + first.stderr
    assert settings.stat().st_mode & 0o777 == 0o600
    (backup,) = settings.parent.glob("mcp_settings.json.bak-*")
    assert json.loads(backup.read_text()) == existing
    assert [t["label"] for t in tokens()] == ["agent: Jupyter AI"]

    again = configure("jupyter-ai")
    assert again.returncode == 0 and "Replaced 'dodo'" in again.stdout
    assert "Revoked the token it held before" in again.stdout
    assert len(tokens()) == 1  # the token written the first time is revoked
    assert len(list(settings.parent.glob("mcp_settings.json.bak-*"))) == 2

    assert configure("nbi").returncode == 0
    nbi = json.loads((tmp_path / "home/.jupyter/nbi/mcp.json").read_text())
    assert nbi["mcpServers"]["dodo"]["url"] == url
    assert configure("claude-code").returncode == 0
    claude = json.loads((project / ".mcp.json").read_text())
    assert claude["mcpServers"]["dodo"]["type"] == "http"

    before = len(tokens())
    broken = project / ".mcp.json"
    broken.write_text("{not json")
    refused = configure("claude-code")
    assert refused.returncode == 1 and "not valid JSON" in refused.stderr
    assert broken.read_text() == "{not json"
    assert len(tokens()) == before  # no token for a config that was not written

    removed = dodo(env, "agents", "remove", "nbi", "--url", url, db_url=db_url)
    assert removed.returncode == 0 and "Revoked its token" in removed.stdout
    assert json.loads((tmp_path / "home/.jupyter/nbi/mcp.json").read_text()) == {"mcpServers": {}}
    assert len(tokens()) == before - 1

    printed = configure("print")
    assert printed.returncode == 0
    assert printed.stdout.count('"mcpServers"') == 2 and '"mcp_servers"' in printed.stdout
    assert "Bearer dodo_" in printed.stdout


def test_catalog_changes_are_refused_in_hub_catalog_mode(
    env: dict[str, str], sqlite_url: str
) -> None:
    hub_env = {
        **env,
        "JUPYTERHUB_USER": "alice",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
        "DODO_HUB_CATALOG_URL": "http://127.0.0.1:9/services/dodo/",
    }
    added = dodo(
        hub_env, "catalog", "add", "--id", "x", "--url", "https://x.test/", db_url=sqlite_url
    )
    assert added.returncode == 1
    assert "copy of the hub catalog service's (http://127.0.0.1:9/services/dodo/)" in added.stderr
    listed = dodo(hub_env, "catalog", "list", db_url=sqlite_url)
    assert listed.returncode == 0, listed.stderr

    local_env = {**env, "DODO_HUB_CATALOG_URL": "http://127.0.0.1:9/services/dodo/"}
    local = dodo(local_env, "catalog", "list", db_url=sqlite_url)
    assert local.returncode == 1 and "needs hub mode" in local.stderr


def test_the_running_servers_store_is_used(env: dict[str, str], tmp_path: Path) -> None:
    """A server started with its own database: `jupyter dodo tokens create`, with no flag,
    makes a token that this server's gateway accepts."""
    from dodo_jupyter.demo.server import DemoConfig
    from dodo_jupyter.demo.testing import running_demo_server

    from .jupyter_process import ServerProcess
    from .mcp_peers import INITIALIZE, MCP_HEADERS

    with running_demo_server(DemoConfig(port=0)) as demo:
        (tmp_path / "server").mkdir()
        server = ServerProcess(tmp_path / "server", demo)  # its own database, not the CLI's
        try:
            server.start()
            cli_env = {**env, "JUPYTER_RUNTIME_DIR": str(server.runtime_dir)}
            created = dodo(cli_env, "tokens", "create", "--label", "from the cli")
            assert created.returncode == 0, created.stderr
            assert "using the store of the server at" in created.stderr
            token = created.stdout.strip()
            headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
            answer = httpx.post(f"{server.base}/dodo/mcp", json=INITIALIZE, headers=headers)
            assert answer.status_code == 200
            # Elsewhere (another runtime dir: no server) the configured store is used.
            alone = dodo(env, "tokens", "list", "--json")
            assert alone.returncode == 0 and json.loads(alone.stdout) == {"tokens": []}
        finally:
            if server.process is not None:
                server.stop()
            server.client.close()
    assert not list(server.runtime_dir.glob("dodo-*.json"))  # removed when it stopped


def test_config_and_db_url_go_anywhere(env: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "early.sqlite"
    early = subprocess.run(
        [sys.executable, "-m", "dodo_jupyter.cli", "--db-url", f"sqlite:///{db}", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert early.returncode == 0, early.stderr
    assert db.exists()
    config = tmp_path / "c.json"
    other = tmp_path / "from-config.sqlite"
    config.write_text(json.dumps({"DodoApp": {"db_url": f"sqlite:///{other}"}}))
    before = dodo(env, "--config", str(config), "tokens", "list")
    assert before.returncode == 0, before.stderr
    assert other.exists()


def test_every_runtime_setting_is_one_trait_or_named_as_not_one() -> None:
    from dataclasses import fields

    from traitlets.config import Config

    from dodo_jupyter.runtime_settings import RuntimeSettings
    from dodo_jupyter.settings import NOT_TRAITS, DodoSettings

    names = {f.name for f in fields(RuntimeSettings)}
    traits = set(DodoSettings.class_trait_names(config=True))
    assert names - traits == NOT_TRAITS
    settings = DodoSettings(
        config=Config(
            {
                "DodoSettings": {
                    "upstream_call_timeout": 7.5,
                    "outbound_timeout": 2.0,
                    "allowed_hosts": ["mcp.example.com"],
                }
            }
        )
    )
    runtime = settings.runtime_settings()
    assert (runtime.upstream_call_timeout, runtime.outbound_timeout) == (7.5, 2.0)
    for name in names - NOT_TRAITS:
        expected = getattr(settings, name)
        assert getattr(runtime, name) == (Path(expected) if name == "key_file" else expected)
