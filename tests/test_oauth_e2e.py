"""OAuth end to end through the REST API, against the demo server (a real MCP server and
authorization server built from the MCP SDK's own classes) on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from tornado.httpclient import HTTPClientError

from dodo_jupyter.connections import MAX_STEP_UPS
from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server
from dodo_jupyter.exceptions import Conflict, NotFound
from dodo_jupyter.magics import ServerTable
from dodo_jupyter.oauth.discovery import Challenge
from dodo_jupyter.store.models import MCPConnection, OAuthClient, PendingAuth, utcnow

from .conftest import Api
from .hub_identity import hub_server_config, hub_user
from .oauth_peers import callback_query, consent

START = "dodo/api/mcp/start-auth"
SERVERS = "dodo/api/mcp/servers"
REFRESH = "dodo/api/mcp/refresh-state"


@pytest.fixture
def demo() -> Iterator[DemoHandle]:
    with running_demo_server(DemoConfig(port=0)) as handle:
        yield handle


@pytest.fixture
def dodo_config(dodo_config: dict[str, Any], demo: DemoHandle) -> dict[str, Any]:
    return {
        **dodo_config,
        "catalog": [{"id": "demo", "url": demo.url, "description": "The demo server"}],
    }


async def fetch_page(jp_fetch: Any, query: dict[str, str], **kwargs: Any) -> tuple[int, str]:
    try:
        response = await jp_fetch("dodo", "oauth", "callback", params=query, **kwargs)
    except HTTPClientError as e:
        assert e.response is not None
        response = e.response
    return response.code, response.body.decode()


async def connect(api: Api, jp_fetch: Any) -> str:
    """start-auth → consent → callback; returns the connection id."""
    status, started = await api("POST", START, {"catalog_id": "demo"})
    assert status == 200 and started["state"] == "authenticating", started
    code, page = await fetch_page(jp_fetch, callback_query(await consent(started["authorize_url"])))
    assert code == 200, page
    return str(started["connection_id"])


def runtime_of(jp_serverapp: Any) -> Any:
    return jp_serverapp.web_app.settings["dodo"]


async def expire_access_token(runtime: Any, connection_id: str) -> None:
    """Move the access token's expiry into the past, as time would (in the database and
    in the token keeper's memory)."""

    def expire(session: Any) -> None:
        session.get(MCPConnection, connection_id).expires_at = utcnow() - timedelta(seconds=5)

    await runtime.store.db.write(expire)
    runtime.connections.keeper.fresh.forget(connection_id)


def stored_tokens(runtime: Any, connection_id: str) -> dict[str, Any]:
    row = runtime.store.db.read_sync(lambda s: s.get(MCPConnection, connection_id))
    return json.loads(runtime.store.vault.decrypt(row.tokens_enc))


async def test_connect_through_consent_lists_tools(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    status, started = await api("POST", START, {"catalog_id": "demo"})
    assert status == 200 and started["state"] == "authenticating"
    params = parse_qs(urlsplit(started["authorize_url"]).query)
    assert params["code_challenge_method"] == ["S256"] and params["code_challenge"]
    assert params["resource"] == [demo.url]
    assert params["response_type"] == ["code"] and params["state"][0]
    assert params["redirect_uri"][0].endswith("/dodo/oauth/callback")
    assert "mcp:tools" in params["scope"][0]

    callback = await consent(started["authorize_url"])
    query = callback_query(callback)
    assert query["iss"] == demo.base_url
    code, page = await fetch_page(jp_fetch, query)
    assert code == 200 and "Connected" in page, page
    assert "postMessage(message, window.location.origin)" in page
    assert query["code"] not in page and query["state"] not in page

    status, body = await api("GET", SERVERS)
    (server,) = body["servers"]
    assert server["id"] == started["connection_id"] and server["catalog_id"] == "demo"
    assert server["state"] == "connected" and server["error"] is None
    assert server["tool_count"] >= 4 and "mcp:tools" in server["scopes"]
    assert server["expires_at"] is not None and server["auth_type"] == "oauth"
    stats = demo.stats.snapshot()
    assert stats["token_exchanges"] == 1 and stats["registered_clients"] == 1
    assert stats["resources_seen"]["token"] == [demo.url]

    # Connected already: no new sign-in.
    status, again = await api("POST", START, {"catalog_id": "demo"})
    assert again == {"state": "connected", "connection_id": started["connection_id"]}
    assert demo.stats.snapshot()["token_exchanges"] == 1

    # Secrets are stored encrypted only.
    runtime = runtime_of(jp_serverapp)
    tokens = stored_tokens(runtime, started["connection_id"])
    row = runtime.store.db.read_sync(lambda s: s.get(MCPConnection, started["connection_id"]))
    assert tokens["access_token"] not in row.tokens_enc
    assert tokens["access_token"] not in json.dumps(body)


async def test_expired_token_is_refreshed_without_login(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    before = stored_tokens(runtime, conn_id)

    await expire_access_token(runtime, conn_id)
    status, again = await api("POST", START, {"catalog_id": "demo"})
    assert again["state"] == "connected"
    after = stored_tokens(runtime, conn_id)
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # rotated, and the new one kept
    stats = demo.stats.snapshot()
    assert stats["refreshes"] == 1 and stats["token_exchanges"] == 1
    assert stats["resources_seen"]["refresh"] == [demo.url]
    status, body = await api("GET", SERVERS)
    assert body["servers"][0]["state"] == "connected"


async def test_a_fresh_access_token_is_served_from_memory_until_something_ends_it(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    keeper = runtime.connections.keeper
    first = await keeper.access_token(conn_id)
    reads: list[Any] = []
    read = runtime.store.db.read

    async def counted(work: Any) -> Any:
        reads.append(work)
        return await read(work)

    monkeypatch.setattr(runtime.store.db, "read", counted)
    for _ in range(5):
        assert await keeper.access_token(conn_id) == first
    assert reads == []  # no database read, no decryption per call
    # The server rejected it (401): read again, refreshed, and the new one kept.
    second = await keeper.access_token(conn_id, stale=first)
    assert second != first and demo.stats.snapshot()["refreshes"] == 1
    reads.clear()
    assert await keeper.access_token(conn_id) == second and reads == []
    # A disconnect ends it.
    status, _ = await api("POST", "dodo/api/mcp/delete-auth", {"connection_id": conn_id})
    assert status == 200
    with pytest.raises(NotFound):
        await keeper.access_token(conn_id)


async def test_rejected_access_token_is_refreshed_once(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    access = stored_tokens(runtime, conn_id)["access_token"]
    await demo.provider.revoke_token(await demo.provider.load_access_token(access))
    # Revoking one token of the pair kills the grant at the demo, so the refresh fails too:
    # the connection must ask for a new sign-in with a clear message, not error out.
    status, body = await api("POST", "dodo/api/mcp/refresh-state", {"connection_id": conn_id})
    assert status == 200 and body["state"] == "needs_auth"
    assert "connect again" in body["error"]


async def test_concurrent_refreshes_are_serialized(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    stale = stored_tokens(runtime, conn_id)["access_token"]
    keeper = runtime.connections.keeper
    tokens = await asyncio.gather(*(keeper.access_token(conn_id, stale=stale) for _ in range(8)))
    assert len(set(tokens)) == 1 and tokens[0] != stale
    assert demo.stats.snapshot()["refreshes"] == 1


async def test_invalid_grant_leads_to_needs_auth(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    refresh = stored_tokens(runtime, conn_id)["refresh_token"]
    client_id = runtime.store.db.read_sync(
        lambda s: s.scalars(__import__("sqlalchemy").select(OAuthClient.client_id)).one()
    )
    client = await demo.provider.get_client(client_id)
    await demo.provider.revoke_token(await demo.provider.load_refresh_token(client, refresh))

    await expire_access_token(runtime, conn_id)
    status, started = await api("POST", START, {"catalog_id": "demo"})
    assert status == 200 and started["state"] == "authenticating"  # a new sign-in, not a 500
    status, body = await api("GET", SERVERS)
    assert body["servers"][0]["state"] == "authenticating"


async def test_delete_auth_revokes_at_the_authorization_server(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    tokens = stored_tokens(runtime, conn_id)
    status, body = await api("POST", "dodo/api/mcp/delete-auth", {"connection_id": conn_id})
    assert status == 200 and body == {"connection_id": conn_id, "revoked": True}
    assert await demo.provider.load_access_token(tokens["access_token"]) is None
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            demo.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={
                "Authorization": f"Bearer {tokens['access_token']}",
                "Accept": "application/json, text/event-stream",
            },
        )
    assert answer.status_code == 401
    assert (await api("GET", SERVERS))[1] == {"servers": []}
    assert runtime.store.db.read_sync(lambda s: s.query(OAuthClient).count()) == 0
    status, reply = await api("POST", "dodo/api/mcp/delete-auth", {"connection_id": conn_id})
    assert status == 404


async def test_callback_state_rules(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    status, started = await api("POST", START, {"catalog_id": "demo"})
    query = callback_query(await consent(started["authorize_url"]))

    code, page = await fetch_page(jp_fetch, {k: v for k, v in query.items() if k != "state"})
    assert code == 400 and "no &#x27;state&#x27;" in page
    code, page = await fetch_page(jp_fetch, {**query, "state": "forged"})
    assert code == 400 and "unknown or was already used" in page

    code, page = await fetch_page(jp_fetch, query)
    assert code == 200
    code, page = await fetch_page(jp_fetch, query)  # reused
    assert code == 400 and "already used" in page
    assert demo.stats.snapshot()["token_exchanges"] == 1


async def test_expired_state_is_refused(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    status, started = await api("POST", START, {"catalog_id": "demo"})
    query = callback_query(await consent(started["authorize_url"]))
    runtime = runtime_of(jp_serverapp)

    def age(session: Any) -> None:
        for row in session.query(PendingAuth):
            row.expires_at = utcnow() - timedelta(seconds=1)

    await runtime.store.db.write(age)
    code, page = await fetch_page(jp_fetch, query)
    assert code == 400 and "expired" in page
    assert demo.stats.snapshot()["token_exchanges"] == 0


async def test_wrong_iss_is_refused(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    status, started = await api("POST", START, {"catalog_id": "demo"})
    query = callback_query(await consent(started["authorize_url"]))
    code, page = await fetch_page(jp_fetch, {**query, "iss": "http://127.0.0.1:1"})
    assert code == 502 and "RFC 9207" in page
    code, page = await fetch_page(jp_fetch, {k: v for k, v in query.items() if k != "iss"})
    assert code == 400  # the state was used up by the refused attempt
    assert demo.stats.snapshot()["token_exchanges"] == 0
    status, body = await api("GET", SERVERS)
    assert body["servers"][0]["state"] == "error" and "RFC 9207" in body["servers"][0]["error"]


async def test_missing_iss_is_refused_when_advertised(
    api: Api, jp_fetch: Any, demo: DemoHandle
) -> None:
    status, started = await api("POST", START, {"catalog_id": "demo"})
    query = callback_query(await consent(started["authorize_url"]))
    code, page = await fetch_page(jp_fetch, {k: v for k, v in query.items() if k != "iss"})
    assert code == 502 and "RFC 9207" in page


async def test_denied_consent_and_markup_in_errors(
    api: Api, jp_fetch: Any, demo: DemoHandle
) -> None:
    status, started = await api("POST", START, {"catalog_id": "demo"})
    query = callback_query(await consent(started["authorize_url"], decision="deny"))
    assert query["error"] == "access_denied"
    evil = {**query, "error_description": "<script>alert(1)</script><b>x</b>"}
    code, page = await fetch_page(jp_fetch, evil)
    assert code == 502
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "\\u003cscript\\u003e" in page  # escaped inside the postMessage JSON too
    status, body = await api("GET", SERVERS)
    assert body["servers"][0]["state"] == "needs_auth"


async def test_step_up_asks_for_the_union_of_scopes(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    service = runtime.connections
    row = await service.get(runtime.resolver.owner, conn_id)
    upstream = service.upstream(row, await service.headers_for(row))
    from dodo_jupyter.upstream import AuthRejected

    with pytest.raises(AuthRejected) as info:
        await upstream.call_tool("admin_report", {})
    assert info.value.http_status == 403 and info.value.challenge.error == "insufficient_scope"

    url = await service.step_up(runtime.resolver.owner, conn_id, info.value.challenge)
    scopes = parse_qs(urlsplit(url).query)["scope"][0].split()
    assert set(scopes) >= {"mcp:tools", "mcp:admin"}
    code, page = await fetch_page(jp_fetch, callback_query(await consent(url)))
    assert code == 200, page
    row = await service.get(runtime.resolver.owner, conn_id)
    assert "mcp:admin" in row.scopes.split()
    result = await service.upstream(row, await service.headers_for(row)).call_tool(
        "admin_report", {}
    )
    assert result["isError"] is False  # the server's result, as it sent it


async def test_step_up_has_a_limit(api: Api, jp_fetch: Any, jp_serverapp: Any) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    service = runtime.connections
    from dodo_jupyter.exceptions import Conflict
    from dodo_jupyter.oauth.discovery import Challenge

    challenge = Challenge(scope="mcp:admin", error="insufficient_scope")
    for _ in range(2):
        await service.step_up(runtime.resolver.owner, conn_id, challenge)
    with pytest.raises(Conflict, match="step-ups"):
        await service.step_up(runtime.resolver.owner, conn_id, challenge)
    status, body = await api("GET", SERVERS)
    assert body["servers"][0]["state"] == "error"


async def test_a_step_up_keeps_the_connection_and_a_denial_keeps_the_sign_in(
    api: Api, jp_fetch: Any, jp_serverapp: Any
) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    service, owner = runtime.connections, runtime.resolver.owner
    challenge = Challenge(scope="mcp:tools mcp:admin", error="insufficient_scope")
    url = await service.step_up(owner, conn_id, challenge)
    status, body = await api("GET", SERVERS)
    assert body["servers"][0]["state"] == "connected"  # usable while the user decides
    code, page = await fetch_page(jp_fetch, callback_query(await consent(url, decision="deny")))
    assert code == 502 and "did not authorize" in page
    status, body = await api("GET", SERVERS)
    (server,) = body["servers"]
    assert server["state"] == "connected" and "mcp:admin" not in server["scopes"]
    row = await service.get(owner, conn_id)
    assert await service.upstream(row, await service.headers_for(row)).list_tools()


class TestStepUpCount:
    """Step-ups "in a row" are those asking for no scope not asked for already."""

    @pytest.fixture
    def demo(self) -> Iterator[DemoHandle]:
        scopes = ["mcp:tools", "mcp:admin", "mcp:extra"]
        with running_demo_server(DemoConfig(port=0, scopes_supported=scopes)) as handle:
            yield handle

    async def test_a_step_up_for_a_new_scope_starts_the_count_again(
        self, api: Api, jp_fetch: Any, jp_serverapp: Any
    ) -> None:
        conn_id = await connect(api, jp_fetch)
        runtime = runtime_of(jp_serverapp)
        service, owner = runtime.connections, runtime.resolver.owner
        admin = Challenge(scope="mcp:admin", error="insufficient_scope")
        extra = Challenge(scope="mcp:extra", error="insufficient_scope")
        for _ in range(MAX_STEP_UPS):
            await service.step_up(owner, conn_id, admin)
        url = await service.step_up(owner, conn_id, extra)  # something new: not in a row
        assert "mcp:extra" in parse_qs(urlsplit(url).query)["scope"][0].split()
        await service.step_up(owner, conn_id, extra)
        with pytest.raises(Conflict, match=f"after {MAX_STEP_UPS} step-ups"):
            await service.step_up(owner, conn_id, extra)


class TestSecondUser:
    """On a shared hub server the visitor can neither see nor finish the owner's flow."""

    @pytest.fixture(autouse=True)
    def _users(self, hub: Callable[..., None]) -> None:
        hub(alice=hub_user("alice"), bob=hub_user("bob"))

    @pytest.fixture
    def jp_server_config(self, dodo_config: dict[str, Any]) -> dict[str, Any]:
        return hub_server_config(dodo_config)

    async def test_visitor_cannot_see_or_complete(
        self, api: Api, jp_fetch: Any, demo: DemoHandle
    ) -> None:
        alice = {"Authorization": "token alice"}
        bob = {"Authorization": "token bob"}
        status, started = await api("POST", START, {"catalog_id": "demo"}, headers=alice)
        assert status == 200
        assert (await api("POST", START, {"catalog_id": "demo"}, headers=bob))[0] == 403
        assert (await api("GET", SERVERS, headers=bob))[0] == 403
        conn = {"connection_id": started["connection_id"]}
        assert (await api("POST", "dodo/api/mcp/delete-auth", conn, headers=bob))[0] == 403

        query = callback_query(await consent(started["authorize_url"]))
        code, page = await fetch_page(jp_fetch, query, headers=bob)
        assert code == 403 and "another user" in page
        assert demo.stats.snapshot()["token_exchanges"] == 0
        code, page = await fetch_page(jp_fetch, query, headers=alice)  # still usable by alice
        assert code == 200, page
        status, body = await api("GET", SERVERS, headers=alice)
        assert body["servers"][0]["state"] == "connected"


# -- an authorization server that issues no refresh token ---------------------------------


async def gateway_tools(runtime: Any, gateway_url: str) -> list[str]:
    """The tool names ``/dodo/mcp`` lists to the owner (a 2025-11-25 session)."""
    token = (await runtime.tokens.create(runtime.resolver.owner, "test")).token
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=10) as http,
        streamable_http_client(gateway_url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return [tool.name for tool in (await session.list_tools()).tools]


def echo_of(names: list[str]) -> str:
    """The demo's ``echo`` tool among the gateway's ``names``."""
    found = [name for name in names if name.endswith("__echo")]
    assert len(found) == 1, names
    return found[0]


async def try_it(api: Api, name: str) -> dict[str, Any]:
    """The REST "try it" answer to calling ``name`` with ``text="hi"``."""
    status, result = await api(
        "POST", "dodo/api/mcp/tools/call", {"name": name, "arguments": {"text": "hi"}}
    )
    assert status == 200, result
    return dict(result)


class TestNoRefreshToken:
    """The MCP SDK's ``simple-auth`` shape: 1-hour access tokens and no refresh token.
    The connection stays usable while its token is valid, with a warning of the sign-in
    it will need."""

    @pytest.fixture
    def demo(self) -> Iterator[DemoHandle]:
        config = DemoConfig(port=0, access_token_ttl=3600, issue_refresh_tokens=False)
        with running_demo_server(config) as handle:
            yield handle

    async def test_refresh_state_keeps_a_valid_sign_in(
        self, api: Api, jp_fetch: Any, jp_serverapp: Any, gateway_url: str, demo: DemoHandle
    ) -> None:
        conn_id = await connect(api, jp_fetch)
        runtime = runtime_of(jp_serverapp)
        assert "refresh_token" not in stored_tokens(runtime, conn_id)

        status, server = await api("POST", REFRESH, {"connection_id": conn_id})
        assert status == 200, server
        assert server["state"] == "connected" and server["error"] is None, server
        assert server["sign_in_needed_at"] == server["expires_at"] is not None
        assert "no refresh token" in server["warning"]
        assert demo.stats.snapshot()["token_exchanges"] == 1

        status, body = await api("GET", SERVERS)
        (listed,) = body["servers"]
        assert listed["state"] == "connected" and listed["warning"] == server["warning"]
        assert "no refresh token" in repr(ServerTable(body["servers"]))

        # The gateway, the REST API and Connect agree: the connection is usable.
        names = await gateway_tools(runtime, gateway_url)
        echo = echo_of(names)
        assert not (await try_it(api, echo)).get("isError")
        status, again = await api("POST", START, {"catalog_id": "demo"})
        assert again == {"state": "connected", "connection_id": conn_id}
        assert demo.stats.snapshot()["token_exchanges"] == 1


class TestSignInRunsOut:
    """Without a refresh token the connection turns ``needs_auth`` when its access token
    expires, everywhere at once."""

    @pytest.fixture
    def demo(self) -> Iterator[DemoHandle]:
        config = DemoConfig(port=0, access_token_ttl=3, issue_refresh_tokens=False)
        with running_demo_server(config) as handle:
            yield handle

    async def test_the_connection_needs_auth_once_the_token_expired(
        self, api: Api, jp_fetch: Any, jp_serverapp: Any, gateway_url: str
    ) -> None:
        conn_id = await connect(api, jp_fetch)
        runtime = runtime_of(jp_serverapp)
        names = await gateway_tools(runtime, gateway_url)
        echo = echo_of(names)
        status, body = await api("GET", SERVERS)
        (server,) = body["servers"]
        assert server["state"] == "connected" and server["warning"], server

        expires = datetime.fromisoformat(server["sign_in_needed_at"])
        await asyncio.sleep(max(0.0, (expires - utcnow()).total_seconds()) + 0.3)

        assert echo not in await gateway_tools(runtime, gateway_url)
        assert (await try_it(api, echo)).get("isError")
        status, body = await api("GET", SERVERS)
        (server,) = body["servers"]
        assert server["state"] == "needs_auth" and "no refresh token" in server["error"]
        assert server["sign_in_needed_at"] is None and server["warning"] is None
        status, server = await api("POST", REFRESH, {"connection_id": conn_id})
        assert server["state"] == "needs_auth"
        status, again = await api("POST", START, {"catalog_id": "demo"})
        assert again["state"] == "authenticating" and again["authorize_url"]
