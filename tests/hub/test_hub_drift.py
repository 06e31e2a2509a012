"""Issue 5 on a real JupyterHub: a renamed or deleted hub user's secrets do not outlive them.

Every server runs with ``DodoApp.hygiene_interval = 1``: the maintenance task asks the
hub about the owner every second (``GET /hub/api/user`` with the server's own token), and
a REST request runs the check first when the last one is older than that. So these tests
prove "wiped within about a second, and before the next request is answered", not which
of the two paths did it (the unit tests in ``tests/test_owner.py`` pin the request path).

What the hub does (``/work/shared/notes/jupyterhub-e2e.md``):

* **rename** (``PATCH /hub/api/users/alice {"name": "alice2"}``): the server keeps running
  at ``/user/alice/`` with ``JUPYTERHUB_USER=alice``; its token now resolves to
  ``alice2``, and only the hub admin still reaches it. dodo sees the owner drift and wipes.
* **delete** (``DELETE /hub/api/users/bob``): the hub *stops the server first* and only
  then forgets the user, so a running dodo never gets the hub's 403 for a deleted owner:
  the hygiene check cannot clear anything on delete. What is observable, and tested:
  the hygiene *task* clears the connections of a server whose owner the hub stopped
  vouching for while it runs (its token revoked: the same 403 a deleted user's token
  gets), with no request at all; and a user created again under the deleted one's name,
  whose server finds the old secrets in the home: the hub reports a new ``created`` time
  for the owner (the server token has ``read:users!user``, as ``docs/jupyterhub.md``
  configures), and dodo wipes them before the new user's first request.

Tests run in order and share the hub: rename (alice), then delete and re-create (bob).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .harness import AUTH_CACHE_SECONDS, Hub, free_ports
from .stores import NO_SECRETS, drift_audits, gateway_status, secrets_in, wait_for

pytestmark = pytest.mark.hub_e2e

ME = "dodo/api/me"
TOKENS = "dodo/api/user/mcp-tokens"
ADMIN = "dodo/api/admin/approved-mcps"
CONFIGS = "dodo/api/mcp/configs"
ENTRY_ID = "drift-headers"
HEADER = "X-Drift-Key"


@pytest.fixture(scope="module")
def hub_dodo_settings() -> dict[str, Any]:
    return {"hygiene_interval": 1.0}


@pytest.fixture(scope="module")
def servers(hub: Hub) -> Hub:
    """The hub with alice's and bob's servers running."""
    hub.spawn("alice", "bob")
    return hub


# -- helpers ----------------------------------------------------------------------------


def give_secrets(hub: Hub, name: str) -> str:
    """A gateway token and a static-header connection for ``name`` (through their server's
    REST API, with their own hub token); returns the gateway token.

    The catalog lives in each server's database: the hub admin approves the entry there
    first. It points at a loopback port nobody listens on, so the connection ends in
    state "error"; its encrypted header values are stored all the same."""
    entry = {
        "id": ENTRY_ID,
        "url": f"http://127.0.0.1:{free_ports(1)[0]}/mcp",
        "auth_type": "static_headers",
        "headers": [{"name": HEADER}],
    }
    status, body = hub.call(name, "POST", ADMIN, hub.user_token("admin"), entry)
    assert status in (201, 409), (body, hub.log_tail())  # 409: approved already
    token = hub.user_token(name)
    status, body = hub.call(name, "POST", TOKENS, token, {"label": "drift test"})
    assert status == 201, (body, hub.log_tail())
    gateway_token = str(body["token"])
    configs = {"catalog_id": ENTRY_ID, "headers": {HEADER: f"secret-of-{name}"}}
    status, body = hub.call(name, "POST", CONFIGS, token, configs)
    assert status == 200, (body, hub.log_tail())
    return gateway_token


# -- rename -----------------------------------------------------------------------------


def test_rename_wipes_the_owners_secrets(servers: Hub) -> None:
    hub = servers
    gateway_token = give_secrets(hub, "alice")
    secrets = secrets_in(hub, "alice")
    # Ours, plus the kernels' server-lifetime token minted at start.
    assert secrets["user_mcp_tokens"] >= 1 and secrets["mcp_connections"] == 1, secrets
    assert gateway_status(hub, "alice", gateway_token) == 200, hub.log_tail()
    assert drift_audits(hub, "alice") == []

    hub.rename("alice", "alice2")  # waits out the servers' auth cache (> hygiene_interval)
    try:
        # Only the hub admin still reaches the server, which keeps its /user/alice/ route.
        status, me = hub.call("alice", "GET", ME, hub.user_token("admin"))
        assert status == 200, (me, hub.log_tail())
        assert me["is_owner"] is False
        # The check ran before that request was served (or the maintenance task ran it
        # within the last second; a wipe it had started may commit a moment later).
        wait_for(hub, "alice's secrets to go", lambda: secrets_in(hub, "alice") == NO_SECRETS)
        audits = drift_audits(hub, "alice")
        assert audits, hub.log_tail()
        assert "the hub now calls this server's owner 'alice2', not 'alice'" in audits[0]
        assert gateway_status(hub, "alice", gateway_token) == 401
        # The renamed owner's own token no longer reaches the old route (the hub says 403).
        assert hub.call("alice", "GET", ME, hub.user_token("alice2"))[0] == 403
    finally:
        hub.rename("alice2", "alice")


# -- delete -----------------------------------------------------------------------------


def test_deleting_a_user_stops_the_server_before_the_hub_forgets_them(servers: Hub) -> None:
    """The hub stops the server, then deletes the user: nothing running ever hears 403.

    So deleting does not (cannot) wipe: the secrets stay in the home, the hub-side
    equivalent of a stopped server. This pins that fact; the next test shows the
    consequence."""
    hub = servers
    gateway_token = give_secrets(hub, "bob")
    assert gateway_status(hub, "bob", gateway_token) == 200, hub.log_tail()
    pid = hub.server_pid("bob")

    started = time.monotonic()
    hub.delete_user("bob")  # 204 once the server is stopped and the user gone
    assert time.monotonic() - started < 10
    assert hub.api("GET", "users/bob").status_code == 404
    wait_for(hub, "bob's server process to exit", lambda: not Path(f"/proc/{pid}").exists())

    assert drift_audits(hub, "bob") == [], "a hygiene check saw the deletion after all"
    secrets = secrets_in(hub, "bob")
    assert secrets["mcp_connections"] == 1 and secrets["user_mcp_tokens"] >= 1, secrets


def test_a_recreated_user_does_not_inherit_the_deleted_users_secrets(servers: Hub) -> None:
    hub = servers
    if hub.api("POST", "users/bob").status_code != 201:  # not an AssertionError: no xfail
        pytest.fail(f"could not re-create bob\n{hub.log_tail()}")
    hub.spawn("bob")
    status, body = hub.call("bob", "GET", TOKENS, hub.user_token("bob"))
    if status != 200:
        pytest.fail(f"GET {TOKENS} -> {status} {body}\n{hub.log_tail()}")
    # Only the new server's kernel token should be there, and no connection.
    assert [t["label"] for t in body["tokens"]].count("drift test") == 0
    assert secrets_in(hub, "bob")["mcp_connections"] == 0


def test_hygiene_task_clears_connections_when_the_hub_stops_vouching(servers: Hub) -> None:
    """What a deletion with the server still running would do, and what the hub does to
    every token of a deleted user: the server's own token is refused (403). The
    maintenance task alone (no request reaches the server) clears everything."""
    hub = servers
    if "" not in hub.user("bob")["servers"]:  # the xfail above re-created and spawned bob
        hub.spawn("bob")
    gateway_token = give_secrets(hub, "bob")
    assert gateway_status(hub, "bob", gateway_token) == 200, hub.log_tail()
    assert secrets_in(hub, "bob")["mcp_connections"] == 1
    audits_before = len(drift_audits(hub, "bob"))

    server_token = hub.server_token("bob")
    tokens = hub.api("GET", "users/bob/tokens").json()["api_tokens"]
    (server_token_id,) = [t["id"] for t in tokens if t["note"].startswith("Server at ")]
    assert hub.api("DELETE", f"users/bob/tokens/{server_token_id}").status_code == 204
    assert hub.api("GET", "user", token=server_token).status_code == 403

    wait_for(hub, "bob's secrets to go", lambda: secrets_in(hub, "bob") == NO_SECRETS)
    audits = drift_audits(hub, "bob")
    assert len(audits) > audits_before
    assert "the hub no longer recognises this server's owner 'bob' (HTTP 403)" in audits[-1]
    time.sleep(AUTH_CACHE_SECONDS)  # nothing is cached for gateway tokens; be fair anyway
    assert gateway_status(hub, "bob", gateway_token) == 401
    hub.stop_server("bob")
