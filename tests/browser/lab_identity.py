"""A test identity provider for browser tests of hub mode, without a JupyterHub.

The browser carries a ``dodo_test_user=<name>`` cookie (set by the test); the provider
answers with a ``JupyterHubUser`` built like JupyterHub's own user model, for the names
listed in ``$DODO_TEST_HUB_USERS`` (``alice,bob:admin``). Anything else is anonymous,
which jupyter_server answers with 403. The requests count as token-authenticated, so no
XSRF cookie is involved (the XSRF rules have their own tests in ``tests/test_xsrf.py``).
"""

from __future__ import annotations

import os

from jupyter_server.auth.identity import IdentityProvider
from jupyterhub.singleuser.extension import JupyterHubUser
from tornado.web import RequestHandler

from tests.hub_identity import hub_user

COOKIE = "dodo_test_user"


def _users() -> dict[str, dict[str, object]]:
    users = {}
    for item in os.environ.get("DODO_TEST_HUB_USERS", "").split(","):
        name, _, flag = item.strip().partition(":")
        if name:
            users[name] = hub_user(name, admin=flag == "admin")
    return users


class CookieHubIdentityProvider(IdentityProvider):
    """Maps the ``dodo_test_user`` cookie to a registered hub user."""

    _known = _users()

    def get_user(self, handler: RequestHandler) -> JupyterHubUser | None:
        name = handler.get_cookie(COOKIE, "")
        model = self._known.get(name or "")
        if model is None:
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]
        return JupyterHubUser(model)
