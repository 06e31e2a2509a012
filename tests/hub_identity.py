"""A test identity provider that answers like JupyterHub's single-user server does.

Requests carry ``Authorization: token <name>``; the provider returns a
``jupyterhub.singleuser.extension.JupyterHubUser`` built from the hub user model
registered for that name in :data:`HUB_USERS` (the shape ``GET /hub/api/user`` returns).
The real JupyterHub end-to-end tests come with the hub issue; this exercises dodo's
identity rules against the same user objects.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider
from jupyterhub.singleuser.extension import JupyterHubUser
from tornado.web import RequestHandler

HUB_USERS: dict[str, dict[str, Any]] = {}


def hub_user(
    name: str,
    *,
    admin: bool = False,
    groups: list[str] | None = None,
    scopes: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "kind": "user",
        "name": name,
        "admin": admin,
        "groups": groups or [],
        "roles": ["user", "admin"] if admin else ["user"],
        "scopes": scopes or [f"access:servers!server={name}/"],
        "user_info": None,
        "servers": {},
        "token_id": None,
        "session_id": None,
    }


class FakeHubIdentityProvider(IdentityProvider):
    """Maps ``token <name>`` to the registered hub user; anything else is anonymous."""

    def get_user(self, handler: RequestHandler) -> JupyterHubUser | None:
        header = handler.request.headers.get("Authorization", "")
        name = header.removeprefix("token ").strip()
        model = HUB_USERS.get(name)
        if model is None:
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]
        return JupyterHubUser(model)


HUB_API_URL = "http://127.0.0.1:18081/hub/api"


def hub_server_config(dodo_config: dict[str, Any], **dodo: Any) -> dict[str, Any]:
    """A ``jp_server_config`` for hub mode with :class:`FakeHubIdentityProvider`."""
    return {
        "ServerApp": {
            "jpserver_extensions": {"dodo_jupyter": True},
            "identity_provider_class": "tests.hub_identity.FakeHubIdentityProvider",
        },
        "DodoApp": {**dodo_config, "identity_mode": "hub", **dodo},
    }
