"""REST: a catalog entry this server will not use is flagged in the admin API, with the
reason and what to change (``not_accepted``), never dropped silently.

In hub-catalog mode the catalog service may allow what the user servers refuse (here:
plain-http loopback URLs): the entry stays out of the users' catalog and the owner's
admin listing flags it. In local mode, configured entries this server refuses are
listed as ``left_out``, and stored entries whose address the SSRF guard refuses are
flagged. Run by pytest-jupyter on the server's own loop (not marked asyncio).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Api
from .hub_identity import hub_server_config, hub_user
from .hub_service import ServiceRunner
from .test_hub_catalog_mode import SERVER_TOKEN, as_user, server_token_is, service

__all__ = ["service"]  # the hub catalog service fixture, started on the server's loop

ADMIN = "dodo/api/admin/approved-mcps"
CATALOG = "dodo/api/mcp-catalog"
LOOPBACK_HINT = "DodoApp.allow_insecure_loopback=True"


@pytest.fixture
def jp_server_config(
    dodo_config: dict[str, Any],
    service: ServiceRunner,
    hub: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """A user server that refuses plain-http loopback URLs, under a catalog service that
    allows them (:class:`ServiceRunner` does)."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVER_TOKEN)
    hub(alice=hub_user("alice", scopes=["access:servers!server=alice/", "custom:dodo:admin"]))
    return hub_server_config(
        {**dodo_config, "allow_insecure_loopback": False},
        hub_catalog_url=service.url,
        hub_catalog_timeout=2.0,
        hygiene_interval=0.0,
    )


async def test_an_entry_the_user_server_refuses_is_flagged_for_the_admin(
    api: Api, service: ServiceRunner
) -> None:
    server_token_is(service, admin=True)
    await service.hub.catalog.create("admin", {"id": "shared", "url": "https://x.example/mcp"})
    await service.hub.catalog.create("admin", {"id": "dev", "url": "http://127.0.0.1:8123/mcp"})

    # Users of this server do not see it...
    status, catalog = await api("GET", CATALOG, headers=as_user("alice"))
    assert status == 200 and [e["id"] for e in catalog["entries"]] == ["shared"]
    # ...and the admin sees why, and what to change.
    status, listing = await api("GET", ADMIN, headers=as_user("alice"))
    assert status == 200, listing
    flags = {e["id"]: e["not_accepted"] for e in listing["entries"]}
    assert flags["shared"] is None
    assert flags["dev"].startswith("This server leaves it out of its users' catalog.")
    assert "plain http to a loopback host" in flags["dev"] and LOOPBACK_HINT in flags["dev"]
    assert listing["left_out"] == []

    # An entry the admin adds through this server is judged in the answer at once.
    status, created = await api(
        "POST", ADMIN, {"id": "dev2", "url": "http://localhost:9/mcp"}, headers=as_user("alice")
    )
    assert status == 201 and LOOPBACK_HINT in created["not_accepted"]
    status, fixed = await api(
        "PUT", f"{ADMIN}/dev2", {"url": "https://dev2.example/mcp"}, headers=as_user("alice")
    )
    assert status == 200 and fixed["not_accepted"] is None
    status, one = await api("GET", f"{ADMIN}/dev", headers=as_user("alice"))
    assert status == 200 and one["not_accepted"] == flags["dev"]


class TestLocalCatalog:
    """Without a hub: the server's own catalog, judged by its own settings."""

    @pytest.fixture
    def jp_server_config(self, dodo_config: dict[str, Any]) -> dict[str, Any]:
        catalog = [
            {"id": "fine", "url": "https://fine.example/mcp"},
            {"id": "plain", "url": "http://127.0.0.1:8123/mcp"},
            {"id": "here", "url": "https://127.0.0.1:8443/mcp"},
            {"id": "private", "url": "https://10.1.2.3/mcp"},
        ]
        return {
            "ServerApp": {"jpserver_extensions": {"dodo_jupyter": True}},
            "DodoApp": {**dodo_config, "allow_insecure_loopback": False, "catalog": catalog},
        }

    async def test_configured_entries_it_refuses_are_listed_or_flagged(self, api: Api) -> None:
        status, listing = await api("GET", ADMIN)
        assert status == 200, listing
        # The entry validation refuses never reached the catalog: it is left out, named.
        (left_out,) = listing["left_out"]
        assert left_out["id"] == "plain"
        assert left_out["reason"].startswith("Not in the catalog: Invalid url: plain http")
        assert LOOPBACK_HINT in left_out["reason"]
        # Those whose address the guard refuses are in it, and flagged.
        flags = {e["id"]: e["not_accepted"] for e in listing["entries"]}
        assert set(flags) == {"fine", "here", "private"} and flags["fine"] is None
        assert flags["here"] == (
            "Users of this server cannot connect to it: 127.0.0.1 is this machine (loopback), "
            f"which this server refuses; set {LOOPBACK_HINT} on this server (development "
            "only), or give the entry a URL it can reach."
        )
        assert flags["private"] == (
            "Users of this server cannot connect to it: 10.1.2.3 is a private address "
            "(10.0.0.0/8), and dodo only connects to public addresses; give a public URL."
        )
