"""Smoke tests on a real JupyterHub: who dodo thinks is calling alice's server.

alice owns the server; ``admin`` is a hub admin (a visitor with admin rights); bob can
reach it only while alice shares it, and then as a visitor: the catalog is his to read,
nothing personal is.
"""

from __future__ import annotations

import pytest

from .harness import Hub

pytestmark = pytest.mark.hub_e2e

ME = "dodo/api/me"
TOKENS = "dodo/api/user/mcp-tokens"
ADMIN = "dodo/api/admin/approved-mcps"
VISITOR_MESSAGE = "is not the owner of this server ('alice' is)"
NOT_ADMIN_MESSAGE = "is not a dodo administrator"


@pytest.fixture(scope="module")
def alice(hub: Hub) -> Hub:
    """The hub with alice's server running."""
    hub.spawn("alice")
    return hub


def test_owner(alice: Hub) -> None:
    status, me = alice.call("alice", "GET", ME, alice.user_token("alice"))
    assert (status, me) == (
        200,
        {"username": "alice", "mode": "hub", "is_owner": True, "is_admin": False},
    ), alice.log_tail()


def test_owner_server_token(alice: Hub) -> None:
    # The token the hub gave the server itself (what its kernels and extensions use).
    status, me = alice.call("alice", "GET", ME, alice.server_token("alice"))
    assert status == 200, alice.log_tail()
    assert me["username"] == "alice" and me["is_owner"] is True


def test_hub_admin_is_a_visitor_and_dodo_admin(alice: Hub) -> None:
    status, me = alice.call("alice", "GET", ME, alice.user_token("admin"))
    assert (status, me) == (
        200,
        {"username": "admin", "mode": "hub", "is_owner": False, "is_admin": True},
    ), alice.log_tail()


def test_other_user_without_share_is_refused_by_jupyterhub(alice: Hub) -> None:
    status, body = alice.call("alice", "GET", ME, alice.user_token("bob"))
    assert status == 403
    assert VISITOR_MESSAGE not in str(body)  # refused before dodo sees the request


def test_shared_visitor_sees_nothing_personal(alice: Hub) -> None:
    bob = alice.user_token("bob")  # before the share: an existing token gains it
    alice.share("alice", "bob")
    try:
        status, me = alice.call("alice", "GET", ME, bob)
        assert (status, me) == (
            200,
            {"username": "bob", "mode": "hub", "is_owner": False, "is_admin": False},
        ), alice.log_tail()

        status, body = alice.call("alice", "GET", TOKENS, bob)
        assert status == 403
        assert body["error"] == "forbidden"
        assert body["message"].startswith("'bob' " + VISITOR_MESSAGE)

        status, body = alice.call(
            "alice", "POST", ADMIN, bob, {"id": "by-bob", "url": "https://b.test/"}
        )
        assert status == 403
        assert NOT_ADMIN_MESSAGE in body["message"]

        status, body = alice.call("alice", "GET", TOKENS, alice.user_token("alice"))
        assert status == 200, body
    finally:
        alice.unshare("alice", "bob")
    assert alice.call("alice", "GET", ME, bob)[0] == 403


def test_only_admins_edit_the_catalog(alice: Hub) -> None:
    entry = {"id": "hub-smoke", "url": "https://hub-smoke.example.com/mcp"}
    alice_token = alice.user_token("alice")

    status, body = alice.call("alice", "POST", ADMIN, alice_token, entry)
    assert status == 403  # the owner is no dodo administrator
    assert body["message"].startswith("'alice' " + NOT_ADMIN_MESSAGE)

    status, body = alice.call("alice", "POST", ADMIN, alice.user_token("admin"), entry)
    assert status == 201, (body, alice.log_tail())
    assert body["id"] == "hub-smoke"

    status, catalog = alice.call("alice", "GET", "dodo/api/mcp-catalog", alice_token)
    assert status == 200
    assert [e["id"] for e in catalog["entries"]] == ["hub-smoke"]
