"""Who is calling the hub catalog service, as the hub says.

Every request to the service carries a JupyterHub API token in its ``Authorization``
header (``token <T>`` or ``Bearer <T>``): a user's own token, or the token the hub gave
a single-user server (``JUPYTERHUB_API_TOKEN``), which acts for that server's owner.
The service never reads tokens from URLs or cookies, so it has no XSRF surface.

A :class:`TokenAuthority` turns a token into a :class:`HubCaller`;
:class:`HubTokenAuthority` asks the hub (``GET {JUPYTERHUB_API_URL}/user`` with the
token, through :class:`jupyterhub.services.auth.HubAuth`, whose answers are cached for
``DodoHubApp.hub_auth_cache_max_age`` seconds). Tests plug in their own authority.

Two decisions are made from the hub's answer, per request:

* **access**: the token must carry the service's access scope
  (``access:services!service=<name>``, from ``$JUPYTERHUB_OAUTH_ACCESS_SCOPES`` or the
  service name);
* **admin**: :func:`dodo_jupyter.identity.hub_user_is_admin` — a hub admin, a token with
  ``custom:dodo:admin``, a member of ``DodoHubApp.admin_groups`` or a name in
  ``DodoHubApp.admin_users``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import Forbidden, Unauthorized, Unavailable
from ..identity import hub_user_is_admin

__all__ = [
    "HubCaller",
    "HubTokenAuthority",
    "TokenAuthority",
    "access_scopes_from_env",
    "caller_from_model",
    "token_from_header",
]

log = logging.getLogger(__name__)

_AUTH_HEADER = re.compile(r"^(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class HubCaller:
    """A caller the hub vouched for."""

    name: str
    kind: str
    is_admin: bool
    has_access: bool

    @property
    def actor(self) -> str:
        """The name written to the audit log: a username, or ``service:<name>``."""
        return self.name if self.kind == "user" else f"{self.kind}:{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "is_admin": self.is_admin}


def token_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: token T`` (or ``Bearer T``) header, or None."""
    match = _AUTH_HEADER.match(value or "")
    return match.group(1) if match else None


def access_scopes_from_env(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The scopes that grant access to this service: ``$JUPYTERHUB_OAUTH_ACCESS_SCOPES``
    (a JSON list, set by the hub for services with OAuth), else
    ``access:services!service=$JUPYTERHUB_SERVICE_NAME`` (default name ``dodo``)."""
    import json

    env = os.environ if environ is None else environ
    raw = env.get("JUPYTERHUB_OAUTH_ACCESS_SCOPES", "")
    if raw:
        try:
            scopes = json.loads(raw)
        except ValueError:
            scopes = None
        if isinstance(scopes, list) and scopes:
            return frozenset(str(s) for s in scopes)
    name = env.get("JUPYTERHUB_SERVICE_NAME") or "dodo"
    return frozenset({f"access:services!service={name}"})


def caller_from_model(
    model: Mapping[str, Any],
    *,
    access_scopes: Iterable[str],
    admin_users: Iterable[str] = (),
    admin_groups: Iterable[str] = (),
) -> HubCaller:
    """A :class:`HubCaller` from the hub's model of a token (``GET /hub/api/user``)."""
    from jupyterhub.services.auth import check_scopes

    scopes = set(model.get("scopes") or ())
    required = set(access_scopes)
    return HubCaller(
        name=str(model.get("name") or ""),
        kind=str(model.get("kind") or "user"),
        is_admin=hub_user_is_admin(model, admin_users=admin_users, admin_groups=admin_groups)
        or bool(check_scopes({"custom:dodo:admin"}, scopes)),
        has_access=bool(check_scopes(required, scopes)) if required else True,
    )


class TokenAuthority:
    """Identifies the caller of a token; subclasses ask somebody (the hub, a test table).

    ``DodoHubApp`` builds its ``authority_class`` with the keyword arguments of
    :class:`HubTokenAuthority`; a subclass takes what it needs and ignores the rest.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    async def identify(self, token: str) -> HubCaller | None:
        """The caller, or None when the token is not valid.

        Raises
        ------
        Unavailable
            when the authority cannot be asked right now.
        """
        raise NotImplementedError

    async def authorize(self, header: str | None, *, admin: bool = False) -> HubCaller:
        """The caller of a request's ``Authorization`` header, allowed to use the service
        (and, with ``admin``, to change the catalog).

        Raises
        ------
        Unauthorized
            no token, or one the hub does not know.
        Forbidden
            a valid token without the access scope, or not an administrator's.
        """
        token = token_from_header(header)
        if token is None:
            raise Unauthorized(
                "Send a JupyterHub API token: 'Authorization: token <token>' (a single-user "
                "server sends its JUPYTERHUB_API_TOKEN)."
            )
        caller = await self.identify(token)
        if caller is None:
            raise Unauthorized("The hub does not recognise this token (expired or revoked?).")
        if not caller.has_access:
            raise Forbidden(
                f"{caller.name!r} may not use the dodo catalog service: the token needs the "
                "scope access:services!service=<this service> (add it to "
                "c.Spawner.server_token_scopes and grant it to users, see docs/jupyterhub.md)."
            )
        if admin and not caller.is_admin:
            raise Forbidden(
                f"{caller.name!r} is not a dodo administrator at the hub: only hub admins, "
                "holders of the custom:dodo:admin scope, members of DodoHubApp.admin_groups "
                "and users named in DodoHubApp.admin_users administer the catalog (read "
                "and change its entries, read its audit log and every user's tool calls)."
            )
        return caller


class HubTokenAuthority(TokenAuthority):
    """Asks the hub through :class:`~jupyterhub.services.auth.HubAuth`.

    Parameters
    ----------
    cache_max_age:
        Seconds the hub's answer for one token is reused (``HubAuth.cache_max_age``).
    admin_users, admin_groups:
        Extra administrators besides hub admins and holders of ``custom:dodo:admin``.
    access_scopes:
        Scopes that grant access; default :func:`access_scopes_from_env`.
    hub_auth:
        A ready ``HubAuth`` (tests); default: one configured from the environment the hub
        gives its services (``JUPYTERHUB_API_URL``, ``JUPYTERHUB_API_TOKEN``).
    """

    def __init__(
        self,
        *,
        cache_max_age: int = 60,
        admin_users: Iterable[str] = (),
        admin_groups: Iterable[str] = (),
        access_scopes: Iterable[str] | None = None,
        hub_auth: Any = None,
        parent: Any = None,
    ) -> None:
        super().__init__()
        if hub_auth is None:
            try:
                from jupyterhub.services.auth import HubAuth
            except ImportError:
                raise RuntimeError(
                    "The hub catalog service needs JupyterHub: pip install 'dodo-jupyter[hub]'."
                ) from None
            hub_auth = HubAuth(cache_max_age=cache_max_age, parent=parent)
        self.hub_auth = hub_auth
        self.admin_users = frozenset(admin_users)
        self.admin_groups = frozenset(admin_groups)
        self.access_scopes = frozenset(
            access_scopes if access_scopes is not None else access_scopes_from_env()
        )

    async def identify(self, token: str) -> HubCaller | None:
        from tornado.web import HTTPError

        try:
            model = await self.hub_auth.user_for_token(token, sync=False)
        except HTTPError as e:
            # HubAuth logged the details; the message it carries names no secret.
            log.warning("dodo hub catalog: asking the hub about a token failed: %s", e)
            raise Unavailable(
                "The dodo catalog service cannot ask JupyterHub about this token right now "
                "(the hub API is unreachable or failing); retry later."
            ) from None
        if not isinstance(model, Mapping):
            return None
        return caller_from_model(
            model,
            access_scopes=self.access_scopes,
            admin_users=self.admin_users,
            admin_groups=self.admin_groups,
        )
