"""The demo MCP server, driven with plain httpx and the MCP SDK client (not dodo's code).

Each test starts its own demo on a free loopback port (about 60 ms) and walks the
OAuth 2.1 flow by hand: register, authorize, consent, token, call ``/mcp``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

import dodo_jupyter.demo as demo_pkg
from dodo_jupyter.demo import consent, middleware, provider, server, testing, tools
from dodo_jupyter.demo.__main__ import build_parser, config_from_args
from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, async_running_demo_server, running_demo_server

from .mcp_peers import INITIALIZE, MCP_HEADERS

REDIRECT_URI = "http://127.0.0.1:1/callback"


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture
def demo() -> Iterator[DemoHandle]:
    with running_demo_server() as handle:
        yield handle


@pytest.fixture
def http(demo: DemoHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo.base_url) as client:
        yield client


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def register(http: httpx.Client, **extra: Any) -> dict[str, Any]:
    body = {"redirect_uris": [REDIRECT_URI], "client_name": "Test <Client>", **extra}
    response = http.post("/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def authorize(
    http: httpx.Client,
    demo: DemoHandle,
    client: dict[str, Any],
    challenge: str,
    **extra: str,
) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "state-123",
        "resource": demo.url,
        **extra,
    }
    return http.get("/authorize", params=params)


def consent_form(http: httpx.Client, location: str) -> tuple[str, dict[str, str]]:
    page = http.get(location)
    assert page.status_code == 200
    fields = dict(re.findall(r'name="(request|csrf)" value="([^"]+)"', page.text))
    return page.text, fields


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(
    http: httpx.Client, demo: DemoHandle, client: dict[str, Any], challenge: str, **extra: str
) -> str:
    response = authorize(http, demo, client, challenge, **extra)
    assert response.status_code == 302, response.text
    _, fields = consent_form(http, response.headers["location"])
    answer = http.post("/demo/consent", data={**fields, "decision": "approve"})
    assert answer.status_code == 303
    return query(answer.headers["location"])["code"]


def exchange(
    http: httpx.Client, demo: DemoHandle, client: dict[str, Any], code: str, verifier: str
) -> httpx.Response:
    return http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "code_verifier": verifier,
            "resource": demo.url,
        },
    )


def tokens_for(
    http: httpx.Client, demo: DemoHandle, client: dict[str, Any] | None = None, **extra: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    client = client or register(http)
    verifier, challenge = pkce()
    response = exchange(
        http, demo, client, get_code(http, demo, client, challenge, **extra), verifier
    )
    assert response.status_code == 200, response.text
    return client, response.json()


def refresh(
    http: httpx.Client, demo: DemoHandle, client: dict[str, Any], token: str
) -> httpx.Response:
    return http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "resource": demo.url,
        },
    )


def mcp_status(http: httpx.Client, access_token: str) -> int:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {access_token}"}
    return http.post("/mcp", json=INITIALIZE, headers=headers).status_code


@asynccontextmanager
async def mcp_session(url: str, access_token: str, **kwargs: Any) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {access_token}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http_client,
        streamable_http_client(url, http_client=http_client) as (read, write),
        ClientSession(read, write, **kwargs) as session,
    ):
        await session.initialize()
        yield session


# -- discovery -------------------------------------------------------------------------


def test_metadata_documents(demo: DemoHandle, http: httpx.Client) -> None:
    as_meta = http.get("/.well-known/oauth-authorization-server").json()
    assert as_meta["issuer"] == demo.base_url  # exact: no trailing slash
    assert as_meta["authorization_endpoint"] == demo.base_url + "/authorize"
    assert as_meta["token_endpoint"] == demo.base_url + "/token"
    assert as_meta["registration_endpoint"] == demo.base_url + "/register"
    assert as_meta["revocation_endpoint"] == demo.base_url + "/revoke"
    assert as_meta["code_challenge_methods_supported"] == ["S256"]
    assert as_meta["scopes_supported"] == ["mcp:tools", "mcp:admin"]
    assert as_meta["authorization_response_iss_parameter_supported"] is True
    assert "refresh_token" in as_meta["grant_types_supported"]

    pr_meta = http.get("/.well-known/oauth-protected-resource/mcp").json()
    assert pr_meta["resource"] == demo.url
    assert pr_meta["authorization_servers"] == [demo.base_url]
    assert pr_meta["scopes_supported"] == ["mcp:tools", "mcp:admin"]


def test_mcp_without_token_is_401_with_resource_metadata(
    demo: DemoHandle, http: httpx.Client
) -> None:
    response = http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{demo.config.resource_metadata_url}"' in challenge
    assert 'scope="mcp:tools"' in challenge
    assert mcp_status(http, "not-a-token") == 401


def test_dynamic_registration(http: httpx.Client) -> None:
    client = register(http)
    assert client["client_id"] and client["client_secret"]
    assert client["scope"] == "mcp:tools mcp:admin"  # may step up later
    bad = http.post("/register", json={"redirect_uris": [REDIRECT_URI], "scope": "root"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_client_metadata"


# -- authorization ---------------------------------------------------------------------


def test_consent_page_approve_redirects_with_code_state_and_iss(
    demo: DemoHandle, http: httpx.Client
) -> None:
    client = register(http)
    _, challenge = pkce()
    response = authorize(http, demo, client, challenge)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(demo.base_url + "/demo/consent?request=")

    page, fields = consent_form(http, location)
    assert "Test &lt;Client&gt;" in page  # escaped
    assert client["client_id"] in page
    assert ">Approve</button>" in page and ">Deny</button>" in page
    assert "<code>mcp:tools</code>" in page
    assert set(fields) == {"request", "csrf"}

    forged = http.post("/demo/consent", data={**fields, "csrf": "guess", "decision": "approve"})
    assert forged.status_code == 400
    answer = http.post("/demo/consent", data={**fields, "decision": "approve"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(REDIRECT_URI + "?")
    params = query(answer.headers["location"])
    assert params["state"] == "state-123"
    assert params["iss"] == demo.base_url
    assert len(params["code"]) >= 40
    again = http.post("/demo/consent", data={**fields, "decision": "approve"})
    assert again.status_code == 400  # single use


def test_consent_deny_redirects_with_access_denied(demo: DemoHandle, http: httpx.Client) -> None:
    client = register(http)
    response = authorize(http, demo, client, pkce()[1])
    _, fields = consent_form(http, response.headers["location"])
    answer = http.post("/demo/consent", data={**fields, "decision": "deny"})
    params = query(answer.headers["location"])
    assert params == {
        "error": "access_denied",
        "error_description": params["error_description"],
        "state": "state-123",
        "iss": demo.base_url,
    }


def test_authorize_errors_carry_iss(demo: DemoHandle, http: httpx.Client) -> None:
    client = register(http)
    wrong_resource = authorize(http, demo, client, pkce()[1], resource="http://127.0.0.1:1/other")
    params = query(wrong_resource.headers["location"])
    assert params["error"] == "invalid_target"
    assert params["iss"] == demo.base_url
    bad_scope = authorize(http, demo, client, pkce()[1], scope="mcp:root")
    params = query(bad_scope.headers["location"])
    assert params["error"] == "invalid_scope"
    assert params["iss"] == demo.base_url


def test_auto_approve_without_iss() -> None:
    with (
        running_demo_server(auto_approve=True, advertise_iss_parameter=False) as demo,
        httpx.Client(base_url=demo.base_url) as http,
    ):
        meta = http.get("/.well-known/oauth-authorization-server").json()
        assert "authorization_response_iss_parameter_supported" not in meta
        client = register(http)
        response = authorize(http, demo, client, pkce()[1])
        assert response.status_code == 302
        params = query(response.headers["location"])
        assert set(params) == {"code", "state"}


def test_require_resource() -> None:
    with (
        running_demo_server(require_resource=True) as demo,
        httpx.Client(base_url=demo.base_url) as http,
    ):
        client = register(http)
        params = {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": REDIRECT_URI,
            "code_challenge": pkce()[1],
        }
        response = http.get("/authorize", params=params)
        assert query(response.headers["location"])["error"] == "invalid_target"


# -- tokens ----------------------------------------------------------------------------


def test_token_exchange_verifies_pkce_s256(demo: DemoHandle, http: httpx.Client) -> None:
    client = register(http)
    verifier, challenge = pkce()
    code = get_code(http, demo, client, challenge)
    wrong = exchange(http, demo, client, code, pkce()[0])
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    ok = exchange(http, demo, client, code, verifier)
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "mcp:tools"
    assert body["refresh_token"]
    assert ok.headers["cache-control"] == "no-store"
    reused = exchange(http, demo, client, code, verifier)
    assert reused.json()["error"] == "invalid_grant"


def test_token_request_for_another_resource_is_invalid_target(
    demo: DemoHandle, http: httpx.Client
) -> None:
    client = register(http)
    verifier, challenge = pkce()
    code = get_code(http, demo, client, challenge)
    response = http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "code_verifier": verifier,
            "resource": "http://127.0.0.1:1/elsewhere",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_expired_access_token_is_401() -> None:
    with (
        running_demo_server(access_token_ttl=1) as demo,
        httpx.Client(base_url=demo.base_url) as http,
    ):
        _, tokens = tokens_for(http, demo)
        assert tokens["expires_in"] == 1
        assert mcp_status(http, tokens["access_token"]) == 200
        time.sleep(1.05)
        assert mcp_status(http, tokens["access_token"]) == 401


def test_refresh_rotates_and_rejects_the_old_refresh_token(
    demo: DemoHandle, http: httpx.Client
) -> None:
    client, first = tokens_for(http, demo)
    second = refresh(http, demo, client, first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]
    assert mcp_status(http, rotated["access_token"]) == 200

    replay = refresh(http, demo, client, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    third = refresh(http, demo, client, rotated["refresh_token"])
    assert third.status_code == 200  # reuse detection is off by default
    assert demo.stats.snapshot()["refresh_reuse_detected"] == 1


def test_no_refresh_tokens_answers_as_simple_auth() -> None:
    """``issue_refresh_tokens=False``: an access token only, as the MCP SDK's
    ``simple-auth`` example answers."""
    with (
        running_demo_server(access_token_ttl=3600, issue_refresh_tokens=False) as demo,
        httpx.Client(base_url=demo.base_url) as http,
    ):
        _, tokens = tokens_for(http, demo)
        assert "refresh_token" not in tokens and tokens["expires_in"] == 3600
        assert mcp_status(http, tokens["access_token"]) == 200


def test_refresh_reuse_can_revoke_the_grant() -> None:
    with (
        running_demo_server(refresh_reuse_revokes_grant=True) as demo,
        httpx.Client(base_url=demo.base_url) as http,
    ):
        client, first = tokens_for(http, demo)
        rotated = refresh(http, demo, client, first["refresh_token"]).json()
        assert refresh(http, demo, client, first["refresh_token"]).status_code == 400
        assert refresh(http, demo, client, rotated["refresh_token"]).status_code == 400
        assert mcp_status(http, rotated["access_token"]) == 401


def test_refresh_reuse_grace_lets_a_client_that_lost_the_answer_refresh() -> None:
    with (
        running_demo_server(refresh_reuse_grace=60, refresh_reuse_revokes_grant=True) as demo,
        httpx.Client(base_url=demo.base_url) as http,
    ):
        client, first = tokens_for(http, demo)
        lost = refresh(http, demo, client, first["refresh_token"]).json()
        again = refresh(http, demo, client, first["refresh_token"])
        assert again.status_code == 200, again.text
        renewed = again.json()
        assert renewed["refresh_token"] not in (first["refresh_token"], lost["refresh_token"])
        assert mcp_status(http, renewed["access_token"]) == 200
        # The pair whose answer was lost is retired by the reuse, not left alive beside it.
        assert refresh(http, demo, client, renewed["refresh_token"]).status_code == 200
        stats = demo.stats.snapshot()
        assert stats["refresh_reuse_in_grace"] == 1 and stats["refreshes"] == 3


def test_refresh_reuse_after_the_grace_is_refused() -> None:
    with (
        running_demo_server(refresh_reuse_grace=0.3) as demo,
        httpx.Client(base_url=demo.base_url) as http,
    ):
        client, first = tokens_for(http, demo)
        rotated = refresh(http, demo, client, first["refresh_token"]).json()
        time.sleep(0.4)
        late = refresh(http, demo, client, first["refresh_token"])
        assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
        assert refresh(http, demo, client, rotated["refresh_token"]).status_code == 200
        assert demo.stats.snapshot()["refresh_reuse_detected"] == 1


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revoking_either_token_kills_the_pair(
    demo: DemoHandle, http: httpx.Client, which: str
) -> None:
    client, tokens = tokens_for(http, demo)
    response = http.post(
        "/revoke",
        data={
            "token": tokens[which],
            "token_type_hint": which,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert response.status_code == 200
    assert mcp_status(http, tokens["access_token"]) == 401
    assert refresh(http, demo, client, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert demo.stats.snapshot()["revocations"] == 1


# -- MCP -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_mcp_tools_with_bearer_token(demo: DemoHandle, http: httpx.Client) -> None:
    # The server runs in its own thread, so blocking httpx calls are fine here.
    client, tokens = tokens_for(http, demo)
    notifications: list[str] = []

    async def on_message(message: Any) -> None:
        method = getattr(getattr(message, "root", message), "method", None)
        if isinstance(method, str):
            notifications.append(method)

    async with mcp_session(demo.url, tokens["access_token"], message_handler=on_message) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"echo", "add", "utc_now", "word_count", "random_numbers"} <= names
        assert {"square_png", "whoami", "admin_report", "toggle_extra_tool"} <= names

        added = await s.call_tool("add", {"a": 1.5, "b": 2})
        assert added.structured_content == {"result": 3.5}
        counted = await s.call_tool("word_count", {"text": "one two\nthree"})
        assert counted.structured_content == {"words": 3, "lines": 2, "chars": 13}
        first = await s.call_tool("random_numbers", {"count": 4, "seed": 7})
        second = await s.call_tool("random_numbers", {"count": 4, "seed": 7})
        assert first.structured_content == second.structured_content

        image = await s.call_tool("square_png", {"colour": "#ff0000", "size": 4})
        content = image.content[0]
        assert content.type == "image" and content.mime_type == "image/png"
        assert base64.b64decode(content.data).startswith(b"\x89PNG\r\n\x1a\n")

        me = await s.call_tool("whoami", {})
        assert me.structured_content is not None
        assert me.structured_content["client_id"] == client["client_id"]
        assert me.structured_content["scopes"] == ["mcp:tools"]

        toggled = await s.call_tool("toggle_extra_tool", {})
        assert toggled.structured_content == {"tool": "shout", "present": True}
        assert "shout" in {t.name for t in (await s.list_tools()).tools}
        await s.call_tool("toggle_extra_tool", {})
    assert "notifications/tools/list_changed" in notifications


def test_admin_tool_without_scope_is_403_insufficient_scope(
    demo: DemoHandle, http: httpx.Client
) -> None:
    _, tokens = tokens_for(http, demo)
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "admin_report", "arguments": {}},
    }
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {tokens['access_token']}"}
    response = http.post("/mcp", json=call, headers=headers)
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", ')
    assert f'resource_metadata="{demo.config.resource_metadata_url}"' in challenge
    assert demo.stats.snapshot()["step_up_challenges"] == 1


@pytest.mark.asyncio
async def test_step_up_token_can_call_admin_tool(demo: DemoHandle, http: httpx.Client) -> None:
    _, tokens = tokens_for(http, demo, scope="mcp:tools mcp:admin")
    assert tokens["scope"] == "mcp:tools mcp:admin"
    async with mcp_session(demo.url, tokens["access_token"]) as session:
        report = await session.call_tool("admin_report", {})
    assert not report.is_error
    assert report.structured_content is not None
    assert report.structured_content["report"] == "all systems nominal"


def test_withheld_scopes_are_approved_but_not_granted() -> None:
    with (
        running_demo_server(DemoConfig(port=0, withheld_scopes=["mcp:admin"])) as demo,
        httpx.Client(base_url=demo.base_url) as http,
    ):
        _, tokens = tokens_for(http, demo, scope="mcp:tools mcp:admin")
        assert tokens["scope"] == "mcp:tools"  # a narrower grant (RFC 6749 §3.3)
        assert demo.stats.snapshot()["scopes_seen"]["authorize"] == ["mcp:tools mcp:admin"]


@pytest.mark.asyncio
async def test_async_variant_serves_on_the_running_loop() -> None:
    async with (
        async_running_demo_server(DemoConfig(port=0), auto_approve=True) as demo,
        httpx.AsyncClient(base_url=demo.base_url) as http,
    ):
        response = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert response.status_code == 401
        assert demo.config.auto_approve and demo.config.port != 0


# -- stats, config, API ----------------------------------------------------------------


def test_stats_counters_and_route(demo: DemoHandle, http: httpx.Client) -> None:
    client, tokens = tokens_for(http, demo)
    refresh(http, demo, client, tokens["refresh_token"])
    tokens_for(http, demo, client, scope="mcp:tools")
    stats = demo.stats.snapshot()
    assert stats["registered_clients"] == 1
    assert stats["authorize_requests"] == 2
    assert stats["consents_approved"] == 2
    assert stats["token_exchanges"] == 2
    assert stats["refreshes"] == 1
    assert stats["revocations"] == 0
    assert stats["resources_seen"] == {
        "authorize": [demo.url, demo.url],
        "token": [demo.url, demo.url],
        "refresh": [demo.url],
    }
    assert stats["scopes_seen"]["authorize"] == [None, "mcp:tools"]

    route = http.get("/demo/stats")
    assert route.status_code == 200
    assert route.json() == demo.stats.snapshot()
    for secret in (tokens["access_token"], tokens["refresh_token"], client["client_secret"]):
        assert secret not in route.text


def test_config_validation_and_urls() -> None:
    config = DemoConfig(port=8123)
    assert config.issuer_url == "http://127.0.0.1:8123"
    assert config.mcp_url == "http://127.0.0.1:8123/mcp"
    assert config.resource_metadata_url == (
        "http://127.0.0.1:8123/.well-known/oauth-protected-resource/mcp"
    )
    with pytest.raises(ValueError, match="loopback"):
        DemoConfig(host="0.0.0.0")  # noqa: S104 - the point is that it is refused
    with pytest.raises(ValueError, match="scopes_supported"):
        DemoConfig(scopes_supported=["a"], default_scopes=["b"], step_up_tool_scope=None)
    with pytest.raises(ValueError, match="access_token_ttl"):
        DemoConfig(access_token_ttl=0)
    with pytest.raises(ValueError, match="refresh_reuse_grace"):
        DemoConfig(refresh_reuse_grace=-1)


def test_command_line_builds_the_config() -> None:
    args = build_parser().parse_args(
        ["--port", "9000", "--access-token-ttl", "60", "--auto-approve"]
    )
    config = config_from_args(args)
    assert (config.port, config.access_token_ttl, config.auto_approve) == (9000, 60, True)
    assert config.advertise_iss_parameter is True


@pytest.mark.parametrize(
    "module", [demo_pkg, consent, middleware, provider, server, testing, tools]
)
def test_exported_members(module: Any) -> None:
    for name in module.__all__:
        assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name!r}"


@pytest.mark.asyncio
async def test_resources_and_prompts_to_show_offline(demo: DemoHandle, http: httpx.Client) -> None:
    _, tokens = tokens_for(http, demo)
    async with mcp_session(demo.url, tokens["access_token"]) as session:
        uris = {str(r.uri) for r in (await session.list_resources()).resources}
        assert uris == {"demo://readme", "demo://square.png", "demo://config.json"}
        (readme,) = (await session.read_resource("demo://readme")).contents
        assert readme.text.startswith("# The dodo demo server")
        (png,) = (await session.read_resource("demo://square.png")).contents
        assert base64.b64decode(png.blob).startswith(b"\x89PNG")
        (config,) = (await session.read_resource("demo://config.json")).contents
        assert json.loads(config.text)["offline"] is True
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["demo://colours/{name}"]
        (red,) = (await session.read_resource("demo://colours/red")).contents
        assert base64.b64decode(red.blob).startswith(b"\x89PNG")
        prompts = {p.name for p in (await session.list_prompts()).prompts}
        assert prompts == {"summarise", "explain_picture"}
        summary = await session.get_prompt("summarise", {"text": "dodo", "words": "5"})
        assert "at most 5 words" in summary.messages[0].content.text
        picture = await session.get_prompt("explain_picture")
        assert picture.messages[0].content.type == "image"
