"""Requests to an authorization server's token endpoint (RFC 6749: code exchange, refresh)
and revocation endpoint (RFC 7009), over dodo's one HTTP stack.

authlib builds the form bodies (``prepare_token_request``, ``prepare_revoke_token_request``)
and applies the client's authentication (``ClientAuth``: ``client_secret_basic``,
``client_secret_post`` or ``none``); the requests go through a guarded httpx2 client of
the flow's hosts (:class:`~dodo_jupyter.net.outbound.Outbound`), and answers are read
with the policy's size bound. An OAuth error answer (``{"error": ...}``) is raised as
authlib's :class:`OAuthError`, as authlib's own clients do.
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

from ..net.guard import read_limited
from .registration import ClientCredentials

__all__ = ["OAuthError", "request_token", "revoke_token"]

_FORM = "application/x-www-form-urlencoded;charset=UTF-8"


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
    httpx2.HTTPError, DodoError
        the exchange failed (refused by the guard, too large, unreachable, HTTP 5xx).
    """
    body = prepare_token_request(grant_type, **params)
    headers = {"Accept": "application/json", "Content-Type": _FORM}
    url, headers, body = _authenticated(creds, endpoint, headers, body)
    async with client.stream("POST", url, content=body.encode(), headers=headers) as response:
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
    is read with the same size bound as a token response."""
    body, headers = prepare_revoke_token_request(
        token, token_type_hint, body=urlencode({"client_id": creds.client_id})
    )
    url, headers, body = _authenticated(creds, endpoint, headers, body)
    async with client.stream("POST", url, content=body.encode(), headers=headers) as response:
        await read_limited(response, max_bytes)
    return response.status_code == 200
