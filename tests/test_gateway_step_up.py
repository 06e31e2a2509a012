"""Step-up authorization through the gateway, end to end: a real Jupyter server with dodo,
the demo OAuth MCP server (whose ``admin_report`` needs the ``mcp:admin`` scope) on
loopback, the MCP SDK's client on the gateway, and the consent page clicked as a person
would."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dodo_jupyter.connections import MAX_STEP_UPS
from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server
from dodo_jupyter.oauth.discovery import Challenge

from .conftest import Api
from .hub_identity import hub_server_config, hub_user
from .oauth_peers import callback_query, consent
from .test_gateway_protocol import session
from .test_oauth_e2e import connect, fetch_page, runtime_of, stored_tokens

SERVERS = "dodo/api/mcp/servers"
CALL = "dodo/api/mcp/tools/call"
URL = re.compile(r"https?://\S+?(?= \(the link)")

pytestmark = pytest.mark.usefixtures("upstreams_closed_first")


@pytest.fixture
def demo() -> Iterator[DemoHandle]:
    with running_demo_server(DemoConfig(port=0)) as handle:
        yield handle


@pytest.fixture
def dodo_config(dodo_config: dict[str, Any], demo: DemoHandle) -> dict[str, Any]:
    return {**dodo_config, "catalog": [{"id": "demo", "url": demo.url}]}


async def gateway_token(api: Api) -> str:
    status, created = await api("POST", "dodo/api/user/mcp-tokens", {"label": "step-up"})
    assert status == 201, created
    return str(created["token"])


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


def consent_url_in(text: str) -> str:
    found = URL.search(text)
    assert found, text
    return found.group(0)


async def server_row(api: Api) -> dict[str, Any]:
    status, body = await api("GET", SERVERS)
    assert status == 200, body
    (server,) = body["servers"]
    return dict(server)


async def approve(jp_fetch: Any, url: str, decision: str = "approve") -> tuple[int, str]:
    """A person opens the consent URL, clicks the decision, and the browser follows the
    redirect to dodo's callback page."""
    return await fetch_page(jp_fetch, callback_query(await consent(url, decision)))


async def test_a_scope_challenge_reaches_the_user_and_consent_lets_the_call_through(
    api: Api, jp_fetch: Any, jp_serverapp: Any, gateway_url: str, demo: DemoHandle
) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    async with session(gateway_url, await gateway_token(api)) as client:
        refused = await client.call_tool("demo__admin_report", {})
        assert refused.is_error
        text = text_of(refused)
        assert text.startswith("demo: this tool needs more access")
        assert "Open this URL to grant mcp:admin, then call the tool again: " in text
        url = consent_url_in(text)
        query = parse_qs(urlsplit(url).query)
        assert set(query["scope"][0].split()) == {"mcp:tools", "mcp:admin"}
        assert query["code_challenge_method"] == ["S256"] and query["state"][0]
        # An authorization URL, nothing more: no token, no client secret, no verifier.
        tokens = stored_tokens(runtime, conn_id)
        assert set(query) <= {
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "code_challenge",
            "code_challenge_method",
            "scope",
            "resource",
        }
        assert tokens["access_token"] not in text and tokens["refresh_token"] not in text

        # The owner sees the connection needing more access, with the same link.
        server = await server_row(api)
        assert server["state"] == "needs_scope" and server["error"] is None
        assert server["step_up"]["consent_url"] == url
        assert server["step_up"]["missing"] == ["mcp:admin"]
        assert "mcp:admin" not in server["scopes"]
        # Meanwhile the connection works for what it was granted.
        added = await client.call_tool("demo__add", {"a": 2, "b": 3})
        assert not added.is_error and "5" in text_of(added)
        # Calling again before consenting gives the same link: no second flow.
        again = await client.call_tool("demo__admin_report", {})
        assert consent_url_in(text_of(again)) == url

        step_ups = runtime.gateway.step_ups
        challenge = Challenge(scope="mcp:tools mcp:admin", error="insufficient_scope")
        step_up = await step_ups.start(runtime.resolver.owner, conn_id, challenge)
        assert step_up.consent_url == url
        waiting = asyncio.create_task(step_ups.wait_granted(step_up, 30))
        await asyncio.sleep(0.1)
        assert not waiting.done()

        code, page = await approve(jp_fetch, url)
        assert code == 200 and "Connected" in page, page
        assert await asyncio.wait_for(waiting, 10) is True
        server = await server_row(api)
        assert server["state"] == "connected" and server["step_up"] is None
        assert "mcp:admin" in server["scopes"]

        report = await client.call_tool("demo__admin_report", {})
        assert not report.is_error, text_of(report)
        assert demo.stats.snapshot()["step_up_challenges"] == 2


async def test_try_it_shows_the_link_and_a_denied_consent_keeps_the_connection(
    api: Api, jp_fetch: Any, jp_serverapp: Any
) -> None:
    conn_id = await connect(api, jp_fetch)
    status, result = await api("POST", CALL, {"name": "demo__admin_report", "arguments": {}})
    assert status == 200 and result["isError"]
    url = consent_url_in(result["content"][0]["text"])
    runtime = runtime_of(jp_serverapp)
    challenge = Challenge(scope="mcp:admin", error="insufficient_scope")
    step_up = await runtime.gateway.step_ups.start(runtime.resolver.owner, conn_id, challenge)

    code, page = await approve(jp_fetch, url, decision="deny")
    assert code == 502 and "did not authorize" in page
    assert await runtime.gateway.step_ups.wait_granted(step_up, 5) is False
    # Denying more access is not signing out: the connection works as before.
    server = await server_row(api)
    assert server["state"] == "connected" and server["step_up"] is None
    status, added = await api("POST", CALL, {"name": "demo__add", "arguments": {"a": 1, "b": 1}})
    assert not added.get("isError") and "2" in added["content"][0]["text"]


class TestWithheldScope:
    """The authorization server never grants ``mcp:admin`` (RFC 6749 §3.3 lets it grant
    less than asked), so every consent leaves the server refusing: the step-ups stop."""

    @pytest.fixture
    def demo(self) -> Iterator[DemoHandle]:
        with running_demo_server(DemoConfig(port=0, withheld_scopes=["mcp:admin"])) as handle:
            yield handle

    async def test_the_step_up_limit_holds(
        self, api: Api, jp_fetch: Any, jp_serverapp: Any, gateway_url: str, demo: DemoHandle
    ) -> None:
        conn_id = await connect(api, jp_fetch)
        runtime = runtime_of(jp_serverapp)
        owner = runtime.resolver.owner
        async with session(gateway_url, await gateway_token(api)) as client:
            urls = []
            for _ in range(MAX_STEP_UPS):
                refused = await client.call_tool("demo__admin_report", {})
                urls.append(consent_url_in(text_of(refused)))
                challenge = Challenge(scope="mcp:admin", error="insufficient_scope")
                step_up = await runtime.gateway.step_ups.start(owner, conn_id, challenge)
                code, page = await approve(jp_fetch, urls[-1])
                assert code == 200, page
                assert await runtime.gateway.step_ups.wait_granted(step_up, 5) is False
                assert "mcp:admin" not in (await server_row(api))["scopes"]
            assert len(set(urls)) == MAX_STEP_UPS
            exchanges = demo.stats.snapshot()["token_exchanges"]

            for _ in range(2):  # refused at once, every time: no new flow, no link
                stopped = await client.call_tool("demo__admin_report", {})
                text = text_of(stopped)
                assert stopped.is_error and "http" not in text
                assert f"still wants more scopes after {MAX_STEP_UPS} step-ups" in text
                assert "ask its administrator" in text
        server = await server_row(api)
        assert server["state"] == "error" and "step-ups" in server["error"]
        assert server["step_up"] is None
        assert demo.stats.snapshot()["token_exchanges"] == exchanges
        # Connecting anew starts the count again.
        status, again = await api("POST", "dodo/api/mcp/start-auth", {"catalog_id": "demo"})
        assert again["state"] == "connected"
        status, result = await api("POST", CALL, {"name": "demo__admin_report", "arguments": {}})
        assert "Open this URL to grant mcp:admin" in result["content"][0]["text"]


class TestOnlyTheOwner:
    """On a shared hub server a visitor neither sees the owner's link nor completes it."""

    @pytest.fixture(autouse=True)
    def _users(self, hub: Callable[..., None]) -> None:
        hub(alice=hub_user("alice"), bob=hub_user("bob"))

    @pytest.fixture
    def jp_server_config(self, dodo_config: dict[str, Any]) -> dict[str, Any]:
        return hub_server_config(dodo_config)

    async def test_a_visitor_cannot_see_or_use_the_consent_link(
        self, api: Api, jp_fetch: Any, jp_serverapp: Any
    ) -> None:
        alice = {"Authorization": "token alice"}
        bob = {"Authorization": "token bob"}
        start = {"catalog_id": "demo"}
        status, started = await api("POST", "dodo/api/mcp/start-auth", start, headers=alice)
        code, page = await approve(jp_fetch, started["authorize_url"])
        assert code == 200, page
        call = {"name": "demo__admin_report", "arguments": {}}
        status, result = await api("POST", CALL, call, headers=alice)
        url = consent_url_in(result["content"][0]["text"])
        assert (await api("GET", SERVERS, headers=bob))[0] == 403
        assert (await api("POST", CALL, call, headers=bob))[0] == 403

        query = callback_query(await consent(url))
        code, page = await fetch_page(jp_fetch, query, headers=bob)
        assert code == 403 and "another user" in page
        status, body = await api("GET", SERVERS, headers=alice)
        (server,) = body["servers"]
        assert server["state"] == "needs_scope" and server["step_up"]["consent_url"] == url
        code, page = await fetch_page(jp_fetch, query, headers=alice)
        assert code == 200, page
        status, body = await api("GET", SERVERS, headers=alice)
        assert body["servers"][0]["state"] == "connected"
        assert "mcp:admin" in body["servers"][0]["scopes"]
        assert body["servers"][0]["step_up"] is None


@pytest.mark.parametrize("decision", ["accept", "decline"])
async def test_a_client_that_opens_urls_gets_the_consent_page_and_the_call_goes_on(
    api: Api, jp_fetch: Any, gateway_url: str, decision: str
) -> None:
    """With URL-mode elicitation the consent URL reaches the client during the call; once
    its user approved, the same call goes through. A client that declines gets the tool
    error with the URL, as any other."""
    await connect(api, jp_fetch)
    asked: list[Any] = []

    async def elicit(context: Any, params: Any) -> Any:
        import mcp_types as types

        asked.append(params)
        if decision == "accept":  # the user opens the page and approves
            code, page = await approve(jp_fetch, params.url)
            assert code == 200 and "Connected" in page, page
        return types.ElicitResult(action=decision)

    async with session(
        gateway_url, await gateway_token(api), elicitation_callback=elicit
    ) as client:
        report = await client.call_tool("demo__admin_report", {})
    (request,) = asked
    assert request.mode == "url" and "scope=" in request.url and "mcp%3Aadmin" in request.url
    assert "demo needs more access (mcp:admin)" in request.message
    server = await server_row(api)
    if decision == "accept":
        assert not report.is_error, text_of(report)
        assert server["state"] == "connected" and "mcp:admin" in server["scopes"]
    else:
        assert report.is_error and consent_url_in(text_of(report)) == request.url
        assert server["state"] == "needs_scope"
