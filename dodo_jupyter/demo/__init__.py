"""A real OAuth-protected MCP server to try dodo against, built from the MCP SDK.

``python -m dodo_jupyter.demo --port 9797`` serves it; paste the printed
``http://127.0.0.1:9797/mcp`` into dodo and you get the whole flow a production
server asks for: a 401 naming the protected resource metadata, discovery of the
authorization server, dynamic client registration, a consent page with Approve and
Deny, PKCE S256, short-lived access tokens, refresh token rotation, revocation, and
a tool (``admin_report``) that needs a second scope, to show step-up authorization; and
a few resources (text, a picture, JSON, a template) and prompts to browse.

Modules: :mod:`.provider` (the in-memory authorization server state and
:class:`DemoStats`), :mod:`.consent` (the consent page), :mod:`.middleware` (step-up,
RFC 9207 ``iss``, resource checks), :mod:`.tools`, :mod:`.content` (resources and
prompts), :mod:`.server`
(:class:`DemoConfig`, :func:`build_demo_server`, :func:`run_demo_server`) and
:mod:`.testing` (:func:`~dodo_jupyter.demo.testing.running_demo_server`).

Everything lives in memory and listens on loopback only; it is a demo, not an
authorization server to deploy.
"""

from __future__ import annotations

from .provider import DemoOAuthProvider, DemoStats
from .server import DemoConfig, DemoServer, build_demo_server, run_demo_server

__all__ = [
    "DemoConfig",
    "DemoOAuthProvider",
    "DemoServer",
    "DemoStats",
    "build_demo_server",
    "run_demo_server",
]
