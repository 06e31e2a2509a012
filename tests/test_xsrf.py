"""Cookie sessions (a browser) must send the XSRF token on every change; token callers need not."""

from __future__ import annotations

import json
import urllib.parse
from http.cookies import SimpleCookie
from typing import Any

from tornado.httpclient import HTTPClientError


async def _fetch(client: Any, path: str, **kwargs: Any) -> Any:
    try:
        return await client.fetch(path, raise_error=True, follow_redirects=False, **kwargs)
    except HTTPClientError as e:
        assert e.response is not None
        return e.response


def _cookies(response: Any, jar: dict[str, str]) -> None:
    for header in response.headers.get_list("Set-Cookie"):
        cookie = SimpleCookie(header)
        for key, morsel in cookie.items():
            jar[key] = morsel.value


async def test_cookie_session_needs_xsrf(
    http_server_client: Any, jp_base_url: str, jp_serverapp: Any
) -> None:
    jar: dict[str, str] = {}
    login = await _fetch(http_server_client, f"{jp_base_url}login")
    _cookies(login, jar)
    xsrf = jar["_xsrf"]
    form = urllib.parse.urlencode({"password": jp_serverapp.identity_provider.token, "_xsrf": xsrf})
    logged_in = await _fetch(
        http_server_client,
        f"{jp_base_url}login",
        method="POST",
        body=form,
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())},
    )
    assert logged_in.code == 302, logged_in.body
    _cookies(logged_in, jar)
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    url = f"{jp_base_url}dodo/api/user/mcp-tokens"
    body = json.dumps({"label": "browser"})

    # The cookie alone reads...
    listing = await _fetch(http_server_client, url, headers={"Cookie": cookie})
    assert listing.code == 200
    # ...but a change without the XSRF token is refused, and nothing is created.
    refused = await _fetch(
        http_server_client, url, method="POST", body=body, headers={"Cookie": cookie}
    )
    assert refused.code == 403
    assert json.loads(refused.body)["error"] == "forbidden"
    assert json.loads((await _fetch(http_server_client, url, headers={"Cookie": cookie})).body) == {
        "tokens": []
    }
    # With the XSRF header it goes through.
    accepted = await _fetch(
        http_server_client,
        url,
        method="POST",
        body=body,
        headers={"Cookie": cookie, "X-XSRFToken": xsrf},
    )
    assert accepted.code == 201
