"""DodoHubApp: the hub catalog service as a traitlets application.

Run by JupyterHub as a managed service (``python -m dodo_jupyter.hub`` or the
``dodo-jupyter-hub`` console script; see docs/jupyterhub.md). It listens on
``$JUPYTERHUB_SERVICE_URL`` and serves below ``$JUPYTERHUB_SERVICE_PREFIX``, both set by
the hub. Settings come from the command line (``--db-url=...``), a config file
(``--config=dodo_hub_config.py``, with ``c.DodoHubApp.*`` lines) or traits' environment
defaults.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tornado.log import LogFormatter
from traitlets import Bool, Dict, Enum, Float, Integer, List, Set, Type, Unicode, default
from traitlets.config import Application

from .._version import __version__
from ..logs import join_app_log
from .auth import HubTokenAuthority, TokenAuthority
from .service import CatalogHub, CatalogHubSettings

__all__ = ["DEFAULT_DB_FILE", "DodoHubApp"]

#: Jupyter's log format (jupyter_server's ServerApp.log_format): level, time with
#: milliseconds, logger name; coloured on a terminal.
_LOG_FORMAT = (
    "%(color)s[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s]%(end_color)s %(message)s"
)

#: The SQLite file the service uses by default, in its working directory (the hub's,
#: which in Zero-to-JupyterHub is the hub's persistent volume).
DEFAULT_DB_FILE = "dodo_catalog.sqlite"


class DodoHubApp(Application):
    """The approved MCP catalog for every user of a JupyterHub."""

    name = "dodo-jupyter-hub"
    version = __version__
    description = """The dodo hub catalog service: one approved MCP catalog for every user
    of a JupyterHub. Run it as a JupyterHub-managed service; single-user servers read the
    catalog from it (DodoApp.hub_catalog_url)."""

    aliases = {
        "db-url": "DodoHubApp.db_url",
        "catalog-file": "DodoHubApp.catalog_file",
        "config": "DodoHubApp.config_file",
        "bind-url": "DodoHubApp.bind_url",
        "log-level": "DodoHubApp.log_level",
    }
    flags = {
        "no-default-catalog": (
            {"DodoHubApp": {"default_catalog": False}},
            "Do not seed the catalog with the servers shipped with dodo.",
        ),
        "allow-insecure-loopback": (
            {"DodoHubApp": {"allow_insecure_loopback": True}},
            "Accept http:// entries on loopback hosts (development and tests only).",
        ),
        "debug": ({"DodoHubApp": {"log_level": logging.DEBUG}}, "Log at debug level."),
    }

    config_file = Unicode(
        "",
        config=True,
        help="""A Python config file with c.DodoHubApp.* lines, loaded at start. Default:
        dodo_hub_config.py in the working directory when it exists.""",
    )

    db_url = Unicode(
        config=True,
        help=f"""SQLAlchemy URL of the catalog database. Default: $DODO_HUB_DB_URL, else
        SQLite at ./{DEFAULT_DB_FILE} (the working directory; JupyterHub starts managed
        services in its own). PostgreSQL: 'postgresql+psycopg://user@host/db' (pip install
        'dodo-jupyter[postgres]'). Migrations run at start. The database holds no secrets.""",
    )

    @default("db_url")
    def _default_db_url(self) -> str:
        from ..paths import sqlite_url_for

        return os.environ.get("DODO_HUB_DB_URL") or sqlite_url_for(Path.cwd() / DEFAULT_DB_FILE)

    catalog = List(
        Dict(),
        config=True,
        help="""Approved MCP servers managed by configuration, as for DodoApp.catalog: added
        or updated at every start, removed when dropped from here; entries administrators
        made through the API are left alone.""",
    )

    catalog_file = Unicode(
        "",
        config=True,
        help="""A JSON file of approved servers managed by configuration (dodo entries or MCP
        Registry server.json documents), as for DodoApp.catalog_file.""",
    )

    default_catalog = Bool(
        True,
        config=True,
        help="""Seed the catalog with the public MCP servers shipped with dodo (see
        docs/catalog.md). Set False (--no-default-catalog) to approve only your own list.""",
    )

    allow_insecure_loopback = Bool(
        False,
        config=True,
        help="""Accept plain http:// entry URLs on loopback hosts. Development and tests only:
        NOT RECOMMENDED in production.""",
    )

    admin_users = Set(
        Unicode(),
        config=True,
        help="""Usernames that administer the catalog, besides hub admins and holders of the
        custom:dodo:admin scope.""",
    )

    admin_groups = Set(
        Unicode(),
        config=True,
        help="JupyterHub groups whose members administer the catalog.",
    )

    bind_url = Unicode(
        config=True,
        help="""Where the service listens (scheme, host and port; the path is ignored).
        Default: $JUPYTERHUB_SERVICE_URL, which the hub sets from the service's 'url'.""",
    )

    @default("bind_url")
    def _default_bind_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL") or "http://127.0.0.1:10101"

    base_url = Unicode(
        config=True,
        help="""The path prefix the service serves below. Default: $JUPYTERHUB_SERVICE_PREFIX
        (/services/<name>/), which the hub's proxy routes to it.""",
    )

    @default("base_url")
    def _default_base_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/services/dodo/"

    hub_auth_cache_max_age = Integer(
        30,
        config=True,
        help="""Seconds the hub's answer about one token (who, admin, scopes) is reused
        (HubAuth.cache_max_age). Shorter: a revoked admin right stops working sooner; longer:
        fewer requests to the hub. 0 would cache forever, so it is refused.""",
    )

    catalog_cache_ttl = Float(
        5.0,
        config=True,
        help="""Seconds the enabled catalog is served from memory; this service's own edits
        show at once.""",
    )

    max_request_bytes = Integer(
        1024 * 1024,
        config=True,
        help="Largest request body the service accepts; larger ones get 413.",
    )

    authority_class = Type(
        HubTokenAuthority,
        klass=TokenAuthority,
        config=True,
        help="""Who decides what a token may do. The default asks JupyterHub
        ($JUPYTERHUB_API_URL) through HubAuth; replace it only for tests.""",
    )

    # Jupyter's formatter and format, and INFO by default; declared here rather than with
    # @default so that --help-all shows the defaults that apply.
    _log_formatter_cls = LogFormatter  # type: ignore[assignment]

    log_level = Enum(
        (0, 10, 20, 30, 40, 50, "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"),
        default_value=logging.INFO,
        help="""The service's log level, by name or value: DEBUG (10; also each health
        check), INFO (20, the default: start, stop, each request, catalog changes from the
        configuration), WARN (30: refused and failed requests), ERROR, CRITICAL.""",
    ).tag(config=True)

    log_format = Unicode(
        _LOG_FORMAT,
        help="""The log line format (Python logging; %(color)s and %(end_color)s colour
        the prefix on a terminal). Default: Jupyter's, '[I 2026-11-26 18:00:00.123
        dodo_jupyter.hub.access] message'.""",
    ).tag(config=True)

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        path = Path(self.config_file) if self.config_file else Path("dodo_hub_config.py")
        if self.config_file and not path.is_file():
            raise SystemExit(f"--config {self.config_file!r}: no such file.")
        if path.is_file():
            self.load_config_file(path.name, path=[str(path.parent.resolve())])
        if self.hub_auth_cache_max_age <= 0:
            raise SystemExit(
                "DodoHubApp.hub_auth_cache_max_age must be at least 1 (0 caches forever)."
            )

    def make_hub(self, authority: TokenAuthority | None = None) -> CatalogHub:
        """The service's state, with ``authority`` or one built from ``authority_class``."""
        if authority is None:
            authority = self.authority_class(
                cache_max_age=self.hub_auth_cache_max_age,
                admin_users=self.admin_users,
                admin_groups=self.admin_groups,
                parent=self,
            )
        settings = CatalogHubSettings(
            db_url=self.db_url,
            catalog=list(self.catalog),
            catalog_file=self.catalog_file,
            default_catalog=self.default_catalog,
            allow_insecure_loopback=self.allow_insecure_loopback,
            catalog_cache_ttl=self.catalog_cache_ttl,
        )
        return CatalogHub(settings, authority)

    def make_web_app(self, hub: CatalogHub) -> Any:
        """The tornado application serving ``hub`` below :attr:`base_url`."""
        from tornado.web import Application as WebApplication

        from .handlers import routes

        return WebApplication(
            routes(self.base_url),
            dodo_hub=hub,
            dodo_max_request_bytes=self.max_request_bytes,
            log_function=_log_request,
        )

    def start(self) -> None:
        # dodo's modules (and SQLAlchemy's, Alembic's, tornado's) log through their own
        # loggers: send every record through the app's handler, in its format and level.
        join_app_log(self.log, name="")
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        asyncio.run(self.serve())

    async def serve(self, ready: asyncio.Event | None = None) -> None:
        """Listen on :attr:`bind_url` until SIGTERM or SIGINT (or until cancelled)."""
        from tornado.httpserver import HTTPServer

        hub = self.make_hub()
        server = HTTPServer(
            self.make_web_app(hub), xheaders=True, max_body_size=self.max_request_bytes
        )
        parts = urlsplit(self.bind_url)
        if parts.scheme != "http" or not parts.port:
            raise SystemExit(
                f"DodoHubApp.bind_url must be http://host:port (JupyterHub's internal SSL is "
                f"not supported), not {self.bind_url!r}"
            )
        server.listen(parts.port, address=parts.hostname or "")
        self.log.info(
            "dodo hub catalog %s on %s%s (database %s)",
            __version__,
            self.bind_url.rstrip("/"),
            self.base_url,
            _redact(self.db_url),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # Open the store now; a failure is reported per request and retried.
        opening = asyncio.ensure_future(hub.ready())
        opening.add_done_callback(lambda f: f.cancelled() or f.exception())
        if ready is not None:
            ready.set()
        try:
            await stop.wait()
        finally:
            self.log.info("dodo hub catalog: stopping")
            server.stop()
            await hub.close()


def _redact(url: str) -> str:
    """A database URL without its password, for the log."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _log_request(handler: Any) -> None:
    from .handlers import HealthHandler

    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING
    if isinstance(handler, HealthHandler) and status < 400:
        level = logging.DEBUG  # the hub asks every minute: only --debug shows it
    if status >= 500:
        level = logging.ERROR
    request = handler.request
    # The path only: the service takes no secrets in query strings, but be safe.
    logging.getLogger("dodo_jupyter.hub.access").log(
        level,
        "%d %s %s (%s) %.1fms",
        status,
        request.method,
        request.path,
        request.remote_ip,
        1000.0 * request.request_time(),
    )
