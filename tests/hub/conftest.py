"""Fixtures for the real-JupyterHub tests (``@pytest.mark.hub_e2e``).

``hub`` is one :class:`~tests.hub.harness.Hub` per test module (starting it takes about
5 s, each spawn about 5 s more). A module changes what the hub runs by overriding the
module-scoped fixtures below, e.g. the hub catalog service::

    @pytest.fixture(scope="module")
    def hub_catalog_db_url() -> str:
        return "sqlite:////tmp/catalog.sqlite"   # runs the block of docs/jupyterhub.md

Tests in one module share the hub, its users, shares and servers: leave them as you found
them, or order the tests on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .harness import Hub


@pytest.fixture(scope="module")
def hub_services() -> list[dict[str, Any]]:
    """Extra ``c.JupyterHub.services`` entries for this module's hub (none by default)."""
    return []


@pytest.fixture(scope="module")
def hub_dodo_settings() -> dict[str, Any]:
    """Extra ``DodoApp`` settings for every single-user server of this module's hub."""
    return {}


@pytest.fixture(scope="module")
def hub_extra_config() -> str:
    """Python appended to this module's ``jupyterhub_config.py``."""
    return ""


@pytest.fixture(scope="module")
def hub_catalog_db_url() -> str | None:
    """The dodo hub catalog service's database for this module's hub (None: no service;
    servers keep their own catalogs)."""
    return None


@pytest.fixture(scope="module")
def hub_z2jh() -> bool:
    """Whether this module's hub runs the catalog service as the Zero to JupyterHub values
    of docs/jupyterhub.md deploy it (tests/hub/z2jh.py)."""
    return False


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory,
    hub_services: list[dict[str, Any]],
    hub_dodo_settings: dict[str, Any],
    hub_extra_config: str,
    hub_catalog_db_url: str | None,
    hub_z2jh: bool,
) -> Iterator[Hub]:
    """A running JupyterHub for this module, stopped (and checked for leftovers) after it."""
    with Hub(
        tmp_path_factory.mktemp("hub"),
        services=hub_services,
        dodo_settings=hub_dodo_settings,
        extra_config=hub_extra_config,
        catalog_db_url=hub_catalog_db_url,
        z2jh=hub_z2jh,
    ) as running:
        yield running
