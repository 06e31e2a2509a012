"""Jupyter AI with zero setup: every persona gets the gateway as a built-in MCP server.

Jupyter AI 3.2 (``jupyter-ai-persona-manager`` 0.3) gives each chat a ``PersonaManager``
whose ``builtin_mcp_servers`` setting lists MCP servers every persona receives: Jupyternaut
uses them itself, and ACP personas (Claude Code, Codex, Gemini, Kiro through
``jupyter-ai-acp-client``) pass the HTTP ones to their agent in ``session/new``. When the
persona manager's server extension runs in the same Jupyter server, dodo adds one entry to
that list::

    {"type": "http", "name": "dodo", "url": "<this server>/dodo/mcp",
     "headers": [{"name": "Authorization", "value": "Bearer dodo_…"}]}

How, and why this way:

* **Where the setting lives.** A ``PersonaManager`` is created per chat with the persona
  manager's ``ExtensionApp`` as its parent, so it reads that app's ``config`` when the chat
  opens. Dodo updates that config when its own extension starts (every extension is
  initialised by then, whatever the load order). The list dodo writes is the admin's own
  ``c.PersonaManager.builtin_mcp_servers`` when set, else what the persona manager's own
  default computes, plus dodo's entry: an admin's servers are never dropped, and an older
  dodo entry (same name or same URL) is replaced.
* **The token.** A gateway token of kind ``jupyter-ai`` labelled "Jupyter AI (built in)",
  for the owner. It is made in memory (:func:`~dodo_jupyter.tokens.mint_token`) so the entry
  exists before any chat can open, and stored in the background right after the tokens a
  previous start left behind are deleted; a chat needs a person to type a message before a
  persona calls a tool, far later than that write. The token is deleted when the server
  stops, and at start when ``DodoApp.jupyter_ai_builtin`` is off. It never leaves the
  server process (it is not written to any file).
* **Visitors.** On a JupyterHub server shared with others, the personas run in the
  owner's server, so a visitor's chat message could make a persona call the owner's tools.
  A request with the built-in token is therefore served only when its
  ``X-Jupyter-Chat-Id`` / ``X-JupyterAI-Persona-Id`` headers lead to a persona that is
  answering a message the owner sent (:func:`refusal_for_builtin_request`, the same lookup
  the persona manager's own ``ClientRoutingMiddleware`` does). The headers can only narrow:
  without them, or for a visitor's message, the request is refused.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .tokens import MintedToken, TokenService

__all__ = [
    "BUILTIN_LABEL",
    "BUILTIN_TOKEN_KIND",
    "ENTRY_NAME",
    "JupyterAIBuiltin",
    "builtin_entry",
    "installed",
    "merged_servers",
    "refusal_for_builtin_request",
]

log = logging.getLogger("dodo_jupyter.jupyter_ai")

#: The kind of the built-in entry's gateway token.
BUILTIN_TOKEN_KIND = "jupyter-ai"  # noqa: S105 - a token kind
#: Its label in the token list.
BUILTIN_LABEL = "Jupyter AI (built in)"
#: The entry's name among the personas' MCP servers.
ENTRY_NAME = "dodo"
#: The persona manager's server extension.
PERSONA_EXTENSION = "jupyter_ai_persona_manager"


def installed() -> bool:
    """Whether Jupyter AI's persona manager is installed (nothing is imported)."""
    return importlib.util.find_spec(PERSONA_EXTENSION) is not None


def builtin_entry(url: str, token: str, name: str = ENTRY_NAME) -> dict[str, Any]:
    """The ``McpServerHttp`` entry that points a persona at the gateway."""
    return {
        "type": "http",
        "name": name,
        "url": url,
        "headers": [{"name": "Authorization", "value": f"Bearer {token}"}],
    }


def merged_servers(current: list[Any], entry: Mapping[str, Any] | None) -> list[Any]:
    """``current`` without dodo's entries (by name or URL of ``entry``, or the default
    name), plus ``entry`` when given. Everything else is kept as it is, in order."""
    name = entry["name"] if entry is not None else ENTRY_NAME
    url = entry["url"] if entry is not None else None

    def ours(server: Any) -> bool:
        if not isinstance(server, Mapping):
            return False
        return server.get("name") == name or (url is not None and server.get("url") == url)

    kept = [server for server in current if not ours(server)]
    return [*kept, dict(entry)] if entry is not None else kept


def _persona_apps(serverapp: Any) -> list[Any]:
    """The persona manager's extension apps running in ``serverapp`` (none or one)."""
    manager = getattr(serverapp, "extension_manager", None)
    if manager is None:
        return []
    return list(manager.extension_apps.get(PERSONA_EXTENSION, ()))


def _configured_servers(app: Any) -> list[Any]:
    """The persona managers' ``builtin_mcp_servers`` as ``app``'s config gives them: the
    configured list, else the persona manager's own default for this config."""
    klass = getattr(app, "persona_manager_class", None)
    section = app.config.get("PersonaManager", {})
    if "builtin_mcp_servers" in section:
        return list(section["builtin_mcp_servers"] or [])
    default = getattr(klass, "_default_builtin_mcp_servers", None)
    if default is None:
        return []
    try:
        return list(default(SimpleNamespace(config=app.config)) or [])
    except Exception:  # their default failed: log it, offer dodo alone
        log.exception("dodo: Jupyter AI's default builtin_mcp_servers could not be computed")
        return []


def _set_servers(app: Any, entry: Mapping[str, Any] | None) -> None:
    from traitlets.config import Config

    servers = merged_servers(_configured_servers(app), entry)
    app.update_config(Config({"PersonaManager": {"builtin_mcp_servers": servers}}))


def refusal_for_builtin_request(
    web_settings: Mapping[str, Any],
    chat_id: str | None,
    persona_id: str | None,
    owner: str,
    hub_mode: bool,
) -> str | None:
    """Why a request with the built-in token must be refused; None when it may be served.

    In hub mode the request must come from a persona answering a message the owner sent:
    the chat and persona headers are looked up in the persona managers of this server
    (``web_settings["jupyter-ai"]["persona-managers"]``), as Jupyter AI's own
    ``ClientRoutingMiddleware`` does. Locally there are no visitors."""
    if not hub_mode:
        return None
    managers = web_settings.get("jupyter-ai", {}).get("persona-managers", {})
    manager = managers.get(chat_id) if chat_id else None
    personas = getattr(manager, "personas", None) or {}
    persona = personas.get(persona_id) if persona_id else None
    message = getattr(persona, "processing_message", None)
    sender = getattr(message, "sender", None)
    if sender == owner:
        return None
    return (
        f"Jupyter AI's built-in access to {owner}'s MCP tools serves only messages "
        f"{owner} sends in a chat on this server; this request is not answering one. "
        f"Use your own Jupyter server's Jupyter AI, or ask {owner} to run the task."
    )


class _Runtime(Protocol):
    """What the built-in entry needs of dodo's runtime."""

    resolver: Any
    tokens: TokenService

    @property
    def opened(self) -> bool: ...

    async def ready(self) -> None: ...


class JupyterAIBuiltin:
    """Offers the gateway to Jupyter AI's personas while the server runs.

    Parameters
    ----------
    runtime:
        dodo's runtime (its token service and owner).
    serverapp:
        The Jupyter server, whose persona manager extension gets the entry.
    gateway_url:
        This server's own ``…/dodo/mcp`` URL, as kernels get it.
    enabled:
        ``DodoApp.jupyter_ai_builtin``.
    """

    def __init__(
        self, runtime: _Runtime, serverapp: Any, gateway_url: str, *, enabled: bool
    ) -> None:
        self._runtime = runtime
        self._serverapp = serverapp
        self.gateway_url = gateway_url
        self.enabled = enabled
        self._apps: list[Any] = []
        self._minted: MintedToken | None = None
        self.token_id: str | None = None

    def start(self) -> asyncio.Future[None]:
        """Add the entry now (no I/O), store its token in the background; the future
        ends when the token works."""
        from .tokens import mint_token

        self._apps = _persona_apps(self._serverapp) if self.enabled else []
        if self._apps:
            self._minted = mint_token(
                self._runtime.resolver.owner, BUILTIN_LABEL, kind=BUILTIN_TOKEN_KIND
            )
            entry = builtin_entry(self.gateway_url, self._minted.token)
            for app in self._apps:
                _set_servers(app, entry)
            log.info(
                "dodo: Jupyter AI's personas get the MCP gateway at %s (built in; "
                "c.DodoApp.jupyter_ai_builtin = False turns it off)",
                self.gateway_url,
            )
        return asyncio.ensure_future(self._store())

    async def _store(self) -> None:
        await self._runtime.ready()
        owner = self._runtime.resolver.owner
        await self._runtime.tokens.delete_kind(owner, BUILTIN_TOKEN_KIND)
        if self._minted is not None:
            await self._runtime.tokens.save(self._minted)
            self.token_id = self._minted.token_id

    async def stop(self) -> None:
        """Take the entry out and delete its token."""
        for app in self._apps:
            _set_servers(app, None)
        self._apps = []
        self._minted = None
        self.token_id = None
        if self._runtime.opened:
            await self._runtime.tokens.delete_kind(self._runtime.resolver.owner, BUILTIN_TOKEN_KIND)

    def status(self) -> dict[str, Any]:
        """For the sidebar: installed, offered, the token's id and the URL."""
        return {
            "installed": installed(),
            "enabled": self.enabled,
            "active": self.token_id is not None,
            "token_id": self.token_id,
            "url": self.gateway_url,
        }
