"""The hub catalog service: one approved MCP catalog for every user of a JupyterHub.

In hub mode every user's Jupyter server has its own database; the catalog must not be
per user (one admin edit has to reach everybody). So JupyterHub runs this small tornado
service (``python -m dodo_jupyter.hub``) that owns the catalog in SQL (SQLite by
default, PostgreSQL by URL; the same migrations, validation and audit as a server's own
store) and serves it to the single-user servers:

1. **Reads.** A server in hub-catalog mode (``DodoApp.hub_catalog_url``) asks
   ``GET <service>/api/catalog`` with its own ``JUPYTERHUB_API_TOKEN`` and
   ``If-None-Match``; it mirrors every answer into its own store, so when the service is
   down it keeps serving the last good copy and says so (``catalog_stale``).
2. **Admin writes.** ``POST/PUT/DELETE`` on a server's ``dodo/api/admin/...`` are checked
   there first (the owner, an administrator: visitors cannot forward), then forwarded
   with the server's token; this service asks the hub about that token and allows hub
   admins and tokens carrying ``custom:dodo:admin`` (see :mod:`dodo_jupyter.hub.auth`).
3. **Configuration.** ``c.DodoHubApp.catalog`` / ``catalog_file`` / ``default_catalog``
   are reconciled at every start here, not on the users' servers.

Modules: :mod:`.auth` (tokens → callers), :mod:`.service` (store, catalog, audit),
:mod:`.handlers` (REST), :mod:`.app` (``DodoHubApp``, traits, listening).
"""

from .app import DodoHubApp

__all__ = ["DodoHubApp", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``dodo-jupyter-hub`` / ``python -m dodo_jupyter.hub``."""
    DodoHubApp.launch_instance(argv)
