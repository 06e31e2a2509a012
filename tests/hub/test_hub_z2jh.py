"""Issue 19 (items 6 and 9) on a real JupyterHub: the Zero to JupyterHub values of
``docs/jupyterhub.md``, deployed as the chart turns them into configuration
(:mod:`tests.hub.z2jh`), with the operator's own ``extra_user_scopes`` already a list
in ``hub.config``.

Checked: the hub starts, the catalog service is healthy and every user keeps the
operator's scopes and gains dodo's; each server's token reads what dodo's owner check
needs (the owner's name and creation time) and nothing of other users; and a stopped
server's secrets die with the identity that obtained them when it next starts, before
any request reaches it:

* **deleted and created again** (bob): the new bob's server starts on the old home (a
  deleted user's volume stays, as Kubernetes keeps the claim); the hub shows a new
  creation time, which the documented token scopes let the server read;
* **renamed** (alice → alice2): the spawner keeps a renamed user's home, as KubeSpawner
  keeps their volume (``remember_pvc_name``, on by default): the record names 'alice'.

The servers run with dodo's default ``hygiene_interval`` (an hour): what wipes is the
start. Tests run in order and share the hub.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from .harness import Hub, free_ports
from .stores import database, drift_audits, gateway_status, secrets_in, wait_for

pytestmark = pytest.mark.hub_e2e

SERVICE = "/services/dodo/"
CATALOG = "dodo/api/mcp-catalog"
TOKENS = "dodo/api/user/mcp-tokens"
CONFIGS = "dodo/api/mcp/configs"
SERVERS = "dodo/api/mcp/servers"
KERNELS = "Jupyter kernels (this server's lifetime)"
HEADER = "X-Z2jh-Key"
ENTRY = {
    "id": "z2jh-headers",
    "url": f"https://127.0.0.1:{free_ports(1)[0]}/mcp",  # nobody listens: state "error"
    "auth_type": "static_headers",
    "headers": [{"name": HEADER}],
}

#: A spawner that keeps a user's home across a rename in its state, as KubeSpawner keeps
#: the name of a user's volume (``remember_pvc_name``); a deleted user's state goes.
REMEMBERED_HOMES = """
from jupyterhub.spawner import SimpleLocalProcessSpawner


class RememberedHomeSpawner(SimpleLocalProcessSpawner):
    def get_state(self):
        return {**super().get_state(), "home_dir": self.home_dir}

    def load_state(self, state):
        super().load_state(state)
        if state.get("home_dir"):
            self.home_dir = state["home_dir"]


c.JupyterHub.spawner_class = RememberedHomeSpawner
"""


@pytest.fixture(scope="module")
def hub_z2jh() -> bool:
    return True


@pytest.fixture(scope="module")
def hub_extra_config() -> str:
    return REMEMBERED_HOMES


# -- helpers ----------------------------------------------------------------------------


def at(hub: Hub, user: str, method: str, path: str, json: Any = None) -> tuple[int, Any]:
    """``method path`` on ``user``'s running server, at the route the hub gives it (a
    renamed user's server keeps the old one), with a new token of ``user``."""
    prefix = hub.user(user)["servers"][""]["url"]
    response = hub.request(method, prefix + path, token=hub.user_token(user), json=json)
    return response.status_code, response.json()


def give_secrets(hub: Hub, name: str) -> str:
    """A gateway token and a static-header connection for ``name``; the gateway token."""
    status, body = at(hub, name, "GET", CATALOG)
    assert status == 200 and [e["id"] for e in body["entries"]] == [ENTRY["id"]], body
    status, body = at(hub, name, "POST", TOKENS, {"label": "z2jh test"})
    assert status == 201, (body, hub.log_tail())
    configs = {"catalog_id": ENTRY["id"], "headers": {HEADER: f"secret-of-{name}"}}
    status, reply = at(hub, name, "POST", CONFIGS, configs)
    assert status == 200, (reply, hub.log_tail())
    assert secrets_in(hub, name)["mcp_connections"] == 1
    return str(body["token"])


def recorded_owner(hub: Hub, home: str) -> tuple[str, str]:
    """(username, hub creation time) of the owner record in ``home``'s store."""
    with sqlite3.connect(database(hub, home), timeout=5) as db:
        row = db.execute("SELECT username, hub_created FROM owner_identity").fetchone()
    return (str(row[0]), str(row[1])) if row else ("", "")


def assert_nothing_inherited(hub: Hub, user: str, home: str, reason: str, old: str) -> None:
    """The start wiped ``home``'s store for ``user`` (no request needed), said why, and
    what the new owner got at start (the kernels' token) survived."""
    wait_for(hub, f"the start of {user}'s server to wipe", lambda: drift_audits(hub, home))
    (audit,) = drift_audits(hub, home)
    assert reason in audit and "secret-of" not in audit and old not in audit, audit
    assert secrets_in(hub, home)["mcp_connections"] == 0
    status, body = at(hub, user, "GET", SERVERS)
    assert (status, body) == (200, {"servers": []})
    status, body = at(hub, user, "GET", TOKENS)
    labels = [t["label"] for t in body["tokens"]]  # also Jupyter AI's, when installed
    assert status == 200 and KERNELS in labels and "z2jh test" not in labels, body
    assert "secret-of" not in hub.log_tail(1_000_000)


# -- the deployment ---------------------------------------------------------------------


def test_the_service_is_healthy_and_every_user_may_use_it(hub: Hub) -> None:
    response = hub.request("GET", SERVICE)  # JupyterHub's health check, no token
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    me = hub.api("GET", "user", token=hub.user_token("alice")).json()
    # dodo's scope was added to the operator's list (hub.config), which kept its own.
    assert {"access:services!service=dodo", "shares!user=alice"} <= set(me["scopes"]), me
    # An administrator approves the entry at the service; servers copy it at start.
    admin = hub.user_token("admin")
    response = hub.request("POST", SERVICE + "api/admin/approved-mcps", token=admin, json=ENTRY)
    assert response.status_code == 201, (response.text, hub.log_tail())


def test_a_servers_token_reads_the_owners_record_and_nothing_else(hub: Hub) -> None:
    hub.spawn("alice", "bob")
    token = hub.server_token("alice")
    response = hub.api("GET", "user", token=token)
    assert response.status_code == 200, response.text
    me = response.json()
    created = hub.user("alice")["created"]
    assert (me["name"], me["created"]) == ("alice", created)
    # Least privilege: every scope is about alice, her server or the dodo service.
    about_alice = ("!user=alice", "!server=alice/", "!service=dodo")
    assert all(scope.endswith(about_alice) for scope in me["scopes"]), me["scopes"]
    assert hub.api("GET", "users/bob", token=token).status_code == 404
    # dodo read it at start: the creation time is on record, and no warning was logged.
    wait_for(hub, "alice's owner record", lambda: recorded_owner(hub, "alice")[1] != "")
    assert recorded_owner(hub, "alice") == ("alice", created)
    assert "does not show this server's token" not in hub.log_tail(1_000_000)


# -- secrets of a stopped server ----------------------------------------------------------


@pytest.fixture(scope="module")
def restarted(hub: Hub) -> dict[str, str]:
    """bob and alice get secrets and their servers stop; then the hub deletes bob and
    creates him again, and renames alice to alice2; both servers start again. Returns the
    old gateway tokens by old name."""
    old = {name: give_secrets(hub, name) for name in ("bob", "alice")}
    for name, token in old.items():
        assert gateway_status(hub, name, token) == 200, hub.log_tail()
    hub.stop_server("bob", "alice")
    hub.delete_user("bob")
    assert hub.api("POST", "users/bob").status_code == 201
    hub.rename("alice", "alice2")
    hub.spawn("bob", "alice2")
    return old


def test_a_user_created_again_inherits_nothing_of_the_deleted_one(
    hub: Hub, restarted: dict[str, str]
) -> None:
    assert_nothing_inherited(
        hub, "bob", "bob", "the hub user 'bob' was deleted and created again", restarted["bob"]
    )
    assert gateway_status(hub, "bob", restarted["bob"]) == 401


def test_a_user_renamed_while_their_server_was_stopped_finds_no_secrets(
    hub: Hub, restarted: dict[str, str]
) -> None:
    assert_nothing_inherited(
        hub, "alice2", "alice", "the owner changed from 'alice' to 'alice2'", restarted["alice"]
    )
    assert recorded_owner(hub, "alice")[0] == "alice2"  # the home kept across the rename
    status, body = at(hub, "alice2", "GET", "dodo/api/me")
    assert (status, body["username"], body["is_owner"]) == (200, "alice2", True)
