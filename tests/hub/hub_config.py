"""The configuration of a test JupyterHub (:class:`~.harness.Hub`): its users, secrets
and paths, the ``jupyterhub_config.py`` it runs (:func:`write_config`), and the block of
``docs/jupyterhub.md`` that configures dodo's hub catalog service
(:func:`docs_catalog_config`)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .harness import Hub

__all__ = [
    "ADMIN_API_TOKEN",
    "ADMIN_GROUP",
    "ADMIN_PASSWORD",
    "CHP",
    "JUPYTERHUB_DOC",
    "PROXY_AUTH_TOKEN",
    "REPO",
    "RUN_MARKER",
    "USERS",
    "USER_PASSWORD",
    "HubError",
    "base_environment",
    "docs_catalog_config",
    "write_config",
]

REPO = Path(__file__).resolve().parents[2]

#: The document whose ``jupyterhub_config.py`` block the catalog-service hubs run.
JUPYTERHUB_DOC = REPO / "docs" / "jupyterhub.md"

#: configurable-http-proxy as installed by ``tests/hub/install-proxy.sh``.
CHP = Path(
    os.environ.get(
        "DODO_TEST_CHP", Path(__file__).parent / ".node/node_modules/.bin/configurable-http-proxy"
    )
)

#: The hub's users; ``admin`` is a hub admin and in :data:`ADMIN_GROUP`.
USERS = ("admin", "alice", "bob")
ADMIN_GROUP = "dodo-admins"

#: Environment variable every process of one run carries (value: the run directory).
RUN_MARKER = "DODO_HUB_E2E_RUN"

USER_PASSWORD = "user-password-for-tests"
ADMIN_PASSWORD = "admin-password-for-tests-0123456789abcdef"
ADMIN_API_TOKEN = "test-admin-api-token-0123456789abcdef"
PROXY_AUTH_TOKEN = "test-proxy-auth-token-0123456789abcdef"


class HubError(AssertionError):
    """The hub did not do what a test needed; the message ends with the log's tail."""


def docs_catalog_config(port: int, db_url: str) -> str:
    """The ``jupyterhub_config.py`` block of ``docs/jupyterhub.md`` (the first ```python
    block after its "run as-is by the end-to-end tests" comment), with ``dodo_port`` and
    ``dodo_db_url`` set to ``port`` and ``db_url``."""
    text = JUPYTERHUB_DOC.read_text()
    marker = text.index("run as-is by the end-to-end tests")
    start = text.index("```python\n", marker) + len("```python\n")
    block = text[start : text.index("```", start)]
    replaced = []
    for line in block.splitlines():
        if line.startswith("dodo_port = "):
            line = f"dodo_port = {port}"
        elif line.startswith("dodo_db_url = "):
            line = f"dodo_db_url = {db_url!r}"
        replaced.append(line)
    out = "\n".join(replaced) + "\n"
    if f"dodo_port = {port}" not in out or f"dodo_db_url = {db_url!r}" not in out:
        raise HubError(f"{JUPYTERHUB_DOC}: the block lost its dodo_port/dodo_db_url lines")
    return out


def base_environment(run_dir: Path) -> dict[str, str]:
    """What every process of the run at ``run_dir`` gets: this checkout, and the run's
    marker."""
    return {"PYTHONPATH": str(REPO), RUN_MARKER: str(run_dir)}


def write_config(hub: Hub) -> Path:
    """Write the run's ``jupyterhub_config.py`` (and the single-user servers' Jupyter
    config) for ``hub`` (see :mod:`.harness`); its path."""
    run = hub.run_dir
    (run / "home").mkdir(parents=True, exist_ok=True)
    jupyter_config = run / "jupyter-config"
    jupyter_config.mkdir(exist_ok=True)
    (jupyter_config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {"jpserver_extensions": {"dodo_jupyter": True}},
                "DodoApp": {
                    "default_catalog": False,
                    "allow_insecure_loopback": True,
                    **hub.dodo_settings,
                },
            },
            indent=2,
        )
    )
    # Per-user paths need $HOME (set by the spawner), so they live in a .py config.
    if "db_url" not in hub.dodo_settings or "key_file" not in hub.dodo_settings:
        (jupyter_config / "jupyter_server_config.py").write_text(
            textwrap.dedent(
                """\
                import os

                _home = os.environ["HOME"]
                c.DodoApp.db_url = "sqlite:///" + os.path.join(_home, "dodo", "dodo.sqlite")
                c.DodoApp.key_file = os.path.join(_home, "dodo", "crypt.key")
                """
            )
        )
    services: list[dict[str, Any]] = [
        {"name": "test-admin", "api_token": hub.admin_token},
    ]
    access_services: list[str] = []
    for spec in hub.services:
        spec = dict(spec)
        spec["environment"] = {**base_environment(hub.run_dir), **spec.get("environment", {})}
        services.append(spec)
        if spec.get("url"):
            access_services.append(f"access:services!service={spec['name']}")
    settings: dict[str, Any] = {
        "JupyterHub.bind_url": hub.url,
        "JupyterHub.hub_bind_url": f"http://127.0.0.1:{hub.hub_port}",
        "JupyterHub.db_url": f"sqlite:///{run / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(run / "jupyterhub_cookie_secret"),
        "JupyterHub.pid_file": str(run / "jupyterhub.pid"),
        "JupyterHub.cleanup_servers": True,
        "JupyterHub.cleanup_proxy": True,
        # POST .../server answers 202 at once; spawn() polls for readiness.
        "JupyterHub.tornado_settings": {"slow_spawn_timeout": 0},
        "ConfigurableHTTPProxy.command": [str(CHP)],
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{hub.proxy_api_port}",
        "ConfigurableHTTPProxy.auth_token": PROXY_AUTH_TOKEN,
        "ConfigurableHTTPProxy.pid_file": str(run / "proxy.pid"),
        "JupyterHub.authenticator_class": "shared-password",
        "SharedPasswordAuthenticator.user_password": USER_PASSWORD,
        "SharedPasswordAuthenticator.admin_password": ADMIN_PASSWORD,
        "Authenticator.admin_users": {"admin"},
        "Authenticator.allowed_users": set(USERS),
        "JupyterHub.spawner_class": "simple",
        "SimpleLocalProcessSpawner.home_dir_template": str(run / "home" / "{username}"),
        "Spawner.ip": "127.0.0.1",
        "Spawner.cmd": [sys.executable, "-m", "jupyterhub.singleuser"],
        "Spawner.args": ["--allow-root", "--HubOAuth.cache_max_age=1"],
        "Spawner.environment": {
            **base_environment(hub.run_dir),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "JUPYTER_CONFIG_DIR": str(jupyter_config),
            "DODO_TEST_PROXY_URL": hub.url,
        },
        "Spawner.server_token_scopes": [
            "users:activity!user",
            "access:servers!server",
            *access_services,
            "custom:dodo:admin",
            "read:users!user",  # the owner's creation time, as docs/jupyterhub.md
        ],
        # A set: the docs' block adds to it with .add().
        "JupyterHub.extra_user_scopes": {
            "shares!user",
            "read:users:name",
            "read:groups:name",
            *access_services,
        },
        "JupyterHub.custom_scopes": {
            "custom:dodo:admin": {"description": "Administer dodo's approved MCP catalog."}
        },
        "JupyterHub.load_groups": {ADMIN_GROUP: {"users": ["admin"]}},
        "JupyterHub.load_roles": [
            {"name": "admin", "services": ["test-admin"]},
            {"name": "dodo-admin", "scopes": ["custom:dodo:admin"], "groups": [ADMIN_GROUP]},
        ],
        "JupyterHub.services": services,
    }
    docs_block = ""
    if hub.catalog_db_url is not None or hub.z2jh:
        # The docs' block sets these itself; the harness keeps only what it adds.
        del settings["JupyterHub.custom_scopes"]
        settings["JupyterHub.load_roles"] = settings["JupyterHub.load_roles"][:1]
    if hub.catalog_db_url is not None:
        docs_block = docs_catalog_config(hub.catalog_port, hub.catalog_db_url)
    if hub.z2jh:
        docs_block = _z2jh_config(hub, settings)
    if docs_block:
        # Services inherit next to nothing: give the catalog service this checkout.
        docs_block += (
            "\nfor _service in c.JupyterHub.services:\n"
            f"    _service['environment'] = {{**{base_environment(hub.run_dir)!r}, "
            "**_service.get('environment', {})}\n"
        )
    lines = ["# Written by tests/hub/harness.py", "c = get_config()  # noqa: F821", ""]
    lines += [f"c.{name} = {value!r}" for name, value in settings.items()]
    path = run / "jupyterhub_config.py"
    path.write_text("\n".join(lines) + "\n\n" + docs_block + "\n" + hub.extra_config + "\n")
    return path


def _z2jh_config(hub: Hub, settings: dict[str, Any]) -> str:
    """The chart's configuration for the documented values, with the harness's
    ``extra_user_scopes`` (taken out of ``settings``) as a YAML list in ``hub.config``
    and its own token scopes left to the documented ``hub.extraConfig``."""
    from .z2jh import docs_values, jupyterhub_config, merge_values, on_this_machine

    volume = hub.run_dir / "volume"
    volume.mkdir(exist_ok=True)
    documented = on_this_machine(docs_values(JUPYTERHUB_DOC), port=hub.catalog_port, volume=volume)
    extra_user_scopes = sorted(settings.pop("JupyterHub.extra_user_scopes"))
    del settings["Spawner.server_token_scopes"]
    operator = {"hub": {"config": {"JupyterHub": {"extra_user_scopes": extra_user_scopes}}}}
    return jupyterhub_config(merge_values(documented, operator))
