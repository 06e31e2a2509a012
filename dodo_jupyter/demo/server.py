"""Build and run the demo: an OAuth-protected MCP server made of the MCP SDK's own parts.

One process, one port, two roles::

    http://127.0.0.1:<port>
      /mcp                                       MCP streamable HTTP (resource server)
      /.well-known/oauth-protected-resource/mcp  RFC 9728: "my tokens come from <issuer>"
      /.well-known/oauth-authorization-server    RFC 8414: the endpoints below
      /authorize /token /register /revoke        the SDK's OAuth 2.1 handlers
      /demo/consent                              the consent page (Approve / Deny)
      /demo/stats                                counters for tests (no secrets)

A client that calls ``/mcp`` without a token gets ``401`` with
``WWW-Authenticate: Bearer ... resource_metadata="<RFC 9728 URL>"``; from there it
discovers the authorization server, registers (RFC 7591), sends a person through
``/authorize`` with PKCE S256, exchanges the code at ``/token`` with
``resource=<the /mcp URL>`` (RFC 8707), and calls ``/mcp`` with the bearer token.

The SDK's :class:`~mcp.server.mcpserver.MCPServer` provides the routes; this module
adds what the SDK leaves to applications (see :mod:`.middleware`): per-tool step-up
scopes, the RFC 9207 ``iss`` parameter, and metadata that lists every scope.

Use :func:`build_demo_server` for an ASGI app, :func:`run_demo_server` to serve it in
the foreground, and :func:`dodo_jupyter.demo.testing.running_demo_server` in tests.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.handlers.metadata import MetadataHandler, ProtectedResourceMetadataHandler
from mcp.server.auth.routes import build_metadata, cors_middleware
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import MCPServer
from mcp.server.models import InitializationOptions
from mcp.shared.auth import ProtectedResourceMetadata
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .consent import ConsentEndpoint
from .content import register_demo_content
from .middleware import DemoHTTPMiddleware
from .provider import CONSENT_PATH, DemoOAuthProvider, DemoStats
from .tools import register_demo_tools

__all__ = [
    "DEFAULT_PORT",
    "MCP_PATH",
    "STATS_PATH",
    "DemoConfig",
    "DemoServer",
    "build_demo_server",
    "run_demo_server",
]

#: The port ``python -m dodo_jupyter.demo`` listens on unless told otherwise.
DEFAULT_PORT = 9797

#: Where the MCP endpoint lives.
MCP_PATH = "/mcp"

#: The JSON counters route.
STATS_PATH = "/demo/stats"

#: Tool guarded by :attr:`DemoConfig.step_up_tool_scope`.
ADMIN_TOOL = "admin_report"


def _check_loopback(host: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"DemoConfig.host must be a loopback address such as '127.0.0.1', got {host!r}: "
            "the demo has no TLS and trusts whoever reaches it"
        )


@dataclass(frozen=True)
class DemoConfig:
    """How the demo server behaves; every field has a test-friendly default.

    Attributes
    ----------
    host:
        Loopback address to listen on (anything else is refused). Default ``127.0.0.1``.
    port:
        TCP port. ``0`` means "pick a free one" (only :mod:`.testing` can do that,
        since the URLs in the metadata must name the real port). Default 9797.
    access_token_ttl:
        Access token lifetime in seconds, enforced to the sub-second. Default 300.
    refresh_token_ttl:
        Refresh token lifetime in seconds; ``None`` never expires. Default one day.
    issue_refresh_tokens:
        Issue refresh tokens. ``False``: access tokens only, as the MCP SDK's
        ``simple-auth`` example answers (a new sign-in when one expires). Default True.
    scopes_supported:
        Every scope clients may request; published in both metadata documents and
        allowed to every registered client. Default ``("mcp:tools", "mcp:admin")``.
    default_scopes:
        Granted when ``/authorize`` has no ``scope``; also named in the 401
        challenge's ``scope=``. Default ``("mcp:tools",)``.
    step_up_tool_scope:
        The scope the ``admin_report`` tool needs. Calling it with a token that lacks
        it answers 403 ``insufficient_scope`` naming the scopes to ask for. ``None``
        leaves the tool open to any token. Default ``"mcp:admin"``.
    auto_approve:
        Skip the consent page: ``/authorize`` redirects straight back with a code,
        as the MCP conformance suite's authorization server does. Default False.
    advertise_iss_parameter:
        RFC 9207: put ``iss`` on every authorization response and
        ``authorization_response_iss_parameter_supported: true`` in the metadata.
        Default True.
    require_resource:
        Refuse an authorization request without an RFC 8707 ``resource``
        (``invalid_target``) instead of binding the token to the ``/mcp`` URL.
        Default False.
    refresh_reuse_revokes_grant:
        When a rotated-out refresh token is used again, also revoke the grant it
        belonged to (reuse detection). Default False: the reuse only fails.
    refresh_reuse_grace:
        Seconds during which a rotated-out refresh token still works (an Okta-style
        grace period), for a client that crashed before saving a rotation's answer.
        Default 0: strict rotation.
    withheld_scopes:
        Scopes the authorization server accepts in a request and the consent page
        shows, but leaves out of the grant (RFC 6749 §3.3 allows a narrower grant):
        with ``("mcp:admin",)`` a step-up never gets ``admin_report`` through, which
        shows a client's limit on step-ups. Default none.
    server_name:
        The MCP server name in the ``initialize`` result. Default ``"dodo-demo"``.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    access_token_ttl: int = 300
    refresh_token_ttl: int | None = 86400
    issue_refresh_tokens: bool = True
    scopes_supported: Sequence[str] = ("mcp:tools", "mcp:admin")
    default_scopes: Sequence[str] = ("mcp:tools",)
    step_up_tool_scope: str | None = "mcp:admin"
    auto_approve: bool = False
    advertise_iss_parameter: bool = True
    require_resource: bool = False
    refresh_reuse_revokes_grant: bool = False
    refresh_reuse_grace: float = 0.0
    withheld_scopes: Sequence[str] = ()
    server_name: str = "dodo-demo"

    def __post_init__(self) -> None:
        _check_loopback(self.host)
        object.__setattr__(self, "scopes_supported", tuple(self.scopes_supported))
        object.__setattr__(self, "default_scopes", tuple(self.default_scopes))
        object.__setattr__(self, "withheld_scopes", tuple(self.withheld_scopes))
        if not 0 <= self.port <= 65535:
            raise ValueError(f"DemoConfig.port must be 0..65535, got {self.port!r}")
        if self.access_token_ttl < 1:
            raise ValueError(
                "DemoConfig.access_token_ttl must be at least 1 second, "
                f"got {self.access_token_ttl!r}"
            )
        if self.refresh_reuse_grace < 0:
            raise ValueError(
                "DemoConfig.refresh_reuse_grace must be 0 or more seconds, "
                f"got {self.refresh_reuse_grace!r}"
            )
        unknown = [s for s in self.default_scopes if s not in self.scopes_supported]
        if (
            self.step_up_tool_scope is not None
            and self.step_up_tool_scope not in self.scopes_supported
        ):
            unknown.append(self.step_up_tool_scope)
        if unknown:
            raise ValueError(
                f"DemoConfig scopes {unknown!r} are not in scopes_supported "
                f"{list(self.scopes_supported)!r}"
            )

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>``, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def issuer_url(self) -> str:
        """The authorization server's issuer: the base URL (RFC 8414 §2)."""
        return self.base_url

    @property
    def mcp_url(self) -> str:
        """The MCP endpoint, which is also the RFC 8707 resource every token is bound to."""
        return self.base_url + MCP_PATH

    @property
    def resource_metadata_url(self) -> str:
        """The RFC 9728 protected resource metadata URL for :attr:`mcp_url`."""
        return f"{self.base_url}/.well-known/oauth-protected-resource{MCP_PATH}"

    def replace(self, **changes: Any) -> DemoConfig:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)


@dataclass
class DemoServer:
    """A built demo: an ASGI app plus the parts tests look at.

    Call it like any ASGI app (``uvicorn.run(server)``); ``starlette`` is the SDK's
    app inside the demo middleware.
    """

    config: DemoConfig
    mcp: MCPServer
    provider: DemoOAuthProvider
    stats: DemoStats
    starlette: Starlette
    app: DemoHTTPMiddleware = field(repr=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _auth_settings(config: DemoConfig) -> AuthSettings:
    scopes = list(config.scopes_supported)
    # Plain strings, not AnyHttpUrl(...): a standalone AnyHttpUrl gains a trailing "/",
    # and the issuer must equal the `iss` the provider sends character for character.
    return AuthSettings.model_validate(
        {
            "issuer_url": config.issuer_url,
            "resource_server_url": config.mcp_url,
            "validate_token_resource": True,
            # Every registered client may ask for every scope, so it can step up later.
            "client_registration_options": ClientRegistrationOptions(
                enabled=True, valid_scopes=scopes, default_scopes=scopes
            ),
            "revocation_options": RevocationOptions(enabled=True),
        }
    )


def _advertise_tools_list_changed(mcp: MCPServer) -> None:
    """Advertise ``tools.listChanged`` in the 2025-11-25 ``initialize`` result.

    The streamable HTTP session manager builds capabilities with default
    ``NotificationOptions`` (all false) and ``MCPServer`` takes none, so without
    this the demo would send ``notifications/tools/list_changed`` (see
    ``toggle_extra_tool``) while saying it never does. This reaches into the SDK's
    private low-level server; 2026-07-28 clients learn it from ``server/discover``.
    """
    lowlevel = mcp._lowlevel_server
    original = lowlevel.create_initialization_options

    def create_initialization_options(
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return original(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )

    lowlevel.create_initialization_options = create_initialization_options  # type: ignore[method-assign]


def _metadata_routes(config: DemoConfig, auth: AuthSettings) -> list[Route]:
    """RFC 8414 and RFC 9728 documents that list every scope.

    The SDK publishes ``AuthSettings.required_scopes`` as the resource's
    ``scopes_supported`` (which would then be required for every call), does not
    advertise ``none`` client authentication although it accepts it, and has no
    RFC 9207 flag; these routes are matched before the SDK's.
    """
    assert auth.client_registration_options is not None
    assert auth.revocation_options is not None
    as_metadata = build_metadata(
        auth.issuer_url,
        None,
        auth.client_registration_options,
        auth.revocation_options,
    )
    as_metadata.scopes_supported = list(config.scopes_supported)
    as_metadata.token_endpoint_auth_methods_supported = [
        "client_secret_post",
        "client_secret_basic",
        "none",
    ]
    if config.advertise_iss_parameter:
        as_metadata.authorization_response_iss_parameter_supported = True
    pr_metadata = ProtectedResourceMetadata.model_validate(
        {
            "resource": config.mcp_url,
            "authorization_servers": [config.issuer_url],
            "scopes_supported": list(config.scopes_supported),
            "resource_name": "dodo demo MCP server",
        }
    )
    methods = ["GET", "OPTIONS"]
    return [
        Route(
            "/.well-known/oauth-authorization-server",
            endpoint=cors_middleware(MetadataHandler(as_metadata).handle, methods),
            methods=methods,
        ),
        Route(
            f"/.well-known/oauth-protected-resource{MCP_PATH}",
            endpoint=cors_middleware(ProtectedResourceMetadataHandler(pr_metadata).handle, methods),
            methods=methods,
        ),
    ]


def build_demo_server(config: DemoConfig | None = None) -> DemoServer:
    """Assemble the demo for ``config`` (defaults: port 9797, consent page on).

    Parameters
    ----------
    config:
        The settings; ``config.port`` must be the port it will really listen on,
        because the metadata documents and ``iss`` contain it.

    Returns
    -------
    DemoServer
        An ASGI app carrying its ``mcp`` server, ``provider`` and ``stats``.
    """
    config = config or DemoConfig()
    stats = DemoStats()
    provider = DemoOAuthProvider(
        issuer_url=config.issuer_url,
        resource_url=config.mcp_url,
        scopes_supported=list(config.scopes_supported),
        default_scopes=list(config.default_scopes),
        access_token_ttl=config.access_token_ttl,
        refresh_token_ttl=config.refresh_token_ttl,
        issue_refresh_tokens=config.issue_refresh_tokens,
        auto_approve=config.auto_approve,
        advertise_iss=config.advertise_iss_parameter,
        require_resource=config.require_resource,
        refresh_reuse_revokes_grant=config.refresh_reuse_revokes_grant,
        refresh_reuse_grace=config.refresh_reuse_grace,
        withheld_scopes=tuple(config.withheld_scopes),
        stats=stats,
    )
    auth = _auth_settings(config)
    mcp: MCPServer = MCPServer(
        name=config.server_name,
        instructions="A demo MCP server behind OAuth 2.1, for trying dodo-jupyter.",
        auth_server_provider=provider,
        auth=auth,
        log_level="WARNING",
    )
    register_demo_tools(mcp, admin_scope=config.step_up_tool_scope)
    register_demo_content(mcp)
    _advertise_tools_list_changed(mcp)

    consent = ConsentEndpoint(provider)
    mcp.custom_route(CONSENT_PATH, methods=["GET", "POST"])(consent.handle)

    @mcp.custom_route(STATS_PATH, methods=["GET"])
    async def demo_stats(request: Request) -> Response:
        return JSONResponse(stats.snapshot(), headers={"Cache-Control": "no-store"})

    @mcp.custom_route("/", methods=["GET"])
    async def index(request: Request) -> Response:
        return PlainTextResponse(
            f"dodo demo MCP server\nMCP endpoint: {config.mcp_url}\n"
            f"Authorization server: {config.issuer_url}\n"
        )

    starlette = mcp.streamable_http_app(streamable_http_path=MCP_PATH, host=config.host)
    # Matched before the SDK's own metadata routes (first match wins).
    starlette.router.routes[0:0] = _metadata_routes(config, auth)
    guarded = {ADMIN_TOOL: config.step_up_tool_scope} if config.step_up_tool_scope else {}
    app = DemoHTTPMiddleware(
        starlette,
        provider=provider,
        stats=stats,
        mcp_path=MCP_PATH,
        resource_metadata_url=config.resource_metadata_url,
        guarded_tools=guarded,
    )
    return DemoServer(
        config=config, mcp=mcp, provider=provider, stats=stats, starlette=starlette, app=app
    )


def run_demo_server(config: DemoConfig | None = None, *, log_level: str = "info") -> None:
    """Serve the demo in the foreground until interrupted (Ctrl-C).

    Prints the MCP URL first. ``config.port`` must not be 0 here.

    Raises
    ------
    ValueError
        If ``config.port`` is 0.
    """
    import uvicorn

    config = config or DemoConfig()
    if config.port == 0:
        raise ValueError("run_demo_server needs a fixed DemoConfig.port; 0 is for tests")
    server = build_demo_server(config)
    consent = "auto-approve" if config.auto_approve else f"consent page at {CONSENT_PATH}"
    print(f"dodo demo MCP server: {config.mcp_url}", flush=True)
    print(f"  authorization server {config.issuer_url} ({consent}); Ctrl-C to stop", flush=True)
    uvicorn.run(server, host=config.host, port=config.port, log_level=log_level)
