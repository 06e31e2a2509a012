"""The OAuth engine refuses what the MCP authorization spec and dodo's promises forbid:
servers without PKCE S256, issuer mismatches, metadata for another resource, and
metadata or redirects that point into private ranges; and it copes with old servers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio

from dodo_jupyter.exceptions import (
    OutboundRefused,
    ResponseTooLarge,
    UpstreamError,
    UpstreamTimeout,
)
from dodo_jupyter.net.policy import StaticResolver
from dodo_jupyter.runtime import DodoRuntime

from .oauth_peers import FakeServer

pytestmark = pytest.mark.asyncio

REDIRECT = "http://127.0.0.1:9/dodo/oauth/callback"


async def start(runtime: DodoRuntime) -> dict[str, Any]:
    return await runtime.connections.start_auth("owner", catalog_id="fake", redirect_uri=REDIRECT)


def runtime_for(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer, **entry: Any
) -> DodoRuntime:
    return make_runtime(
        allow_insecure_loopback=True,
        catalog=[{"id": "fake", "url": fake.mcp_url, **entry}],
        outbound_timeout=1.0,
    )


@pytest_asyncio.fixture
async def fake() -> Any:
    server = FakeServer().standard()
    yield server
    server.stop()


async def test_well_behaved_fake_gives_an_authorize_url(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    result = await start(runtime_for(make_runtime, fake))
    params = parse_qs(urlsplit(result["authorize_url"]).query)
    assert result["authorize_url"].startswith(fake.base + "/authorize?")
    assert params["client_id"] == ["fake-client"] and params["code_challenge_method"] == ["S256"]


@pytest.mark.parametrize("methods", [None, ["plain"], []])
async def test_authorization_server_without_s256_is_refused(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer, methods: Any
) -> None:
    meta = fake.routes["/.well-known/oauth-authorization-server"]
    if methods is None:
        del meta["code_challenge_methods_supported"]
    else:
        meta["code_challenge_methods_supported"] = methods
    with pytest.raises(UpstreamError, match="PKCE S256"):
        await start(runtime_for(make_runtime, fake))
    assert ("POST", "/register") not in fake.requests  # refused before registering


async def test_issuer_mismatch_is_refused(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    fake.routes["/.well-known/oauth-authorization-server"]["issuer"] = fake.base + "/other"
    with pytest.raises(UpstreamError, match=r"RFC 8414 §3\.3"):
        await start(runtime_for(make_runtime, fake))


async def test_resource_metadata_for_another_resource_is_refused(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    fake.routes["/.well-known/oauth-protected-resource/mcp"]["resource"] = fake.base + "/elsewhere"
    with pytest.raises(UpstreamError, match="does not cover"):
        await start(runtime_for(make_runtime, fake))


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "169.254.169.254",
        "192.168.0.10",
        "100.64.0.1",
        "::ffff:10.0.0.1",
        "fd00:ec2::254",
    ],
)
async def test_authorization_server_in_a_private_range_is_refused(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer, address: str
) -> None:
    fake.routes["/.well-known/oauth-protected-resource/mcp"]["authorization_servers"] = [
        "https://auth.corp.example"
    ]
    runtime = make_runtime(
        allow_insecure_loopback=True,
        catalog=[{"id": "fake", "url": fake.mcp_url, "known_hosts": ["auth.corp.example"]}],
        resolver=StaticResolver({"auth.corp.example": [address]}),
    )
    with pytest.raises(OutboundRefused):
        await start(runtime)


async def test_authorization_server_on_a_host_not_allowed_is_refused(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    fake.routes["/.well-known/oauth-protected-resource/mcp"]["authorization_servers"] = [
        "http://127.0.0.2:1"
    ]
    with pytest.raises(OutboundRefused, match="known_hosts"):
        await start(runtime_for(make_runtime, fake))


async def test_redirect_into_a_host_not_allowed_is_refused(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    fake.routes["/.well-known/oauth-protected-resource/mcp"] = lambda req: (
        302,
        {"Location": "http://127.0.0.2:1/.well-known/oauth-protected-resource"},
        b"",
    )
    with pytest.raises(OutboundRefused):
        await start(runtime_for(make_runtime, fake))


async def test_oversized_metadata_is_refused(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    fake.routes["/.well-known/oauth-authorization-server"]["padding"] = "x" * 600_000
    with pytest.raises(ResponseTooLarge):
        await start(runtime_for(make_runtime, fake))


async def test_slow_metadata_times_out(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    fake.delay["/.well-known/oauth-authorization-server"] = 3.0
    with pytest.raises(
        UpstreamTimeout, match=r"did not send its authorization server metadata within 1 s"
    ):
        await start(runtime_for(make_runtime, fake))


async def test_2025_03_26_server_without_resource_metadata(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    del fake.routes["/.well-known/oauth-protected-resource/mcp"]
    fake.routes["/mcp"] = lambda req: (401, {}, b"")
    result = await start(runtime_for(make_runtime, fake))
    assert result["authorize_url"].startswith(fake.base + "/authorize?")


async def test_2025_03_26_server_without_any_metadata_uses_default_endpoints(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    del fake.routes["/.well-known/oauth-protected-resource/mcp"]
    del fake.routes["/.well-known/oauth-authorization-server"]
    fake.routes["/mcp"] = lambda req: (401, {}, b"")
    result = await start(runtime_for(make_runtime, fake))
    assert result["authorize_url"].startswith(fake.base + "/authorize?")
    assert ("POST", "/register") in fake.requests


async def test_resource_override_and_opt_out(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    runtime = runtime_for(make_runtime, fake, oauth={"send_resource": False})
    params = parse_qs(urlsplit((await start(runtime))["authorize_url"]).query)
    assert "resource" not in params
    fake2 = FakeServer().standard()
    try:
        other = make_runtime(
            allow_insecure_loopback=True,
            catalog=[
                {
                    "id": "fake",
                    "url": fake2.mcp_url,
                    "oauth": {"resource": "https://api.example.com/"},
                }
            ],
        )
        params = parse_qs(urlsplit((await start(other))["authorize_url"]).query)
        assert params["resource"] == ["https://api.example.com/"]
    finally:
        fake2.stop()


async def test_no_registration_endpoint_says_what_to_configure(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    del fake.routes["/.well-known/oauth-authorization-server"]["registration_endpoint"]
    with pytest.raises(UpstreamError, match=r"oauth\.client_id"):
        await start(runtime_for(make_runtime, fake))


async def test_client_id_metadata_document_is_used_when_advertised(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    fake.routes["/.well-known/oauth-authorization-server"][
        "client_id_metadata_document_supported"
    ] = True
    runtime = make_runtime(
        allow_insecure_loopback=True,
        catalog=[{"id": "fake", "url": fake.mcp_url}],
        public_url="https://jupyter.example.org",
        base_url="/user/ada/",
    )
    params = parse_qs(urlsplit((await start(runtime))["authorize_url"]).query)
    url = "https://jupyter.example.org/user/ada/dodo/oauth/client-metadata.json"
    assert params["client_id"] == [url]
    assert ("POST", "/register") not in fake.requests
    document = runtime.client_metadata_document("/user/ada/dodo/oauth/callback")
    assert document is not None and document["client_id"] == url
    assert document["redirect_uris"] == ["https://jupyter.example.org/user/ada/dodo/oauth/callback"]


async def test_refresh_without_rotation_keeps_the_old_refresh_token(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    import json as _json

    from dodo_jupyter.store.models import MCPConnection

    runtime = runtime_for(make_runtime, fake)
    started = await start(runtime)
    conn_id = started["connection_id"]
    fake.routes["/token"] = lambda req: (
        200,
        {"Content-Type": "application/json"},
        _json.dumps(
            {
                "access_token": "at-1",
                "refresh_token": "rt-1",
                "token_type": "Bearer",
                "expires_in": 1,
            }
        ).encode(),
    )
    state = parse_qs(urlsplit(started["authorize_url"]).query)["state"][0]
    fake.routes["/mcp"] = lambda req: (401, {}, b"")  # tool listing fails; tokens still stored
    await runtime.connections.complete("owner", {"state": state, "code": "c"})
    fake.routes["/token"] = lambda req: (
        200,
        {"Content-Type": "application/json"},
        _json.dumps({"access_token": "at-2", "token_type": "Bearer", "expires_in": 3600}).encode(),
    )
    assert await runtime.connections.keeper.access_token(conn_id) == "at-2"
    row = runtime.store.db.read_sync(lambda s: s.get(MCPConnection, conn_id))
    tokens = _json.loads(runtime.store.vault.decrypt(row.tokens_enc))
    assert tokens == {"access_token": "at-2", "refresh_token": "rt-1", "token_type": "Bearer"}


async def test_open_initialize_with_protected_tools_starts_oauth(
    make_runtime: Callable[..., DodoRuntime], fake: FakeServer
) -> None:
    import json as _json

    challenge = fake.routes["/mcp"](None)[1]

    def mcp(req: Any) -> tuple[int, dict[str, str], bytes]:
        message = _json.loads(req.body)
        if message.get("method") == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "half-open", "version": "1"},
            }
            return (
                200,
                {"Content-Type": "application/json"},
                _json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode(),
            )
        if "id" not in message:
            return 202, {}, b""
        return 401, challenge, b""

    fake.routes["/mcp"] = mcp
    result = await start(runtime_for(make_runtime, fake))
    assert result["state"] == "authenticating"
    assert result["authorize_url"].startswith(fake.base + "/authorize?")
