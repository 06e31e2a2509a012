"""The hub configuration docs/jupyterhub.md documents, loaded by JupyterHub's own config
classes without starting a hub (fast).

Both snippets add dodo's scope to ``c.JupyterHub.extra_user_scopes`` whatever it was
before: unset, a list (Zero to JupyterHub's ``hub.config`` gives YAML lists), a set, or
already added to by another snippet; and the values use only keys
:mod:`tests.hub.z2jh` can deploy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jupyterhub.app import JupyterHub
from traitlets.config import Config

from .harness import JUPYTERHUB_DOC, docs_catalog_config
from .z2jh import UnknownKey, docs_values, jupyterhub_config, merge_values, on_this_machine

DODO_SCOPE = "access:services!service=dodo"
THEIRS = ["shares!user", "read:users:name"]


def z2jh_values(**layer: Any) -> dict[str, Any]:
    parsed = on_this_machine(docs_values(JUPYTERHUB_DOC), port=18090, volume=Path("/tmp/v"))
    return merge_values(parsed, layer)


def loaded(source: str, before: str) -> Config:
    """``source`` run as a jupyterhub_config.py after ``before`` (as JupyterHub runs it)."""
    c = Config()
    exec(before + "\n" + source, {"c": c, "get_config": lambda: c})  # noqa: S102
    return c


EARLIER = {
    "unset": "",
    "a list": f"c.JupyterHub.extra_user_scopes = {THEIRS!r}",
    "a set": f"c.JupyterHub.extra_user_scopes = {set(THEIRS)!r}",
    "added to": "".join(f"c.JupyterHub.extra_user_scopes.add({s!r})\n" for s in THEIRS),
}


@pytest.mark.parametrize("earlier", EARLIER)
def test_the_jupyterhub_config_block_adds_dodos_scope(earlier: str) -> None:
    c = loaded(docs_catalog_config(18090, "sqlite://"), EARLIER[earlier])
    expected = {DODO_SCOPE} | (set() if earlier == "unset" else set(THEIRS))
    assert JupyterHub(config=c).extra_user_scopes == expected


@pytest.mark.parametrize("earlier", EARLIER)
def test_the_z2jh_values_add_dodos_scope(earlier: str) -> None:
    c = loaded(jupyterhub_config(z2jh_values()), EARLIER[earlier])
    expected = {DODO_SCOPE} | (set() if earlier == "unset" else set(THEIRS))
    assert JupyterHub(config=c).extra_user_scopes == expected


def test_the_z2jh_values_with_extra_user_scopes_in_hub_config() -> None:
    """What an operator's own values.yaml does: a YAML list under hub.config."""
    values = z2jh_values(hub={"config": {"JupyterHub": {"extra_user_scopes": THEIRS}}})
    c = loaded(jupyterhub_config(values), "")
    assert JupyterHub(config=c).extra_user_scopes == {DODO_SCOPE, *THEIRS}


def test_the_z2jh_values_configure_the_service_and_the_server_tokens() -> None:
    c = loaded(jupyterhub_config(z2jh_values()), "")
    hub = JupyterHub(config=c)
    (service,) = hub.services
    assert service["name"] == "dodo" and service["url"] == "http://127.0.0.1:18090"
    assert "--bind-url=http://127.0.0.1:18090" in service["command"]
    assert service["environment"] == {"DODO_HUB_DB_URL": "sqlite:////tmp/v/dodo_catalog.sqlite"}
    assert hub.load_roles == [
        {"name": "dodo-admin", "scopes": ["custom:dodo:admin"], "groups": ["dodo-admins"]}
    ]
    assert "custom:dodo:admin" in hub.custom_scopes
    python_block = loaded(docs_catalog_config(18090, "sqlite://"), "")
    assert c.Spawner.server_token_scopes == python_block.Spawner.server_token_scopes
    assert "read:users!user" in c.Spawner.server_token_scopes
    assert c.Spawner.environment.get_value({}) == {
        "DODO_HUB_CATALOG_URL": "http://127.0.0.1:18090/services/dodo/"
    }


@pytest.mark.parametrize(
    "layer",
    [
        {"hub": {"extraFiles": {"x": {"mountPath": "/x"}}}},
        {"singleuser": {"storage": {"type": "none"}}},
        {"proxy": {"https": {"enabled": True}}},
        {"hub": {"config": {"jupyterHub": {"admin_access": True}}}},
    ],
)
def test_a_key_the_translation_does_not_know_is_refused(layer: dict[str, Any]) -> None:
    with pytest.raises(UnknownKey):
        jupyterhub_config(z2jh_values(**layer))


def test_the_cluster_names_must_be_in_the_values() -> None:
    with pytest.raises(UnknownKey, match="no longer contain 'http://hub:10101'"):
        on_this_machine("hub: {}\n", port=1, volume=Path("/tmp"))
