"""REST: /dodo/api/me and who may do what, in local and hub mode."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Api
from .hub_identity import hub_server_config, hub_user


async def test_local_owner_is_admin(api: Api) -> None:
    status, me = await api("GET", "dodo/api/me")
    assert status == 200
    assert me == {
        "username": getpass.getuser(),
        "mode": "local",
        "is_owner": True,
        "is_admin": True,
    }


async def test_unauthenticated_is_rejected(api: Api) -> None:
    status, reply = await api("GET", "dodo/api/me", headers={"Authorization": "token wrong"})
    assert status == 403 and reply["error"] == "forbidden"


class TestHubMode:
    @pytest.fixture(autouse=True)
    def _users(self, hub: Callable[..., None]) -> None:
        hub(
            alice=hub_user("alice"),
            bob=hub_user("bob"),
            root=hub_user("root", admin=True),
            grouped=hub_user("grouped", groups=["dodo-admins"]),
            scoped=hub_user("scoped", scopes=["custom:dodo:admin"]),
            listed=hub_user("listed"),
        )

    @pytest.fixture
    def jp_server_config(self, dodo_config: dict[str, Any]) -> dict[str, Any]:
        return hub_server_config(dodo_config, admin_groups=["dodo-admins"], admin_users=["listed"])

    @staticmethod
    def as_user(name: str) -> dict[str, str]:
        return {"Authorization": f"token {name}"}

    @pytest.mark.parametrize(
        ("name", "is_owner", "is_admin"),
        [
            ("alice", True, False),
            ("bob", False, False),
            ("root", False, True),
            ("grouped", False, True),
            ("scoped", False, True),
            ("listed", False, True),
        ],
    )
    async def test_me(self, api: Api, name: str, is_owner: bool, is_admin: bool) -> None:
        status, me = await api("GET", "dodo/api/me", headers=self.as_user(name))
        assert status == 200
        assert me == {"username": name, "mode": "hub", "is_owner": is_owner, "is_admin": is_admin}

    async def test_non_admin_gets_403_on_admin_endpoints(self, api: Api) -> None:
        entry = {"id": "x", "url": "https://x.example.com/mcp"}
        admin = "dodo/api/admin/approved-mcps"
        assert (await api("POST", admin, entry, headers=self.as_user("root")))[0] == 201
        for method, path, body in [
            ("GET", admin, None),
            ("POST", admin, {**entry, "id": "y"}),
            ("POST", f"{admin}/import", {"entries": [entry]}),
            ("GET", f"{admin}/x", None),
            ("PUT", f"{admin}/x", {"enabled": False}),
            ("DELETE", f"{admin}/x", None),
            ("GET", "dodo/api/admin/audit", None),
        ]:
            status, reply = await api(method, path, body, headers=self.as_user("alice"))
            assert status == 403, (method, path)
            assert reply["error"] == "forbidden"
            assert reply["message"].startswith("'alice' is not a dodo administrator: only ")
            # Each says what only administrators may do: reading the audit log changes
            # nothing, so it is not "change the catalog".
            action = "read the audit log" if "audit" in path else "administer the approved catalog"
            assert f"only administrators {action} (hub admins," in reply["message"]
            assert "DodoApp.admin_users" in reply["message"]
        # Reading the catalog is for everyone, visitors included.
        status, catalog = await api("GET", "dodo/api/mcp-catalog", headers=self.as_user("bob"))
        assert status == 200 and [e["id"] for e in catalog["entries"]] == ["x"]

    async def test_visitor_gets_403_on_personal_endpoints(self, api: Api) -> None:
        tokens = "dodo/api/user/mcp-tokens"
        status, created = await api("POST", tokens, {"label": "a"}, headers=self.as_user("alice"))
        assert status == 201
        for method, path, body in [
            ("GET", tokens, None),
            ("POST", tokens, {"label": "b"}),
            ("DELETE", f"{tokens}/{created['id']}", None),
        ]:
            for visitor in ("bob", "root"):  # a hub admin visiting is still a visitor
                status, reply = await api(method, path, body, headers=self.as_user(visitor))
                assert status == 403, (visitor, method, path)
                # Not "visiting a server shared by its owner": root is a hub admin who
                # opened alice's server, and nobody shared it with them.
                assert reply["message"] == (
                    f"{visitor!r} is not the owner of this server ('alice' is): MCP "
                    "connections and tokens are personal, so use them from your own server."
                )
        status, listing = await api("GET", tokens, headers=self.as_user("alice"))
        assert [t["id"] for t in listing["tokens"]] == [created["id"]]

    async def test_a_visitor_can_neither_see_nor_decide_the_owners_approvals(
        self, api: Api, jp_serverapp: Any
    ) -> None:
        runtime = jp_serverapp.web_app.settings["dodo"]
        approvals = "dodo/api/user/approvals"
        await api("GET", approvals, headers=self.as_user("alice"))  # alice's lab is open
        held = asyncio.ensure_future(
            runtime.approvals.ask(
                "alice",
                server_id="gh",
                tool="delete_repo",
                arguments={"repo": "x"},
                agent={},
                session_key="t",
            )
        )
        await asyncio.sleep(0.1)
        (call,) = (await api("GET", approvals, headers=self.as_user("alice")))[1]["calls"]
        for method, path, body in [
            ("GET", approvals, None),
            ("POST", f"{approvals}/{call['id']}", {"decision": "once"}),
            ("GET", "dodo/api/user/tool-calls", None),
            ("POST", "dodo/api/mcp/tools/gh__delete_repo/accept", {"digest": "d"}),
        ]:
            for visitor in ("bob", "root"):
                status, reply = await api(method, path, body, headers=self.as_user(visitor))
                assert status == 403, (visitor, method, path)
        assert not held.done()
        decided = {"decision": "deny"}
        status, _ = await api(
            "POST", f"{approvals}/{call['id']}", decided, headers=self.as_user("alice")
        )
        assert status == 200 and await held == "denied"
