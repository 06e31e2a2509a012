"""Requests to an authorization server's token endpoint (RFC 6749: code exchange, refresh)
and revocation endpoint (RFC 7009), over dodo's one HTTP stack.

authlib builds the form bodies (``prepare_token_request``, ``prepare_revoke_token_request``)
and applies the client's authentication (``ClientAuth``: ``client_secret_basic``,
``client_secret_post`` or ``none``); the requests go through a guarded httpx2 client of
the flow's hosts (:class:`~dodo_jupyter.net.outbound.Outbound`), and answers are read
with the policy's size bound, each whole exchange within ``DodoApp.outbound_timeout``
(:func:`~dodo_jupyter.net.deadline.exchange_deadline`). An OAuth error answer
(``{"error": ...}``) is raised as authlib's :class:`OAuthError`, as authlib's own clients
do.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx2
from authlib.integrations.base_client import OAuthError
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oauth2.rfc7009.parameters import prepare_revoke_token_request

from ..net.deadline import exchange_deadline, exchange_seconds
from ..net.guard import read_limited
from .registration import ClientCredentials

__all__ = ["OAuthError", "request_token", "revoke_token"]

_FORM = "application/x-www-form-urlencoded;charset=UTF-8"
#: What a token request's answer is called in a timeout message, by grant type.
_TOKEN_STEPS = {
    "authorization_code": "token (authorization code exchange)",
    "refresh_token": "token (refresh)",
}


def _authenticated(
    creds: ClientCredentials, url: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    auth = ClientAuth(creds.client_id, creds.client_secret, creds.auth_method)
    url, headers, body = auth.prepare("POST", url, headers, body)
    return url, dict(headers), body


async def request_token(
    client: httpx2.AsyncClient,
    creds: ClientCredentials,
    endpoint: str,
    grant_type: str,
    params: dict[str, Any],
    *,
    max_bytes: int,
) -> dict[str, Any]:
    """POST a token request; the token response.

    Raises
    ------
    OAuthError
        the server answered with an OAuth error.
    ValueError
        the answer is not a JSON object.
    UpstreamTimeout
        the whole answer took longer than the client's deadline (named host and step).
    httpx2.HTTPError, DodoError
        the exchange failed (refused by the guard, too large, unreachable, HTTP 5xx).
    """
    body = prepare_token_request(grant_type, **params)
    headers = {"Accept": "application/json", "Content-Type": _FORM}
    url, headers, body = _authenticated(creds, endpoint, headers, body)
    step = _TOKEN_STEPS.get(grant_type, "token")
    async with (
        exchange_deadline(url, step, exchange_seconds(client)),
        client.stream("POST", url, content=body.encode(), headers=headers) as response,
    ):
        raw = await read_limited(response, max_bytes)
    if response.status_code >= 500:
        response.raise_for_status()
    token = json.loads(raw)
    if not isinstance(token, dict):
        raise ValueError(f"the token endpoint answered HTTP {response.status_code} without JSON")
    if "error" in token:
        raise OAuthError(error=token["error"], description=token.get("error_description"))
    return token


async def revoke_token(
    client: httpx2.AsyncClient,
    creds: ClientCredentials,
    endpoint: str,
    token: str,
    token_type_hint: str,
    *,
    max_bytes: int,
) -> bool:
    """Ask the server to revoke ``token``; True when it confirmed (HTTP 200). The answer
    is read with the same size bound as a token response, within the client's deadline
    (:class:`~dodo_jupyter.exceptions.UpstreamTimeout` naming the host past it)."""
    body, headers = prepare_revoke_token_request(
        token, token_type_hint, body=urlencode({"client_id": creds.client_id})
    )
    url, headers, body = _authenticated(creds, endpoint, headers, body)
    async with (
        exchange_deadline(url, "token revocation answer", exchange_seconds(client)),
        client.stream("POST", url, content=body.encode(), headers=headers) as response,
    ):
        await read_limited(response, max_bytes)
    return response.status_code == 200
