"""A single-user server's client of the hub catalog service.

Every request carries the server's own hub token (``JUPYTERHUB_API_TOKEN``) in the
``Authorization`` header; the service asks the hub who that is. Reads are conditional
(``If-None-Match``); admin requests are forwarded as they came and the service's
answer is passed on (:func:`~dodo_jupyter.exceptions.error_from_remote`).

Why not through :mod:`dodo_jupyter.net` (the SSRF guard): the guard is for URLs that
users and catalog entries supply, and refuses private and loopback addresses by design.
The service URL comes from the deployment (``DodoApp.hub_catalog_url``, usually set by
the hub in ``c.Spawner.environment``), points at the hub's own network (the proxy or
the hub pod) on purpose, and receives only the server's hub token, which is meant for
hub services. Like the hub hygiene check (:class:`~dodo_jupyter.owner.HubHygiene`), it
uses dodo's HTTP stack without the SSRF guard (``net.outbound.trusted_client``): no
environment proxies, no redirects, a timeout per step and a total deadline on the
answer's head; every answer is read whole within the timeout and at most
:data:`MAX_CATALOG_BYTES`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ..exceptions import (
    HubCatalogUnavailable,
    ResponseTooLarge,
    UpstreamError,
    error_from_remote,
)

__all__ = ["Fetched", "HubCatalogClient", "check_service_url"]

log = logging.getLogger(__name__)

#: Largest answer accepted from the service (a catalog, an admin answer).
MAX_CATALOG_BYTES = 8 * 1024 * 1024


def check_service_url(url: str) -> str:
    """``url`` with a trailing slash; :class:`ValueError` naming the setting when it is not
    an http(s) URL without credentials, query or fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"DodoApp.hub_catalog_url (env DODO_HUB_CATALOG_URL) must be an http(s) URL such "
            f"as 'http://proxy-public/services/dodo/', not {url!r}"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(
            "DodoApp.hub_catalog_url must not carry credentials, a query or a fragment: the "
            "server authenticates with its own hub token."
        )
    return url if url.endswith("/") else url + "/"


@dataclass(frozen=True)
class Fetched:
    """A catalog answer: ``entries`` is None when the service said 304 (unchanged)."""

    entries: list[dict[str, Any]] | None
    etag: str


class HubCatalogClient:
    """Talks to the hub catalog service at ``url`` with ``token``.

    Parameters
    ----------
    url:
        The service's base URL (``.../services/dodo/``).
    token:
        The server's hub token.
    timeout:
        Seconds for connecting and for each read (``DodoApp.hub_catalog_timeout``).
    """

    name = "The hub catalog service"

    def __init__(self, url: str, token: str, *, timeout: float = 5.0) -> None:
        self.url = check_service_url(url)
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:  # never the token
        return f"HubCatalogClient({self.url!r})"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> tuple[Any, bytes]:
        """The service's answer to ``method`` on ``path`` and its body, read whole.

        Raises
        ------
        HubCatalogUnavailable
            no token; the service did not answer in time, could not be reached, or
            answered with more than :data:`MAX_CATALOG_BYTES`.
        """
        import httpx2  # hub-catalog mode only

        from ..net.failures import describe_failure
        from ..net.guard import read_limited
        from ..net.outbound import trusted_client

        if not self._token:
            raise HubCatalogUnavailable(
                f"{self.name} cannot be asked: this server has no JUPYTERHUB_API_TOKEN "
                "(is it running under JupyterHub?)."
            )
        all_headers = {"Authorization": f"token {self._token}", "Accept": "application/json"}
        all_headers.update(headers or {})
        if content is not None:
            all_headers["Content-Type"] = "application/json"
        try:
            async with trusted_client(self.timeout, follow_redirects=False) as client:
                async with client.stream(
                    method, self.url + path, headers=all_headers, params=params, content=content
                ) as response:
                    return response, await read_limited(response, MAX_CATALOG_BYTES)
        except ResponseTooLarge:
            raise HubCatalogUnavailable(
                f"{self.name} at {self.url} sent an answer larger than 8 MiB."
            ) from None
        except httpx2.TimeoutException:
            unsure = ""
            if method != "GET":
                # The request may have reached it: a slow service can still apply it.
                unsure = " The change may still be made: check the catalog before retrying."
            raise HubCatalogUnavailable(
                f"{self.name} at {self.url} did not answer within {self.timeout:g} s.{unsure}"
            ) from None
        except httpx2.HTTPError as e:
            raise HubCatalogUnavailable(
                f"{self.name} at {self.url} is unreachable: {describe_failure(e)}."
            ) from None

    async def fetch(self, etag: str = "") -> Fetched:
        """The enabled catalog, or ``Fetched(None, etag)`` when it has not changed.

        Raises
        ------
        HubCatalogUnavailable
            the service cannot be reached or sent something that is not a catalog.
        """
        headers = {"If-None-Match": etag} if etag else {}
        response, body = await self._request("GET", "api/catalog", headers=headers)
        if response.status_code == 304 and etag:
            return Fetched(None, etag)
        if response.status_code != 200:
            raise HubCatalogUnavailable(
                f"{self.name} at {self.url} answered HTTP {response.status_code}: "
                f"{_message_of(response, body)}"
            )
        data = _json(body)
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise HubCatalogUnavailable(f"{self.name} at {self.url} sent no catalog.")
        return Fetched(entries, response.headers.get("ETag", ""))

    async def send_calls(self, calls: list[dict[str, Any]]) -> dict[str, Any]:
        """Forward tool-call records (``POST api/tool-calls``); the service's tally.

        Raises
        ------
        HubCatalogUnavailable
            the service cannot be reached or did not take them (they stay to be sent).
        """
        content = json.dumps({"calls": calls}, separators=(",", ":")).encode()
        response, body = await self._request("POST", "api/tool-calls", content=content)
        data = _json(body)
        if response.status_code != 200 or not isinstance(data, dict):
            raise HubCatalogUnavailable(
                f"{self.name} at {self.url} did not take the tool-call records (HTTP "
                f"{response.status_code}: {_message_of(response, body)})."
            )
        return data

    async def forward(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """``method`` on ``api/admin/<path>`` with ``body`` (JSON) and ``headers`` (the
        admin's ``If-Match``); the JSON answer, or None for 204.

        Raises
        ------
        DodoError
            the service's own 4xx error (same status, code, message and fields; a 412
            for a stale ``If-Match`` too);
            :class:`HubCatalogUnavailable` when it cannot be reached;
            :class:`UpstreamError` for anything else.
        """
        quoted = "/".join(quote(part, safe="") for part in path.split("/"))
        content = json.dumps(body).encode() if body is not None else None
        response, answer = await self._request(
            method, "api/admin/" + quoted, headers=headers, params=params, content=content
        )
        if response.status_code == 204:
            return None
        data = _json(answer)
        if 200 <= response.status_code < 300 and data is not None:
            return data
        if response.status_code == 503:
            raise HubCatalogUnavailable(
                f"{self.name} at {self.url} is unavailable: {_message_of(response, answer)}"
            )
        error = error_from_remote(response.status_code, data, service=f"{self.name}")
        if isinstance(error, UpstreamError):
            log.warning(
                "dodo: %s answered %s %s with HTTP %s",
                self.name,
                method,
                path,
                response.status_code,
            )
        raise error


def _json(body: bytes) -> Any:
    """``body`` parsed as JSON, or None when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None


def _message_of(response: Any, body: bytes) -> str:
    """The ``message`` of a dodo JSON error in ``body``, else the HTTP reason phrase."""
    data = _json(body)
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, str) and message:
        return message[:300]
    return str(response.reason_phrase or "no reason given")
