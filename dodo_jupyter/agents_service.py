"""The sidebar's Agents section: which agent hosts are here, whether they use this
server's gateway, and one call to point them at it (or stop).

Five agents are listed, each with an id the REST API uses
(``dodo/api/user/agents/{id}``):

* ``jupyter-ai-builtin``: Jupyter AI's personas get the gateway without any file; the
  server setting ``c.DodoApp.jupyter_ai_builtin`` switches it (shown, not changed here);
* ``jupyter-ai``, ``nbi``, ``claude-code``: a config file (see
  :mod:`dodo_jupyter.agent_config`) whose ``dodo`` entry is written or removed here;
* ``claude-cli``: the ``claude mcp add --transport http …`` line, with a gateway token
  labelled :data:`CLI_TOKEN_LABEL` made for it (the one answer that holds a secret).

An agent's ``state`` is one of :data:`STATES`; its ``message`` says what to do next.
Reading and writing the files happens on a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import agent_config
from .exceptions import BadRequest, NotFound, ValidationFailed

if TYPE_CHECKING:
    from .runtime import DodoRuntime
    from .tokens import TokenService

__all__ = [
    "AGENT_IDS",
    "BUILTIN_ID",
    "CLI_ID",
    "CLI_TOKEN_LABEL",
    "FILE_IDS",
    "SERVER_NAME",
    "STATES",
    "AgentPlace",
    "AgentsService",
    "builtin_state",
    "cli_command",
    "gateway_url_for",
    "gateway_url_of",
]

#: The name of dodo's entry in agents' configs (and of the ``claude mcp add`` server).
SERVER_NAME = "dodo"
BUILTIN_ID = "jupyter-ai-builtin"
CLI_ID = "claude-cli"
#: The agents configured through a file, in the order they are listed.
FILE_IDS = ("jupyter-ai", "nbi", "claude-code")
AGENT_IDS = (BUILTIN_ID, *FILE_IDS, CLI_ID)
#: The label of the tokens made for the ``claude mcp add`` line.
CLI_TOKEN_LABEL = "Claude Code (CLI)"  # noqa: S105 - a label, not a secret
#: The setting that switches the built-in Jupyter AI access.
BUILTIN_SETTING = "c.DodoApp.jupyter_ai_builtin"
#: ``on``/``off``: the built-in access; ``configured``: the entry points at this gateway
#: with a live token; ``token_revoked``: it does, but its token is gone; ``elsewhere``:
#: an entry of that name points somewhere else; ``not_configured``: no entry (no CLI
#: token); ``invalid``: the file cannot be used (the message says why).
STATES = (
    "on",
    "off",
    "configured",
    "token_revoked",
    "elsewhere",
    "not_configured",
    "invalid",
)

_NAMES = {
    BUILTIN_ID: "Jupyter AI (built in)",
    "jupyter-ai": "Jupyter AI settings file",
    "nbi": "notebook-intelligence",
    "claude-code": "Claude Code project file",
    CLI_ID: "Claude Code CLI",
}
_TOKEN_PLACEHOLDER = "<token>"  # noqa: S105 - a placeholder shown in place of a secret


def gateway_url_of(serverapp: Any) -> str:
    """This server's gateway URL, as kernels get it (``DodoApp``'s kernel access)."""
    return str(serverapp.connection_url).rstrip("/") + "/dodo/mcp"


def cli_command(url: str, token: str = _TOKEN_PLACEHOLDER) -> str:
    """The ``claude mcp add`` line that points Claude Code's CLI at the gateway."""
    return (
        f"claude mcp add --transport http {SERVER_NAME} {url} "
        f'--header "Authorization: Bearer {token}"'
    )


def gateway_url_for(runtime: DodoRuntime, serverapp: Any) -> str:
    """The gateway URL DodoApp gave kernels and Jupyter AI at start (the same formula,
    :func:`gateway_url_of`, before it started)."""
    builtin = runtime.jupyter_ai
    return builtin.gateway_url if builtin is not None else gateway_url_of(serverapp)


def builtin_state(runtime: DodoRuntime, serverapp: Any) -> dict[str, Any]:
    """``{installed, enabled, active, token_id}`` of Jupyter AI's built-in access
    (:meth:`~dodo_jupyter.jupyter_ai.JupyterAIBuiltin.status`; before DodoApp started it,
    whether the persona manager is installed and ``DodoApp.jupyter_ai_builtin``)."""
    if runtime.jupyter_ai is not None:
        return runtime.jupyter_ai.status()
    from .jupyter_ai import installed

    app = _dodo_app(serverapp)
    return {
        "installed": installed(),
        "enabled": bool(getattr(app, "jupyter_ai_builtin", False)),
        "active": False,
        "token_id": None,
    }


def _dodo_app(serverapp: Any) -> Any:
    manager = getattr(serverapp, "extension_manager", None)
    extension = getattr(manager, "extension_apps", {}).get("dodo_jupyter") if manager else None
    return next(iter(extension), None) if extension else None


@dataclass(frozen=True)
class AgentPlace:
    """Where this server's agents are configured: the owner, the directories and URL."""

    username: str
    #: The directory JupyterLab serves (``ServerApp.root_dir``): project files go there.
    root: Path
    #: The owner's home directory: per-user files go there.
    home: Path
    #: This server's gateway URL.
    url: str


class AgentsService:
    """Lists the agents and writes or removes their configs for one owner.

    Parameters
    ----------
    tokens:
        The token service: configs get a new gateway token, removing one revokes it.
    builtin:
        Returns :func:`builtin_state`'s answer (called for each listing).
    which:
        Finds a program on ``PATH`` (``shutil.which``; tests replace it).
    """

    def __init__(
        self,
        tokens: TokenService,
        builtin: Callable[[], dict[str, Any]],
        *,
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self.tokens = tokens
        self._builtin = builtin
        self._which = which

    async def list_all(self, place: AgentPlace) -> list[dict[str, Any]]:
        """Every agent of :data:`AGENT_IDS`, with its state."""
        tokens = await self.tokens.list(place.username)
        files = await asyncio.to_thread(
            lambda: {agent_id: self._read_file(agent_id, place) for agent_id in FILE_IDS}
        )
        cli_installed = await asyncio.to_thread(self._which, "claude")
        return [
            self._builtin_status(place),
            *(self._file_status(agent_id, place, files[agent_id], tokens) for agent_id in FILE_IDS),
            self._cli_status(place, cli_installed is not None, tokens),
        ]

    async def status(self, agent_id: str, place: AgentPlace) -> dict[str, Any]:
        """One agent's state; :class:`NotFound` for an unknown id."""
        _check_id(agent_id)
        for agent in await self.list_all(place):
            if agent["id"] == agent_id:
                return agent
        raise AssertionError(agent_id)  # pragma: no cover - every id is listed

    async def write(self, agent_id: str, place: AgentPlace) -> dict[str, Any]:
        """Write the agent's config with a new token (or, for ``claude-cli``, make the
        token and its line). A file that cannot be used raises and is left alone."""
        _check_id(agent_id)
        if agent_id == BUILTIN_ID:
            raise BadRequest(_builtin_hint())
        if agent_id == CLI_ID:
            new = await self.tokens.create(place.username, CLI_TOKEN_LABEL)
            return {
                "agent": await self.status(agent_id, place),
                "token_id": new.info["id"],
                "token": new.token,
                "command": cli_command(place.url, new.token),
            }
        target = agent_config.TARGETS[agent_id]
        report = await agent_config.configure(
            self.tokens,
            place.username,
            target,
            root=place.root,
            home=place.home,
            url=place.url,
            name=SERVER_NAME,
            label=f"{_NAMES[agent_id]} (written from the sidebar)",
        )
        return {
            "agent": await self.status(agent_id, place),
            "path": str(report.path),
            "backup": str(report.backup) if report.backup else None,
            "replaced": bool(report.replaced),
            "token_id": report.token_id,
            "revoked_token_id": report.revoked_token_id,
        }

    async def remove(self, agent_id: str, place: AgentPlace) -> dict[str, Any]:
        """Remove dodo's entry from the agent's config and revoke its token (for
        ``claude-cli``: revoke the tokens made for the line)."""
        _check_id(agent_id)
        if agent_id == BUILTIN_ID:
            raise BadRequest(_builtin_hint())
        if agent_id == CLI_ID:
            revoked = [
                t["id"]
                for t in await self.tokens.list(place.username)
                if t["label"] == CLI_TOKEN_LABEL
            ]
            for token_id in revoked:
                await self.tokens.delete(place.username, token_id)
            return {
                "agent": await self.status(agent_id, place),
                "removed": bool(revoked),
                "path": None,
                "backup": None,
                "revoked_token_id": revoked[0] if revoked else None,
            }
        target = agent_config.TARGETS[agent_id]
        report = await agent_config.unconfigure(
            self.tokens,
            place.username,
            target,
            root=place.root,
            home=place.home,
            url=place.url,
            name=SERVER_NAME,
        )
        return {
            "agent": await self.status(agent_id, place),
            "removed": report is not None,
            "path": str(target.path(place.root, place.home)),
            "backup": str(report.backup) if report and report.backup else None,
            "revoked_token_id": report.revoked_token_id if report else None,
        }

    # -- states -----------------------------------------------------------------------

    def _builtin_status(self, place: AgentPlace) -> dict[str, Any]:
        state = self._builtin()
        installed = bool(state.get("installed"))
        enabled = bool(state.get("enabled"))
        if not installed:
            message = (
                "Jupyter AI is not installed on this server (pip install jupyter-ai); "
                f"with it, its personas get the gateway when {BUILTIN_SETTING} = True."
            )
        elif enabled and not state.get("active", True):
            message = (
                "On, but no Jupyter AI persona manager runs in this server (is the "
                "jupyter_ai_persona_manager server extension enabled?), so no persona "
                "gets the gateway yet."
            )
        elif enabled:
            message = (
                "Every Jupyter AI persona gets this gateway, no file needed. To switch it "
                "off, set the setting above to False and restart the server."
            )
        else:
            message = (
                "Off: Jupyter AI personas do not get this gateway. To switch it on, set "
                "the setting above to True (in jupyter_server_config.py) and restart."
            )
        return {
            "id": BUILTIN_ID,
            "name": _NAMES[BUILTIN_ID],
            "kind": "builtin",
            "installed": installed,
            "configured": installed and enabled and bool(state.get("active", True)),
            "path": None,
            "state": "on" if enabled else "off",
            "message": message,
            "token_id": state.get("token_id"),
            "setting": f"{BUILTIN_SETTING} = {'True' if enabled else 'False'}",
            "command": None,
        }

    @staticmethod
    def _read_file(agent_id: str, place: AgentPlace) -> dict[str, Any]:
        """On a thread: whether the agent is installed and dodo's entry in its file."""
        target = agent_config.TARGETS[agent_id]
        path = target.path(place.root, place.home)
        found: dict[str, Any] = {"path": path, "installed": agent_config.installed(target)}
        try:
            found["entry"] = agent_config.read_entry(target, path, name=SERVER_NAME, url=place.url)
        except ValidationFailed as e:
            found["error"] = e.message
            return found
        found["token_id"] = (
            agent_config.token_id_in(target, found["entry"]) if found["entry"] else None
        )
        return found

    def _file_status(
        self,
        agent_id: str,
        place: AgentPlace,
        found: dict[str, Any],
        tokens: list[dict[str, Any]],
    ) -> dict[str, Any]:
        entry = found.get("entry")
        token_id = found.get("token_id")
        live = {t["id"]: t for t in tokens}
        if "error" in found:
            state, message = "invalid", found["error"]
        elif entry is None:
            state = "not_configured"
            message = f"No “{SERVER_NAME}” entry yet: Write config adds one with its own token."
        elif not _points_at(entry, place.url):
            state = "elsewhere"
            message = (
                f"Its “{SERVER_NAME}” entry points at another server; Write config points "
                "it at this one (the file is backed up first)."
            )
        elif token_id in live:
            state = "configured"
            message = f"Uses this gateway (token {live[token_id]['prefix']}…)."
        else:
            state = "token_revoked"
            message = "Its token was revoked or expired: Write again gives it a new one."
        return {
            "id": agent_id,
            "name": _NAMES[agent_id],
            "kind": "file",
            "installed": bool(found["installed"]),
            "configured": state == "configured",
            "path": str(found["path"]),
            "state": state,
            "message": message,
            "token_id": token_id if token_id in live else None,
            "setting": None,
            "command": None,
        }

    def _cli_status(
        self, place: AgentPlace, installed: bool, tokens: list[dict[str, Any]]
    ) -> dict[str, Any]:
        mine = [t for t in tokens if t["label"] == CLI_TOKEN_LABEL]
        if mine:
            state = "configured"
            message = (
                f"A token was made for the line ({mine[0]['prefix']}…). Remove revokes it "
                f"(then run: claude mcp remove {SERVER_NAME})."
            )
        else:
            state = "not_configured"
            message = "Make the line to run in a terminal: it gets its own token, shown once."
        return {
            "id": CLI_ID,
            "name": _NAMES[CLI_ID],
            "kind": "cli",
            "installed": installed,
            "configured": bool(mine),
            "path": None,
            "state": state,
            "message": message,
            "token_id": mine[0]["id"] if mine else None,
            "setting": None,
            "command": cli_command(place.url),
        }


def _points_at(entry: dict[str, Any], url: str) -> bool:
    value = entry.get("url")
    return not isinstance(value, str) or value.rstrip("/") == url.rstrip("/")


def _check_id(agent_id: str) -> None:
    if agent_id not in AGENT_IDS:
        raise NotFound(f"No agent {agent_id!r}; the agents are {', '.join(AGENT_IDS)}.")


def _builtin_hint() -> str:
    return (
        "Jupyter AI's built-in access is a server setting, not a file: set "
        f"{BUILTIN_SETTING} = True (or False) in jupyter_server_config.py and restart."
    )
