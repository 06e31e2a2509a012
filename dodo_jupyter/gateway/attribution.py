"""Which agent made a gateway request: the token, the MCP client and the Jupyter AI chat.

An :class:`Attribution` travels with every :class:`~dodo_jupyter.gateway.caller.Caller`. It is
made of labels only, three of them chosen by the client:

* ``token_id``: the gateway token the request was authenticated with (dodo's own fact);
* ``client``: the MCP ``clientInfo`` (``name version``), from the ``initialize`` request
  of a 2025-11-25 session or the ``io.modelcontextprotocol/clientInfo`` ``_meta`` of a
  2026-07-28 request;
* ``chat_id`` and ``persona_id``: the ``X-Jupyter-Chat-Id`` and ``X-JupyterAI-Persona-Id``
  headers Jupyter AI (persona manager 0.3) stamps on every MCP request of a persona.

The client-chosen labels are untrusted input: each is cut to :data:`MAX_LABEL` characters,
control characters are dropped, and they are never used to grant anything. They are shown
to the user (the token list's "last used by") so a call can be traced to the chat and
persona that made it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "CHAT_ID_HEADER",
    "MAX_LABEL",
    "PERSONA_ID_HEADER",
    "Attribution",
    "clean_label",
    "client_label",
]

#: Jupyter AI's chat header (``jupyter_ai_persona_manager.mcp_server_models``).
CHAT_ID_HEADER = "X-Jupyter-Chat-Id"
#: Jupyter AI's persona header.
PERSONA_ID_HEADER = "X-JupyterAI-Persona-Id"
#: The longest label kept; longer ones are cut.
MAX_LABEL = 128


def clean_label(value: object) -> str | None:
    """``value`` as a printable, single-line label of at most :data:`MAX_LABEL`
    characters; None for anything that is not a non-empty string."""
    if not isinstance(value, str):
        return None
    if len(value) <= MAX_LABEL and value.isprintable() and value == value.strip():
        return value or None  # the usual label, already clean (checked once per call)
    text = "".join(c for c in value[: MAX_LABEL * 4] if c.isprintable()).strip()
    return text[:MAX_LABEL] or None


def client_label(info: Any) -> str | None:
    """``"name version"`` of an MCP ``clientInfo`` (a mapping or the SDK's
    ``Implementation``); None when it names nothing."""
    if info is None:
        return None
    if isinstance(info, dict):
        name, version = info.get("name"), info.get("version")
    else:
        name, version = getattr(info, "name", None), getattr(info, "version", None)
    name, version = clean_label(name), clean_label(version)
    if name is None:
        return None
    return clean_label(f"{name} {version}" if version else name)


@dataclass(frozen=True)
class Attribution:
    """Who made a gateway request, as far as dodo can tell; labels only."""

    token_id: str | None = None
    client: str | None = None
    chat_id: str | None = None
    persona_id: str | None = None

    @classmethod
    def from_headers(
        cls, header: Callable[[str], str | None], token_id: str | None = None
    ) -> Attribution:
        """The attribution of a request whose headers ``header(name)`` reads."""
        return cls(
            token_id=token_id,
            chat_id=clean_label(header(CHAT_ID_HEADER)),
            persona_id=clean_label(header(PERSONA_ID_HEADER)),
        )

    def with_client(self, info: Any) -> Attribution:
        """This attribution with the MCP ``clientInfo`` ``info`` (kept when ``info``
        names nothing)."""
        label = client_label(info)
        if label is None or label == self.client:
            return self
        return replace(self, client=label)

    def as_json(self) -> dict[str, str | None]:
        """The labels a user is shown (the token id is shown beside them already)."""
        return {"client": self.client, "chat_id": self.chat_id, "persona_id": self.persona_id}
