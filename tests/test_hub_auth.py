"""Who is calling the hub catalog service: tokens from headers, access and admin from the
hub's model of a token."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dodo_jupyter.exceptions import Forbidden, Unauthorized, Unavailable
from dodo_jupyter.hub.auth import (
    HubTokenAuthority,
    access_scopes_from_env,
    caller_from_model,
    token_from_header,
)

from .hub_service import ACCESS, model


def test_token_from_header() -> None:
    assert token_from_header("token abc") == "abc"
    assert token_from_header("Bearer abc") == "abc"
    assert token_from_header("Basic abc") is None
    assert token_from_header("token a b") is None
    assert token_from_header(None) is None


def test_access_scopes_from_env() -> None:
    assert access_scopes_from_env({}) == {"access:services!service=dodo"}
    assert access_scopes_from_env({"JUPYTERHUB_SERVICE_NAME": "cat"}) == {
        "access:services!service=cat"
    }
    env = {"JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(["access:services!service=x"])}
    assert access_scopes_from_env(env) == {"access:services!service=x"}


def test_access_and_admin_from_the_hub_model() -> None:
    def caller(**kwargs: Any) -> Any:
        return caller_from_model(model("u", **kwargs), access_scopes={ACCESS})

    assert caller().has_access and not caller().is_admin
    assert caller(scopes=["access:services"]).has_access  # unfiltered scope covers dodo
    assert not caller(scopes=["access:services!service=other"]).has_access
    assert caller(scopes=[ACCESS, "custom:dodo:admin"]).is_admin
    assert caller(admin=True).is_admin
    service = caller_from_model(model("bot", kind="service"), access_scopes={ACCESS})
    assert service.actor == "service:bot"


class FakeHubAuth:
    """Answers like HubAuth.user_for_token(token, sync=False)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def user_for_token(self, token: str, *, sync: bool = True) -> Any:
        assert sync is False
        self.asked.append(token)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.asyncio
async def test_hub_token_authority() -> None:
    from tornado.web import HTTPError

    hub_auth = FakeHubAuth(model("ada", groups=["cat"]))
    authority = HubTokenAuthority(hub_auth=hub_auth, admin_groups={"cat"}, access_scopes={ACCESS})
    caller = await authority.authorize("token t1", admin=True)
    assert (caller.name, caller.is_admin) == ("ada", True) and hub_auth.asked == ["t1"]

    authority.hub_auth = FakeHubAuth(None)  # the hub said 403: not a valid token
    with pytest.raises(Unauthorized):
        await authority.authorize("token t2")
    authority.hub_auth = FakeHubAuth(HTTPError(502, "Failed to check authorization"))
    with pytest.raises(Unavailable, match="cannot ask JupyterHub"):
        await authority.authorize("token t3")
    authority.hub_auth = FakeHubAuth(model("bo"))
    with pytest.raises(Forbidden, match="'bo' is not a dodo administrator at the hub"):
        await authority.authorize("Bearer t4", admin=True)
