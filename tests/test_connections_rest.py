"""REST: start-auth errors, static headers, open servers, pre-registered clients,
redirect-URI drift and rejected registrations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from mcp.shared.auth import OAuthClientInformationFull
from tornado.httpclient import HTTPClientError

from dodo_jupyter.demo.server import DemoConfig
from dodo_jupyter.demo.testing import DemoHandle, running_demo_server
from dodo_jupyter.store.models import MCPConnection, OAuthClient

from .conftest import Api
from .mcp_peers import RunningServer, running_mcp_server
from .oauth_peers import FakeServer, callback_query, consent
from .test_oauth_e2e import connect, fetch_page, runtime_of, stored_tokens

START = "dodo/api/mcp/start-auth"
SERVERS = "dodo/api/mcp/servers"
ADMIN = "dodo/api/admin/approved-mcps"
PUBLIC_URL = "http://127.0.0.1:9"  # never contacted: only the redirect URI is built from it


@pytest.fixture
def demo() -> Iterator[DemoHandle]:
    with running_demo_server(DemoConfig(port=0)) as handle:
        yield handle


@pytest.fixture
def demo2() -> Iterator[DemoHandle]:
    with running_demo_server(DemoConfig(port=0)) as handle:
        yield handle


@pytest.fixture
def keyed() -> Iterator[RunningServer]:
    with running_mcp_server(require_header=("X-API-Key", "k-123")) as server:
        yield server


@pytest.fixture
def open_server() -> Iterator[RunningServer]:
    with running_mcp_server() as server:
        yield server


@pytest.fixture
def dodo_config(
    dodo_config: dict[str, Any],
    demo: DemoHandle,
    demo2: DemoHandle,
    keyed: RunningServer,
    open_server: RunningServer,
) -> dict[str, Any]:
    return {
        **dodo_config,
        "allowed_hosts": ["allowed.example.com"],
        "catalog": [
            {"id": "demo", "url": demo.url},
            {"id": "off", "url": "https://off.example.com/mcp", "enabled": False},
            {
                "id": "keyed",
                "url": keyed.url,
                "auth_type": "static_headers",
                "headers": [{"name": "X-API-Key", "description": "your key"}],
            },
            {"id": "open", "url": open_server.url, "auth_type": "none"},
            {
                "id": "pre",
                "url": demo2.url,
                "oauth": {
                    "client_id": "pre-registered",
                    "client_secret_env": "DODO_TEST_PRE_SECRET",
                },
            },
        ],
    }


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({}, 400, "catalog_id"),
        ({"catalog_id": 5}, 400, "must be a string"),
        ({"url": "not a url"}, 400, "Invalid url"),
        ({"url": "http://example.com/mcp"}, 400, "plain http is refused"),
        ({"url": "https://user:pw@allowed.example.com/mcp"}, 400, "credentials"),
        ({"url": "https://elsewhere.example.com/mcp"}, 403, "not approved"),
        ({"catalog_id": "nope"}, 404, "No enabled catalog entry"),
        ({"catalog_id": "off"}, 404, "No enabled catalog entry"),
        ({"catalog_id": "keyed"}, 400, "/dodo/api/mcp/configs"),
    ],
)
async def test_start_auth_errors(
    api: Api, body: dict[str, Any], status: int, fragment: str
) -> None:
    got, reply = await api("POST", START, body)
    assert got == status, reply
    assert fragment in reply["message"]
    assert (await api("GET", SERVERS))[1] == {"servers": []} or status == 400


async def test_discovery_failure_is_502_with_the_reason(api: Api) -> None:
    fake = FakeServer().standard()
    fake.routes["/.well-known/oauth-authorization-server"] = {
        "issuer": "https://evil.example",
        "authorization_endpoint": f"{fake.base}/authorize",
        "token_endpoint": f"{fake.base}/token",
    }
    try:
        assert (await api("POST", ADMIN, {"id": "fake", "url": fake.mcp_url}))[0] == 201
        status, reply = await api("POST", START, {"catalog_id": "fake"})
    finally:
        fake.stop()
    assert status == 502 and reply["error"] == "upstream_error"
    assert "names issuer" in reply["message"]
    status, body = await api("GET", SERVERS)
    assert body["servers"][0]["state"] == "error"


async def test_open_server_connects_without_auth(api: Api) -> None:
    status, reply = await api("POST", START, {"catalog_id": "open"})
    assert status == 200 and reply["state"] == "connected"
    (server,) = (await api("GET", SERVERS))[1]["servers"]
    assert server["auth_type"] == "none" and server["tool_count"] == 4


async def test_static_headers(api: Api, jp_serverapp: Any) -> None:
    configs = "dodo/api/mcp/configs"
    status, reply = await api("POST", configs, {"catalog_id": "keyed", "headers": {"X-Other": "1"}})
    assert status == 400 and "X-Other" in reply["fields"] and "X-API-Key" in reply["fields"]
    status, reply = await api(
        "POST", configs, {"catalog_id": "keyed", "headers": {"X-API-Key": "a\r\nb"}}
    )
    assert status == 400
    status, reply = await api("POST", configs, {"catalog_id": "demo", "headers": {}})
    assert status == 400 and "does not take headers" in reply["message"]

    status, reply = await api(
        "POST", configs, {"catalog_id": "keyed", "headers": {"x-api-key": "wrong"}}
    )
    assert status == 200 and reply["state"] == "error"
    status, reply = await api(
        "POST", configs, {"catalog_id": "keyed", "headers": {"X-API-Key": "k-123"}}
    )
    assert status == 200 and reply["state"] == "connected" and reply["tool_count"] == 4
    assert "k-123" not in str(await api("GET", SERVERS))
    runtime = runtime_of(jp_serverapp)
    row = runtime.store.db.read_sync(lambda s: s.get(MCPConnection, reply["id"]))
    assert "k-123" not in row.headers_enc
    status, deleted = await api("POST", "dodo/api/mcp/delete-auth", {"connection_id": reply["id"]})
    assert status == 200 and deleted["revoked"] is False


async def test_pre_registered_client_is_used(
    api: Api, jp_fetch: Any, demo2: DemoHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = demo2
    monkeypatch.setenv("DODO_TEST_PRE_SECRET", "pre-secret-value")
    status, started = await api("POST", START, {"catalog_id": "pre"})
    assert status == 200, started
    redirect_uri = callback_query(started["authorize_url"])["redirect_uri"]
    await demo.provider.register_client(
        OAuthClientInformationFull(
            client_id="pre-registered",
            client_secret="pre-secret-value",
            redirect_uris=[redirect_uri],
            token_endpoint_auth_method="client_secret_post",
            grant_types=["authorization_code", "refresh_token"],
            scope="mcp:tools mcp:admin",
        )
    )
    before = demo.stats.snapshot()["registered_clients"]
    assert callback_query(started["authorize_url"])["client_id"] == "pre-registered"
    code, page = await fetch_page(jp_fetch, callback_query(await consent(started["authorize_url"])))
    assert code == 200, page
    assert demo.stats.snapshot()["registered_clients"] == before  # no dynamic registration


async def test_pre_registered_secret_missing_is_a_clear_error(api: Api) -> None:
    status, reply = await api("POST", START, {"catalog_id": "pre"})
    assert status == 400 and "DODO_TEST_PRE_SECRET" in reply["message"]


async def test_redirect_uri_drift_registers_again(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    status, first = await api("POST", START, {"catalog_id": "demo"})
    status, second = await api(
        "POST", START, {"catalog_id": "demo"}, headers={"Host": "127.0.0.1:8888"}
    )
    assert status == 200
    uris = [callback_query(s["authorize_url"])["redirect_uri"] for s in (first, second)]
    assert uris[0] != uris[1] and uris[1].startswith("http://127.0.0.1:8888/")
    assert demo.stats.snapshot()["registered_clients"] == 2
    runtime = runtime_of(jp_serverapp)
    rows = runtime.store.db.read_sync(lambda s: s.query(OAuthClient).all())
    assert sorted(r.redirect_uri for r in rows) == sorted(uris)
    code, page = await fetch_page(jp_fetch, callback_query(await consent(second["authorize_url"])))
    assert code == 200, page


async def test_rejected_registration_is_made_again_once(
    api: Api, jp_fetch: Any, jp_serverapp: Any, demo: DemoHandle
) -> None:
    conn_id = await connect(api, jp_fetch)
    runtime = runtime_of(jp_serverapp)
    client_id = runtime.store.db.read_sync(lambda s: s.query(OAuthClient).one().client_id)
    demo.provider.clients.pop(client_id)  # the AS forgot us
    refresh = stored_tokens(runtime, conn_id)["access_token"]
    status, body = await api("POST", "dodo/api/mcp/refresh-state", {"connection_id": conn_id})
    assert body["state"] == "needs_auth" and "register anew" in body["error"]
    assert runtime.store.db.read_sync(lambda s: s.query(OAuthClient).count()) == 0
    status, started = await api("POST", START, {"catalog_id": "demo"})
    assert started["state"] == "authenticating"
    code, page = await fetch_page(jp_fetch, callback_query(await consent(started["authorize_url"])))
    assert code == 200, page
    assert demo.stats.snapshot()["registered_clients"] == 2
    assert stored_tokens(runtime, conn_id)["access_token"] != refresh


@pytest.mark.parametrize(
    ("method", "headers"),
    [("TRACE", {}), ("GET", {"Content-Type": "multipart/form-data"})],
    ids=["unknown-method", "malformed-body"],
)
async def test_public_pages_answer_errors_tornado_raises_before_prepare(
    jp_fetch: Any, jp_serverapp: Any, method: str, headers: dict[str, str]
) -> None:
    """Seen in the server log of the schemathesis run: Jupyter's error template asked for
    the current user before prepare() had set it, logged "Uncaught exception in
    write_error" and sent an empty body. The callback answers with its page, the
    metadata document with JSON."""

    answers = {}
    for name in ("callback", "client-metadata.json"):
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch(
                "dodo",
                "oauth",
                name,
                method=method,
                headers=headers,
                allow_nonstandard_methods=True,
            )
        answers[name] = caught.value.response
    expected = 405 if method == "TRACE" else 400
    page = answers["callback"]
    assert page.code == expected and page.headers["Content-Type"].startswith("text/html")
    assert b"Sign-in failed" in page.body
    metadata = answers["client-metadata.json"]
    assert metadata.code == expected
    assert json.loads(metadata.body)["error"] in ("method_not_allowed", "bad_request")


async def test_client_metadata_without_public_url_is_a_json_404(api: Api) -> None:
    status, reply = await api("GET", "dodo/oauth/client-metadata.json")
    assert status == 404 and reply["error"] == "not_found"
    assert "DodoApp.public_url" in reply["message"]
