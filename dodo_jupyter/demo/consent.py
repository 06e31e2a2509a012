"""The demo's consent page: the screen a person sees between ``/authorize`` and the code.

``GET /demo/consent?request=R`` shows which client asks, for which scopes and which
resource, and a form with *Approve* and *Deny* buttons. The form POSTs back to the
same path with the request id ``R`` and a per-request ``csrf`` value that only the
rendered page carries; the provider answers each request once. Either answer
redirects (303) to the client's ``redirect_uri``: with ``code``, ``state`` and ``iss``
on approval, with ``error=access_denied`` on denial.

The page is plain HTML with inline styles and no script; ``frame-ancestors 'none'``
keeps other sites from framing it (clickjacking).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .provider import CONSENT_PATH, DemoOAuthProvider, PendingConsent

__all__ = ["SCOPE_DESCRIPTIONS", "ConsentEndpoint", "render_consent_page"]

#: What each demo scope lets a client do, shown next to the scope on the page.
SCOPE_DESCRIPTIONS: Mapping[str, str] = {
    "mcp:tools": "list and call the demo's tools",
    "mcp:admin": "call administrator tools such as admin_report",
}

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 34rem; margin: 3rem auto; color: #222; }
.card { border: 1px solid #ccc; border-radius: 8px; padding: 1.5rem; }
code { background: #f3f3f3; padding: 0 .25rem; }
button { font-size: 1rem; padding: .5rem 1.25rem; margin-right: .5rem; cursor: pointer; }
button.approve { background: #1a7f37; color: white; border: 0; border-radius: 4px; }
button.deny { background: white; border: 1px solid #999; border-radius: 4px; }
"""


def render_consent_page(pending: PendingConsent) -> str:
    """The HTML of the consent page for ``pending``; every value is escaped."""
    client = pending.client
    name = html.escape(client.client_name or "An unnamed client")
    redirect_host = html.escape(urlsplit(str(pending.params.redirect_uri)).netloc)
    scopes = "".join(
        f"<li><code>{html.escape(s)}</code> — {html.escape(SCOPE_DESCRIPTIONS.get(s, s))}</li>"
        for s in pending.scopes
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {name}</title>
<style>{_STYLE}</style></head>
<body><div class="card">
<h1>Authorize <span id="client-name">{name}</span>?</h1>
<p>Client id <code id="client-id">{html.escape(client.client_id)}</code>
will be sent back to <code>{redirect_host}</code>.</p>
<p>It asks to use <code>{html.escape(pending.resource)}</code> with these scopes:</p>
<ul id="scopes">{scopes}</ul>
<form method="post" action="{CONSENT_PATH}">
<input type="hidden" name="request" value="{html.escape(pending.request_id)}">
<input type="hidden" name="csrf" value="{html.escape(pending.csrf)}">
<button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button>
</form>
<p><small>dodo demo authorization server — signed in as <code>demo-user</code>.</small></p>
</div></body></html>
"""


def _error_page(message: str, status: int) -> HTMLResponse:
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Consent</title></head>"
        f"<body><h1>Cannot continue</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


class ConsentEndpoint:
    """Serves :data:`CONSENT_PATH`: ``handle`` shows the page (GET) or takes the answer (POST)."""

    def __init__(self, provider: DemoOAuthProvider) -> None:
        self.provider = provider

    async def handle(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._answer(request)
        pending = self.provider.pending_consent(request.query_params.get("request", ""))
        if pending is None:
            return _error_page("This authorization request is unknown or has expired.", 404)
        return HTMLResponse(render_consent_page(pending), headers=_HEADERS)

    async def _answer(self, request: Request) -> Response:
        form = await request.form()
        request_id, csrf, decision = (
            form.get("request"),
            form.get("csrf"),
            form.get("decision"),
        )
        if not (isinstance(request_id, str) and isinstance(csrf, str)):
            return _error_page("The form is missing its request id.", 400)
        if decision not in ("approve", "deny"):
            return _error_page("Choose Approve or Deny.", 400)
        location = self.provider.answer_consent(request_id, csrf, approve=decision == "approve")
        if location is None:
            return _error_page(
                "This authorization request is unknown, expired or already answered.", 400
            )
        return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})
