"""Where a kernel finds dodo, and with which credentials.

Two things are looked for:

* **the gateway** (``/dodo/mcp``) for listing and calling tools: ``DODO_MCP_URL`` and
  ``DODO_MCP_TOKEN``, which the extension exports to the kernels its server starts;
* **the Jupyter server** for dodo's REST API (servers, catalog, connecting): in
  JupyterHub, the single-user server's URL and the hub token of its environment
  (``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_API_TOKEN``); otherwise the server's runtime
  file (``jpserver-<pid>.json`` in Jupyter's runtime directory) of the parent process
  (``JPY_PARENT_PID``), or the one whose URL the gateway URL starts with.

Without ``DODO_MCP_URL`` the gateway is the Jupyter server's own ``dodo/mcp`` with the
server's credentials. Nothing found → :class:`NotFoundError`, saying what to set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NotFoundError

__all__ = ["MCP_TOKEN_ENV", "MCP_URL_ENV", "Endpoint", "discover"]

MCP_URL_ENV = "DODO_MCP_URL"
MCP_TOKEN_ENV = "DODO_MCP_TOKEN"  # noqa: S105 - a variable name
GATEWAY_PATH = "dodo/mcp"


@dataclass(frozen=True)
class Endpoint:
    """The gateway and the Jupyter server a client talks to. Credentials are kept out of
    ``repr`` so that printing an endpoint in a notebook shows no secret."""

    mcp_url: str
    mcp_headers: dict[str, str] = field(repr=False)
    #: The Jupyter server's URL (ends with ``/``), when known.
    server_url: str | None = None
    api_headers: dict[str, str] | None = field(default=None, repr=False)
    #: Where the settings came from, for messages.
    source: str = ""

    @property
    def has_api(self) -> bool:
        return self.server_url is not None and self.api_headers is not None


def _runtime_dir(environ: Mapping[str, str]) -> Path:
    if environ.get("JUPYTER_RUNTIME_DIR"):
        return Path(environ["JUPYTER_RUNTIME_DIR"])
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def _server_files(environ: Mapping[str, str]) -> list[dict[str, object]]:
    directory = _runtime_dir(environ)
    found: list[dict[str, object]] = []
    for path in sorted(directory.glob("jpserver-*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and isinstance(info.get("url"), str):
            found.append(info)
    return found


def _jupyter_server(
    environ: Mapping[str, str], gateway_url: str | None
) -> tuple[str, dict[str, str], str] | None:
    """(server URL, headers, source) of the Jupyter server this process belongs to."""
    hub_token = environ.get("JUPYTERHUB_API_TOKEN")
    hub_url = environ.get("JUPYTERHUB_SERVICE_URL")
    if hub_token and hub_url:
        return hub_url.rstrip("/") + "/", {"Authorization": f"token {hub_token}"}, "jupyterhub"
    servers = _server_files(environ)
    parent = environ.get("JPY_PARENT_PID")
    chosen = [s for s in servers if parent and str(s.get("pid")) == parent]
    if not chosen and gateway_url:
        chosen = [s for s in servers if gateway_url.startswith(str(s["url"]))]
    if not chosen and len(servers) == 1:
        chosen = servers
    if not chosen:
        return None
    info = chosen[0]
    token = info.get("token")
    headers = {"Authorization": f"token {token}"} if isinstance(token, str) and token else {}
    return str(info["url"]).rstrip("/") + "/", headers, f"jupyter server pid {info.get('pid')}"


def discover(environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint for this process (see the module docstring)."""
    env = os.environ if environ is None else environ
    gateway_url = env.get(MCP_URL_ENV) or None
    gateway_token = env.get(MCP_TOKEN_ENV) or None
    server = _jupyter_server(env, gateway_url)
    if gateway_url and gateway_token:
        return Endpoint(
            mcp_url=gateway_url,
            mcp_headers={"Authorization": f"Bearer {gateway_token}"},
            server_url=server[0] if server else None,
            api_headers=server[1] if server else None,
            source=f"{MCP_URL_ENV}/{MCP_TOKEN_ENV}",
        )
    if server is not None:
        url, headers, source = server
        return Endpoint(
            mcp_url=url + GATEWAY_PATH,
            mcp_headers=headers,
            server_url=url,
            api_headers=headers,
            source=source,
        )
    raise NotFoundError(
        "No dodo gateway found from this process. Run it in a kernel started by a Jupyter "
        f"server with dodo, or set {MCP_URL_ENV} and {MCP_TOKEN_ENV} (JupyterLab → MCP "
        "panel → Agent access creates a token)."
    )
