"""The runtime: every dodo service of one Jupyter server, wired together.

:class:`DodoRuntime` is built from :class:`~dodo_jupyter.app.DodoApp`'s settings (or by
the CLI and tests from plain values) and put in the tornado settings as ``"dodo"``.
Opening it (importing the database and crypto libraries, migrations, the vault check,
catalog seeding) is blocking work, so it runs on a thread after the server starts and
keeps server start-up fast; handlers ``await runtime.ready()`` before they use a
service. When opening fails (say the database is down) requests get a 503 that says
why, and the next request after :data:`RETRY_OPEN_AFTER_S` tries again: no crash loop,
nothing destroyed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from ._imports import IMPORT_LOCK
from .exceptions import DodoError, Unavailable
from .gateway.host import EndpointHost
from .gateway.resume_limits import ResumeLimits
from .identity import IdentityResolver
from .runtime_settings import RuntimeSettings

if TYPE_CHECKING:
    from .audit import AuditLogService
    from .catalog import CatalogService, SeedReport
    from .catalog.admin import CatalogAdmin
    from .catalog.hub_client import HubCatalogClient
    from .catalog.mirror import HubCatalogMirror
    from .catalog.status import CatalogStatus
    from .connections import ConnectionService
    from .gateway.service import GatewayService
    from .governance.approvals import Approvals
    from .governance.history import CallHistory
    from .jupyter_ai import JupyterAIBuiltin
    from .owner import Owner, OwnerRegistry
    from .store import Store
    from .tokens import TokenService

__all__ = ["DodoRuntime"]

log = logging.getLogger("dodo_jupyter")

RETRY_OPEN_AFTER_S = 5.0
#: Requests trigger a hub hygiene check when the last one is older than this.
REQUEST_HYGIENE_SPACING_S = 60.0


class Stoppable(Protocol):
    """What the runtime needs of a part built on top of it: that it stops."""

    async def stop(self) -> None: ...


class DodoRuntime:
    """Holds the store and services; see the module docstring.

    ``store``, ``catalog``, ``tokens`` and ``audit`` exist once :meth:`open_sync` has run
    (directly, or on a thread through :meth:`start` / :meth:`ready`).
    """

    store: Store
    catalog: CatalogService
    #: Where admin edits of the catalog go (this store, or the hub catalog service).
    catalog_admin: CatalogAdmin
    #: Hub-catalog mode: the copy of the service's catalog; None otherwise.
    hub_mirror: HubCatalogMirror | None = None
    #: Hub-catalog mode: the client of the hub catalog service; None otherwise.
    hub_client: HubCatalogClient | None = None
    tokens: TokenService
    audit: AuditLogService
    connections: ConnectionService
    owners: OwnerRegistry
    #: The gateway service the MCP endpoint (``endpoint``) serves.
    gateway: GatewayService
    #: Every tool call's record, and the calls held for approval.
    history: CallHistory
    approvals: Approvals

    def __init__(self, settings: RuntimeSettings, resolver: IdentityResolver) -> None:
        self.settings = settings
        self.resolver = resolver
        self.max_request_bytes = settings.max_request_bytes
        self.public_url = settings.public_url.rstrip("/")
        if settings.client_metadata_url and not settings.client_metadata_url.startswith("https://"):
            raise ValueError(
                "DodoApp.client_metadata_url must be an https:// URL (a Client ID "
                f"Metadata Document URL is a client id), not {settings.client_metadata_url!r}"
            )
        if settings.hub_catalog_url:
            from .catalog.hub_client import check_service_url

            check_service_url(settings.hub_catalog_url)
        self._opener = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dodo-open")
        self._opening: Future[None] | None = None
        self._open_error: DodoError | None = None
        self._failed_at = 0.0
        self._opened = False
        self._owner_task: asyncio.Task[None] | None = None
        self._owner_checked = False
        self._hygiene_at = float("-inf")
        self._hygiene_lock = asyncio.Lock()
        #: Jupyter AI's built-in entry (:mod:`.jupyter_ai`); set when DodoApp starts.
        self.jupyter_ai: JupyterAIBuiltin | None = None
        #: Code mode (:class:`~.codemode.host.CodeModeHost`, which builds on this runtime);
        #: set when DodoApp starts.
        self.code_mode: Stoppable | None = None
        #: The MCP endpoint at ``{base_url}dodo/mcp``; DodoApp starts and stops it.
        self.endpoint = EndpointHost(
            lambda: self.gateway,
            max_request_body_size=settings.max_request_bytes,
            resume=ResumeLimits(
                events_per_session=settings.resume_events_per_session,
                bytes_per_session=settings.resume_bytes_per_session,
                max_bytes=settings.resume_max_bytes,
                max_age=settings.resume_event_max_age,
                retry_interval=settings.resume_retry_interval,
            ),
            on_use=lambda caller: self.tokens.note_use(caller.agent),
        )

    # -- configuration ----------------------------------------------------------------

    def configured_catalog(self) -> list[dict[str, Any]]:
        """Entries the configuration manages: default catalog, catalog_file, catalog."""
        from .catalog.config import configured_entries

        return configured_entries(
            default_catalog=self.settings.default_catalog,
            catalog_file=self.settings.catalog_file,
            catalog=list(self.settings.catalog),
        )

    # -- lifecycle --------------------------------------------------------------------

    @property
    def client_metadata_url(self) -> str | None:
        """dodo's Client ID Metadata Document URL: ``RuntimeSettings.client_metadata_url``
        when set, else derived from ``public_url`` when that is https, else None."""
        if self.settings.client_metadata_url:
            return self.settings.client_metadata_url
        if not self.public_url.startswith("https://"):
            return None
        return f"{self.public_url}{self.settings.base_url}dodo/oauth/client-metadata.json"

    def client_metadata_document(self, callback_path: str) -> dict[str, Any] | None:
        """The Client ID Metadata Document served at :attr:`client_metadata_url`."""
        url = self.client_metadata_url
        if url is None:
            return None
        return {
            "client_id": url,
            "client_name": "Jupyter (dodo)",
            "redirect_uris": [self.public_url + callback_path],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "web",
        }

    def _build(self) -> None:
        """The store and the services that need no MCP SDK."""
        from .audit import AuditLogService
        from .catalog import CatalogService
        from .owner import OwnerRegistry
        from .store import Store
        from .tokens import TokenService

        settings = self.settings
        self.store = Store(settings.db_url, settings.key_file, environ=settings.environ)
        self.catalog = CatalogService(
            self.store,
            allow_insecure_loopback=settings.allow_insecure_loopback,
            cache_max_age=settings.catalog_cache_ttl,
        )
        self.tokens = TokenService(self.store, default_lifetime_days=settings.token_lifetime_days)
        self.audit = AuditLogService(self.store)
        self.owners = OwnerRegistry(self.store)
        self._build_catalog_admin()

    def _build_catalog_admin(self) -> None:
        from .catalog.admin import HubCatalogAdmin, LocalCatalogAdmin

        settings = self.settings
        if not settings.hub_catalog_url:
            self.catalog_admin = LocalCatalogAdmin(self.catalog)
            return
        from .catalog.hub_client import HubCatalogClient
        from .catalog.mirror import HubCatalogMirror

        client = HubCatalogClient(
            settings.hub_catalog_url, settings.hub_api_token, timeout=settings.hub_catalog_timeout
        )
        self.hub_mirror = HubCatalogMirror(
            self.store,
            client,
            max_age=settings.catalog_cache_ttl,
            allow_insecure_loopback=settings.allow_insecure_loopback,
        )
        self.catalog.upstream = self.hub_mirror
        self.catalog_admin = HubCatalogAdmin(client, self.hub_mirror)
        self.hub_client = client

    def catalog_status(self) -> CatalogStatus:
        """Where the catalog comes from and whether it is current (for the catalog API)."""
        if self.hub_mirror is not None:
            return self.hub_mirror.status
        from .catalog.status import LOCAL_STATUS

        return LOCAL_STATUS

    def _build_mcp(self) -> None:
        """Connections and the gateway: they import the MCP SDK, authlib and httpx2 (tens of
        megabytes), so a server only loads them when someone first uses them."""
        if hasattr(self, "gateway"):
            return
        from .connection_rows import ConnectionRows
        from .connections import ConnectionService
        from .gateway.service import GatewayService
        from .gateway.upstream_sessions import UpstreamSessions
        from .governance.approvals import Approvals
        from .governance.gate import ToolGate
        from .governance.history import CallHistory
        from .governance.pins import PinBook
        from .net.outbound import Outbound
        from .net.policy import OutboundPolicy
        from .oauth.flow import OAuthEngine
        from .oauth.registration import ClientRegistry
        from .oauth.token_keeper import TokenKeeper

        settings = self.settings
        policy = OutboundPolicy(
            allowed_hosts=frozenset(settings.allowed_hosts),
            allow_insecure_loopback=settings.allow_insecure_loopback,
            timeout=settings.outbound_timeout,
            **({"resolver": settings.resolver} if settings.resolver is not None else {}),
        )
        outbound = Outbound(policy)
        registry = ClientRegistry(
            self.store, client_metadata_url=self.client_metadata_url, environ=settings.environ
        )
        rows = ConnectionRows(self.store)
        keeper = TokenKeeper(rows, registry, outbound)
        connections = ConnectionService(
            rows,
            self.catalog,
            OAuthEngine(self.store, registry, outbound, keeper),
            keeper,
            outbound,
            allowed_hosts=settings.allowed_hosts,
            allow_insecure_loopback=settings.allow_insecure_loopback,
            check_timeout=settings.upstream_list_timeout,
        )
        self.history = CallHistory(
            self.store,
            retention_days=settings.tool_call_retention_days,
            capture_arguments=settings.capture_tool_arguments,
        )
        self.approvals = Approvals(settings.approval_timeout)
        gateway = GatewayService(
            self.store,
            connections,
            UpstreamSessions(idle_timeout=settings.upstream_idle_timeout),
            listing_ttl=settings.gateway_listing_ttl,
            server_timeout=settings.upstream_list_timeout,
            call_timeout=settings.upstream_call_timeout,
            gate=ToolGate(self.history, self.approvals),
            pins=PinBook(self.store),
        )
        connections.listeners.append(gateway.forget)
        self.connections = connections
        self.gateway = gateway

    def _build_mcp_locked(self) -> None:
        with IMPORT_LOCK:
            self._build_mcp()

    async def mcp_ready(self) -> None:
        """Wait until the store is open and the connection and gateway services exist
        (built on a thread on first use)."""
        await self.ready()
        await self._ensure_mcp()

    async def _ensure_mcp(self) -> None:
        if not hasattr(self, "gateway"):
            await asyncio.wrap_future(self._opener.submit(self._build_mcp_locked))

    # -- the owner ----------------------------------------------------------------------

    def current_owner(self) -> Owner:
        """The owner this server runs for (email unknown until the hub shows it)."""
        from .owner import Owner

        return Owner(self.resolver.mode, self.resolver.owner, getattr(self.resolver, "api_url", ""))

    async def _check_owner(self) -> None:
        """At start: compare the record with the running owner, then (hub mode, hygiene
        on) ask the hub, so that the secrets of a user deleted and created again under
        the same name are gone before anything is served or minted (the kernels' token)."""
        recorded = await self.owners.load()
        current = self.current_owner()
        if recorded is None:
            await self.owners.record(current)
        else:
            reason = current.drift_from(recorded)
            if reason is not None:
                await self.wipe(reason)
                await self.owners.record(current)
        if self._can_ask_hub() and self.settings.hygiene_interval > 0:
            await self._ask_hub()
        self._owner_checked = True

    async def wipe(self, reason: str) -> None:
        """Wipe every secret of the store (see :func:`dodo_jupyter.owner.wipe_secrets`)."""
        from .owner import wipe_secrets

        await self._ensure_mcp()
        await wipe_secrets(self, reason)

    async def note_owner_email(self, email: str, created: str = "") -> None:
        """The hub showed the owner's email (and creation time): record what is new, or
        wipe when it differs from the record."""
        recorded = self.owners.recorded
        if recorded is None:
            return
        seen = dataclasses.replace(
            recorded, email=email or recorded.email, hub_created=created or recorded.hub_created
        )
        if seen == recorded:
            return
        drift = seen.drift_from(recorded)
        if drift is not None:
            await self.wipe(drift)
        await self.owners.record(seen)

    async def hygiene_if_due(self) -> None:
        """Run :meth:`hygiene` before serving a request when the last check is older than
        ``min(hygiene_interval, 60 s)``: a renamed or deleted hub user's secrets go with
        the next request that reaches the server, not up to an hour later."""
        every = self.settings.hygiene_interval
        if not self._can_ask_hub() or every <= 0:
            return
        if self._hygiene_lock.locked():
            async with self._hygiene_lock:  # a check is running: serve after its verdict
                return
        if time.monotonic() - self._hygiene_at < min(every, REQUEST_HYGIENE_SPACING_S):
            return
        async with self._hygiene_lock:
            if time.monotonic() - self._hygiene_at >= min(every, REQUEST_HYGIENE_SPACING_S):
                await self.hygiene()

    async def hygiene(self) -> str | None:
        """Hub mode: ask the hub about the owner; wipe when it no longer vouches for them.
        Returns the reason of a wipe, or None (also when the check of the start answered
        while this one waited for it)."""
        if not self._can_ask_hub():
            return None
        called = time.monotonic()
        await self.ready()
        if self._hygiene_at >= called:
            return None
        return await self._ask_hub()

    def _can_ask_hub(self) -> bool:
        """Hub mode with the server's own token (``JUPYTERHUB_API_TOKEN``)."""
        return self.resolver.mode == "hub" and bool(self.settings.hub_api_token)

    async def _ask_hub(self) -> str | None:
        """The hygiene check itself (the store open, its owner record loaded)."""
        self._hygiene_at = time.monotonic()
        from .owner import HubHygiene

        expected = self.owners.recorded or self.current_owner()
        checker = HubHygiene(getattr(self.resolver, "api_url", ""), self.settings.hub_api_token)
        reason, facts = await checker.check(expected)
        if reason is not None:
            await self.wipe(reason)
            return reason
        await self.note_owner_email(facts.email, facts.created)
        return None

    def open_sync(self, *, seed: bool = True, mcp: bool = True) -> SeedReport | None:
        """Build the services, open the store and, with ``seed``, reconcile the catalog
        with the configuration (blocking). The CLI opens without seeding; the server opens
        without ``mcp`` services, which :meth:`mcp_ready` builds on first use."""
        # Opening imports SQLAlchemy, Alembic, pydantic (and perhaps the MCP SDK): hold
        # the lock every background import takes (see dodo_jupyter._imports).
        with IMPORT_LOCK:
            if not hasattr(self, "store"):
                self._build()
            if mcp:
                self._build_mcp()
            self.store.open_sync()
        if self.store.vault_error is not None:
            log.error("dodo vault: %s", self.store.vault_error.message)
        report = None
        if seed and self.settings.hub_catalog_url:
            seed = False
            if self.settings.catalog or self.settings.catalog_file:
                log.warning(
                    "dodo: DodoApp.catalog and DodoApp.catalog_file are ignored: this server "
                    "uses the hub catalog service (configure c.DodoHubApp.* there)"
                )
        if seed:
            report = self.catalog.seed_sync(self.configured_catalog())
            if report.added or report.updated or report.removed:
                log.info(
                    "dodo catalog from configuration: %d added, %d updated, %d removed",
                    len(report.added),
                    len(report.updated),
                    len(report.removed),
                )
        self._opened = True
        return report

    def start(self) -> None:
        """Begin opening on a thread; safe to call from any thread or event loop."""
        if self._opening is None:
            opening = self._opener.submit(self.open_sync, mcp=False)
            opening.add_done_callback(self._opened_cb)
            self._opening = opening  # type: ignore[assignment]

    def _opened_cb(self, fut: Future[Any]) -> None:
        error = None if fut.cancelled() else fut.exception()
        if error is None:
            return
        log.error("dodo could not open its store: %s", error, exc_info=error)
        self._failed_at = time.monotonic()
        self._open_error = _as_dodo_error(error)

    @property
    def opened(self) -> bool:
        """Whether the store is open (its services exist)."""
        return self._opened

    async def ready(self) -> None:
        """Wait until the store is open and its owner checked; :class:`Unavailable`
        while that cannot be done."""
        if self._opened and self._owner_checked:
            return
        await self._store_open()
        task = self._owner_task
        if task is None or (task.done() and task.exception() is not None):
            task = self._owner_task = asyncio.ensure_future(self._check_owner())
        try:
            await asyncio.shield(task)
        except DodoError:
            raise
        except Exception as e:
            log.error("dodo: checking the store's owner failed: %s", e, exc_info=e)
            raise _as_dodo_error(e) from None

    async def _store_open(self) -> None:
        if self._opened:
            return
        opening = self._opening
        if opening is not None and opening.done() and opening.exception() is not None:
            if time.monotonic() - self._failed_at < RETRY_OPEN_AFTER_S:
                raise self._open_error or _as_dodo_error(opening.exception())  # type: ignore[arg-type]
            self._opening = None
            self._open_error = None
        self.start()
        assert self._opening is not None
        try:
            # A concurrent future, so it can be awaited from whichever event loop serves us.
            await asyncio.shield(asyncio.wrap_future(self._opening))
        except Exception as e:
            raise self._open_error or _as_dodo_error(e) from None

    async def checked_hygiene(self) -> None:
        """:meth:`hygiene` under the lock that requests wait on (the maintenance round's
        check, :mod:`dodo_jupyter.maintenance`)."""
        async with self._hygiene_lock:
            await self.hygiene()

    async def stop(self) -> None:
        if self.code_mode is not None:
            try:
                await self.code_mode.stop()
            except Exception as e:  # the kernels die with the server anyway
                log.warning("dodo code mode did not stop cleanly: %s", e, exc_info=e)
        await self.endpoint.stop()
        opening = self._opening
        if opening is not None and not opening.done():
            await asyncio.wrap_future(opening)
        self._opener.shutdown(wait=False)
        if hasattr(self, "gateway"):
            await self.gateway.live.close()
            await self.gateway.pool.close()
        if hasattr(self, "history"):
            await self.history.flush()
        if hasattr(self, "store"):
            await asyncio.get_running_loop().run_in_executor(None, self.store.close)


def _as_dodo_error(error: BaseException) -> DodoError:
    if isinstance(error, DodoError):
        return error
    return Unavailable(
        "dodo could not open its database: check DodoApp.db_url, that the database is "
        "running, and the server log; dodo retries on the next request."
    )
