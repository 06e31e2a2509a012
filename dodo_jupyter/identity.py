"""Who is calling: the owner, an administrator, or a visitor.

jupyter_server authenticates a request (``handler.current_user``); this module decides
what that user is *to dodo*. Two modes:

``local``
    No JupyterHub. The OS user running the server owns it and is its administrator.
    Every request jupyter_server authenticated maps to the owner, including token-only
    requests from kernels, which jupyter_server would otherwise give a random
    anonymous name.

``hub``
    A JupyterHub single-user server. The owner is ``JUPYTERHUB_USER`` at
    ``JUPYTERHUB_API_URL``. A different hub user reaching the server through JupyterHub
    sharing, or a hub admin opening it, is a *visitor*: the catalog is visible to them,
    nothing personal is.
    Administrators are hub admins (``hub_user["admin"]``), holders of the
    ``custom:dodo:admin`` scope, members of ``DodoApp.admin_groups`` or users named in
    ``DodoApp.admin_users``. The hub user model comes with each request (jupyter_server's
    HubAuth caches it no longer than its ``cache_max_age``); nothing here caches it.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .exceptions import Forbidden

__all__ = [
    "ADMIN_SCOPE",
    "HubIdentityResolver",
    "Identity",
    "IdentityResolver",
    "LocalIdentityResolver",
    "hub_user_is_admin",
    "make_resolver",
]

ADMIN_SCOPE = "custom:dodo:admin"

Mode = Literal["local", "hub"]

_PERSONAL = "MCP connections and tokens are personal, so use them from your own server."


@dataclass(frozen=True)
class Identity:
    """The caller as dodo sees it."""

    username: str
    mode: Mode
    is_owner: bool
    is_admin: bool
    #: The server's owner (whom a caller who is not the owner is told about).
    owner: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "mode": self.mode,
            "is_owner": self.is_owner,
            "is_admin": self.is_admin,
        }

    def require_owner(self, why: str = _PERSONAL) -> Identity:
        """Return self, or raise :class:`Forbidden` for anyone but the owner: a user the
        owner shares the server with, or a hub admin who opened it. ``why`` says why the
        request needs the owner."""
        if not self.is_owner:
            whose = f" ({self.owner!r} is)" if self.owner else ""
            raise Forbidden(f"{self.username!r} is not the owner of this server{whose}: {why}")
        return self

    def require_admin(self, action: str = "change the approved catalog") -> Identity:
        """Return self, or raise :class:`Forbidden` for a non-administrator; ``action``
        says what only administrators may do (``"read the audit log"``)."""
        if not self.is_admin:
            raise Forbidden(
                f"{self.username!r} is not a dodo administrator: only administrators "
                f"{action} (hub admins, holders of the custom:dodo:admin scope, members of "
                "DodoApp.admin_groups and users named in DodoApp.admin_users)."
            )
        return self


def hub_user_is_admin(
    hub_user: Mapping[str, Any],
    *,
    admin_users: Iterable[str] = (),
    admin_groups: Iterable[str] = (),
) -> bool:
    """Whether a hub user model (``GET /hub/api/user`` for a token) is a dodo administrator.

    True for hub admins (``admin``), tokens that carry :data:`ADMIN_SCOPE`, members of one
    of ``admin_groups`` and users named in ``admin_users``. Both the single-user server
    and the hub catalog service decide with this function.
    """
    name = str(hub_user.get("name") or "")
    if hub_user.get("admin") is True or (name and name in set(admin_users)):
        return True
    if ADMIN_SCOPE in (hub_user.get("scopes") or ()):
        return True
    return bool(set(admin_groups).intersection(hub_user.get("groups") or ()))


class IdentityResolver:
    """Maps an authenticated jupyter_server user to an :class:`Identity`."""

    mode: Mode

    @property
    def owner(self) -> str:
        """The username of the server's owner."""
        raise NotImplementedError

    def resolve(self, user: Any) -> Identity:
        raise NotImplementedError

    def owner_identity(self) -> Identity:
        """The owner's identity, for callers that act on the owner's behalf."""
        raise NotImplementedError


class LocalIdentityResolver(IdentityResolver):
    """Local mode: every authenticated request is the owner, who is also the admin."""

    mode: Mode = "local"

    def __init__(self, owner: str | None = None) -> None:
        self._owner = owner or getpass.getuser()

    @property
    def owner(self) -> str:
        return self._owner

    def resolve(self, user: Any) -> Identity:
        return self.owner_identity()

    def owner_identity(self) -> Identity:
        return Identity(self._owner, "local", is_owner=True, is_admin=True, owner=self._owner)


class HubIdentityResolver(IdentityResolver):
    """Hub mode: the owner is ``JUPYTERHUB_USER``; everyone else is a visitor."""

    mode: Mode = "hub"

    def __init__(
        self,
        owner: str,
        api_url: str,
        *,
        admin_users: Iterable[str] = (),
        admin_groups: Iterable[str] = (),
    ) -> None:
        self._owner = owner
        self.api_url = api_url
        self.admin_users = frozenset(admin_users)
        self.admin_groups = frozenset(admin_groups)

    @property
    def owner(self) -> str:
        return self._owner

    def resolve(self, user: Any) -> Identity:
        hub_user: Mapping[str, Any] = getattr(user, "hub_user", None) or {}
        username = str(hub_user.get("name") or getattr(user, "username", ""))
        return Identity(
            username,
            "hub",
            is_owner=username == self._owner,
            is_admin=hub_user_is_admin(
                {**hub_user, "name": username},
                admin_users=self.admin_users,
                admin_groups=self.admin_groups,
            ),
            owner=self._owner,
        )

    def owner_identity(self) -> Identity:
        return Identity(
            self._owner,
            "hub",
            is_owner=True,
            is_admin=self._owner in self.admin_users,
            owner=self._owner,
        )


def make_resolver(
    mode: str,
    *,
    admin_users: Iterable[str] = (),
    admin_groups: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> IdentityResolver:
    """Build the resolver for ``mode`` (``auto``, ``local`` or ``hub``)."""
    env = os.environ if environ is None else environ
    hub_user = env.get("JUPYTERHUB_USER", "")
    api_url = env.get("JUPYTERHUB_API_URL", "")
    if mode == "auto":
        mode = "hub" if hub_user and api_url else "local"
    if mode == "hub":
        if not hub_user or not api_url:
            raise ValueError(
                "DodoApp.identity_mode='hub' needs JUPYTERHUB_USER and JUPYTERHUB_API_URL; "
                "they are set when JupyterHub spawns the server."
            )
        return HubIdentityResolver(
            hub_user, api_url, admin_users=admin_users, admin_groups=admin_groups
        )
    if mode == "local":
        return LocalIdentityResolver()
    raise ValueError(f"Unknown DodoApp.identity_mode {mode!r}: use 'auto', 'local' or 'hub'.")
