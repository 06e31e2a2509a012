"""The page the browser lands on after the authorization server: ``/dodo/oauth/callback``.

It tells the person what happened, notifies the window that opened it (the sidebar, or
the ``%dodo connect`` output) with ``postMessage`` restricted to this server's own
origin, and closes itself. Every piece of text is HTML-escaped; the message object is
embedded as JSON with ``<``, ``>`` and ``&`` escaped so it cannot end the script.
"""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["MESSAGE_TYPE", "render_callback_page"]

#: ``event.data.type`` of the message the page posts to its opener.
MESSAGE_TYPE = "dodo:oauth-callback"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ font: 15px/1.5 system-ui, sans-serif; margin: 3em auto; max-width: 34em;
         padding: 0 1em; color: #1b1b1b; background: #fff; }}
  @media (prefers-color-scheme: dark) {{ body {{ color: #e6e6e6; background: #111; }} }}
  h1 {{ font-size: 1.3em; }}
  .ok {{ color: #1a7f37; }} .fail {{ color: #c62828; }}
  p.small {{ opacity: .75; font-size: .9em; }}
</style>
</head>
<body>
<h1 class="{css}">{title}</h1>
<p id="dodo-message">{message}</p>
<p class="small">You can close this window and return to Jupyter.</p>
<script>
(function () {{
  var message = {payload};
  try {{
    if (window.opener && !window.opener.closed) {{
      window.opener.postMessage(message, window.location.origin);
    }}
  }} catch (e) {{}}
  if (message.ok) {{ setTimeout(function () {{ window.close(); }}, 1200); }}
}})();
</script>
</body>
</html>
"""


def _script_json(value: Any) -> str:
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_callback_page(*, ok: bool, message: str, connection_id: str | None = None) -> str:
    """The callback page for a finished (``ok``) or failed sign-in."""
    title = "Connected" if ok else "Sign-in failed"
    payload = {"type": MESSAGE_TYPE, "ok": ok, "connection_id": connection_id, "message": message}
    return _PAGE.format(
        title=html.escape(title),
        css="ok" if ok else "fail",
        message=html.escape(message),
        payload=_script_json(payload),
    )
