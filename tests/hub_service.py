"""The hub catalog service in-process, with a table of tokens instead of a hub.

:class:`TableAuthority` answers like :class:`~dodo_jupyter.hub.auth.HubTokenAuthority`
does from the hub's model of a token (``GET /hub/api/user``), so the service's own rules
(access scope, admin) run unchanged; only the question to the hub is replaced. The real
hub is in ``tests/hub/`` (``hub_e2e``).

:class:`ServiceRunner` serves :class:`~dodo_jupyter.hub.app.DodoHubApp`'s tornado app on
a loopback port on the running event loop; its port is bound at construction, so a
Jupyter server under test can be configured with :attr:`ServiceRunner.url` before the
service starts.
"""

from __future__ import annotations

from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from dodo_jupyter.hub.app import DodoHubApp
from dodo_jupyter.hub.auth import HubCaller, TokenAuthority, caller_from_model
from dodo_jupyter.hub.service import CatalogHub

ACCESS = "access:services!service=dodo"
PREFIX = "/services/dodo/"


def model(
    name: str,
    *,
    admin: bool = False,
    groups: list[str] | None = None,
    scopes: list[str] | None = None,
    kind: str = "user",
) -> dict[str, Any]:
    """A hub model of a token, with the service's access scope unless ``scopes`` says."""
    return {
        "kind": kind,
        "name": name,
        "admin": admin,
        "groups": groups or [],
        "scopes": [ACCESS] if scopes is None else scopes,
    }


class TableAuthority(TokenAuthority):
    """Tokens are looked up in :attr:`models` (token → hub model)."""

    def __init__(self, models: dict[str, dict[str, Any]] | None = None, **settings: Any) -> None:
        super().__init__(**settings)
        self.models = dict(models or {})
        self.admin_users = settings.get("admin_users", ())
        self.admin_groups = settings.get("admin_groups", ())

    async def identify(self, token: str) -> HubCaller | None:
        found = self.models.get(token)
        if found is None:
            return None
        return caller_from_model(
            found,
            access_scopes={ACCESS},
            admin_users=self.admin_users,
            admin_groups=self.admin_groups,
        )


#: The tokens every test service knows.
TOKENS: dict[str, dict[str, Any]] = {
    "admin-token": model("admin", admin=True),
    "scoped-token": model("scoped", scopes=[ACCESS, "custom:dodo:admin"]),
    "grouped-token": model("grouped", groups=["catalog-admins"]),
    "alice-token": model("alice"),
    "bob-token": model("bob"),
    "no-access-token": model("carol", scopes=["read:users:name!user=carol"]),
}


class ServiceRunner:
    """One hub catalog service on 127.0.0.1; :meth:`start` on the loop that will serve it."""

    def __init__(self, db_url: str, **traits: Any) -> None:
        self.sockets = bind_sockets(0, "127.0.0.1")
        self.port = int(self.sockets[0].getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}{PREFIX}"
        self.app = DodoHubApp(
            db_url=db_url,
            base_url=PREFIX,
            default_catalog=False,
            allow_insecure_loopback=True,
            catalog_cache_ttl=0.0,
            admin_groups={"catalog-admins"},
            **traits,
        )
        self.authority = TableAuthority(
            TOKENS, admin_users=self.app.admin_users, admin_groups=self.app.admin_groups
        )
        self.hub: CatalogHub = self.app.make_hub(self.authority)
        self.server: HTTPServer | None = None

    async def start(self) -> None:
        self.server = HTTPServer(self.app.make_web_app(self.hub))
        self.server.add_sockets(self.sockets)
        await self.hub.ready()

    async def stop(self) -> None:
        """Stop listening (the port is closed: clients get "connection refused")."""
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()
            self.server = None
        await self.hub.close()
