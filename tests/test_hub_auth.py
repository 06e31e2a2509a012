"""Who is calling the hub catalog service: tokens from headers, access and admin from the
hub's model of a token."""

from __future__ import annotations

import json
from typing import Any

from dodo_jupyter.hub.auth import access_scopes_from_env, caller_from_model, token_from_header

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
