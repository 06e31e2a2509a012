"""The hub catalog service's REST API, under the service's prefix (``/services/dodo/``).

=======================================  ==========  =========================================
path                                     who         what
=======================================  ==========  =========================================
``GET api/catalog``                      any caller  enabled entries ``{"entries": [...]}``;
                                                     strong ETag, ``If-None-Match`` → 304
``GET api/me``                           any caller  ``{name, kind, is_admin}`` (setup check)
``GET/POST api/admin/approved-mcps``     admins      list (``?include_deleted=true``), add
``POST api/admin/approved-mcps/import``  admins      server.json or entries, all or nothing
``GET/PUT/DELETE api/admin/...{id}``     admins      read, change some fields, soft-delete;
                                                     ``ETag``, ``If-Match`` → 412 when stale
``GET api/admin/audit``                  admins      newest audit rows (``?limit=&before=``)
``POST api/tool-calls``                  a user      its server's call history, kept once by id
``GET api/admin/tool-calls``             admins      every user's calls (filters, ``jsonl``)
``GET metrics``                          any caller  Prometheus metrics
``GET`` (the prefix itself)              anyone      ``{"status": "ok"}``: JupyterHub's health
                                                     check (503 while the database is not open)
=======================================  ==========  =========================================

"Any caller" means a hub token with the service's access scope; "admins" is decided by
:mod:`dodo_jupyter.hub.auth`. The paths and bodies are those of a single-user server's
``dodo/api/mcp-catalog`` and ``dodo/api/admin/...``, so a server in hub-catalog mode
forwards admin requests unchanged. Errors are ``{"error", "message", ...}`` JSON with the
status of their :class:`~dodo_jupyter.exceptions.DodoError`.
"""

from __future__ import annotations

import json
import logging
from http.client import responses
from typing import Any

from tornado.web import HTTPError, RequestHandler

from ..exceptions import DodoError, Forbidden, PayloadTooLarge
from ..json_requests import JsonRequestMixin
from .auth import HubCaller
from .service import CatalogHub

__all__ = ["HealthHandler", "routes"]

log = logging.getLogger(__name__)

_STATUS_CODES = {404: "not_found", 405: "method_not_allowed"}


class ServiceHandler(JsonRequestMixin, RequestHandler):
    """Base: JSON in and out, the caller from the hub, errors as JSON."""

    @property
    def hub(self) -> CatalogHub:
        hub: CatalogHub = self.settings["dodo_hub"]
        return hub

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    async def prepare(self) -> None:
        limit = self.settings.get("dodo_max_request_bytes", 1024 * 1024)
        if len(self.request.body or b"") > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        await self.hub.ready()

    async def caller(self, *, admin: bool = False) -> HubCaller:
        return await self.hub.caller(self.request.headers.get("Authorization"), admin=admin)

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, DodoError):
            if e.status >= 500:
                log.warning("dodo hub catalog: %s", e.message)
            if self._finished:
                return
            self.clear()
            self.set_status(e.status)
            self.finish(json.dumps(e.to_json()))
            return
        super()._handle_request_exception(e)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, HTTPError) and value.status_code < 500:
            return  # the access log has its line (tornado would log a second one)
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = responses.get(status_code, "Unknown HTTP Error")
        exc = (kwargs.get("exc_info") or (None, None))[1]
        if isinstance(exc, HTTPError):
            message = exc.log_message or exc.reason or message
        elif status_code >= 500:
            message = "Unexpected error in the dodo catalog service; its log has the details."
        error = _STATUS_CODES.get(status_code, "internal_error" if status_code >= 500 else "error")
        self.finish(json.dumps({"error": error, "message": message}))


class CatalogHandler(ServiceHandler):
    """``GET api/catalog``: what every user may connect."""

    async def get(self) -> None:
        await self.caller()
        cached = await self.hub.catalog.enabled()
        self.set_header("ETag", cached.etag)
        self.set_header("Cache-Control", "no-cache")
        if self.check_etag_header():  # tornado's If-None-Match rules: lists, W/, *
            self.set_status(304)
            self.finish()
            return
        self.finish(cached.body)

    def compute_etag(self) -> None:
        return None


class MeHandler(ServiceHandler):
    """``GET api/me``: who the hub says the token belongs to."""

    async def get(self) -> None:
        self.send_json((await self.caller()).to_json())


class AdminEntryListHandler(ServiceHandler):
    """``GET/POST api/admin/approved-mcps``."""

    async def get(self) -> None:
        await self.caller(admin=True)
        include_deleted = self.get_query_argument("include_deleted", "false") == "true"
        self.send_json({"entries": await self.hub.catalog.all(include_deleted=include_deleted)})

    async def post(self) -> None:
        who = await self.caller(admin=True)
        entry = await self.hub.catalog.create(who.actor, self.json_object())
        self.send_json(entry, status=201)


class AdminImportHandler(ServiceHandler):
    """``POST api/admin/approved-mcps/import``."""

    async def post(self) -> None:
        who = await self.caller(admin=True)
        entries = await self.hub.catalog.import_document(who.actor, self.json_body())
        self.send_json({"entries": entries}, status=201)


class AdminEntryHandler(ServiceHandler):
    """``GET/PUT/DELETE api/admin/approved-mcps/{id}``: the entry's ``etag`` is its
    ``ETag``; a PUT or DELETE with ``If-Match`` is a compare-and-set in the database, so
    of two replicas' edits from one revision only one succeeds, the other is a 412."""

    def send_entry(self, entry: dict[str, Any]) -> None:
        self.set_header("ETag", entry["etag"])
        self.send_json(entry)

    async def get(self, entry_id: str) -> None:
        await self.caller(admin=True)
        self.send_entry(await self.hub.catalog.get(entry_id))

    async def put(self, entry_id: str) -> None:
        who = await self.caller(admin=True)
        if_match = self.request.headers.get("If-Match")
        changes = self.json_object()
        self.send_entry(
            await self.hub.catalog.update(who.actor, entry_id, changes, if_match=if_match)
        )

    async def delete(self, entry_id: str) -> None:
        who = await self.caller(admin=True)
        if_match = self.request.headers.get("If-Match")
        await self.hub.catalog.delete(who.actor, entry_id, if_match=if_match)
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()


class AdminAuditHandler(ServiceHandler):
    """``GET api/admin/audit?limit=&before=``."""

    async def get(self) -> None:
        await self.caller(admin=True)
        limit, before_id = self.page_arguments()
        self.send_json({"entries": await self.hub.audit.recent(limit, before_id)})


class ToolCallsHandler(ServiceHandler):
    """``POST api/tool-calls {"calls": [...]}``: a user's server forwards its call history;
    kept once by id, under the caller's own name."""

    async def post(self) -> None:
        who = await self.caller()
        if who.kind != "user":
            raise Forbidden("Only a user's server forwards tool calls, with its own hub token.")
        body = self.json_object()
        self.send_json(await self.hub.history.receive(who.name, body.get("calls")))


class AdminToolCallsHandler(ServiceHandler):
    """``GET api/admin/tool-calls?user=&server=&tool=&outcome=&before=&limit=&format=``:
    every user's calls, newest first (``format=jsonl``: JSON lines)."""

    async def get(self) -> None:
        from ..governance.history import json_lines

        await self.caller(admin=True)
        user = self.get_query_argument("user", None)
        records = await self.hub.history.query(user, **self.history_filters())
        if self.get_query_argument("format", "json") == "jsonl":
            self.set_header("Content-Type", "application/x-ndjson")
            self.finish(json_lines(records))
            return
        self.send_json({"calls": records})


class MetricsHandler(ServiceHandler):
    """``GET metrics``: the service's Prometheus metrics (any caller with access)."""

    async def get(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        await self.caller()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))


class HealthHandler(ServiceHandler):
    """``GET`` and ``HEAD`` on the prefix itself: JupyterHub's service health check.

    The hub asks ``<url><prefix>`` (``http://127.0.0.1:10101/services/dodo/``) without a
    token when it starts the service and then every ``JupyterHub.service_check_interval``
    seconds (60); it counts any answer below 500 as up. So this answers 200 once the
    database is open (503, which the hub logs, while it is not) and says nothing else.
    """

    async def get(self) -> None:
        self.send_json({"status": "ok"})

    async def head(self) -> None:
        self.finish()


class NotFoundHandler(ServiceHandler):
    """Anything else under the prefix: a JSON 404."""

    async def prepare(self) -> None:
        raise HTTPError(404, "No such dodo catalog service endpoint.")


def routes(prefix: str) -> list[tuple[str, type[RequestHandler]]]:
    """The (pattern, handler) pairs below ``prefix`` (e.g. ``/services/dodo/``)."""
    base = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
    api = base + "api/"
    admin = api + "admin/approved-mcps"
    return [
        (api + "catalog", CatalogHandler),
        (api + "me", MeHandler),
        (admin, AdminEntryListHandler),
        (admin + "/import", AdminImportHandler),
        (admin + r"/(?P<entry_id>[^/]+)", AdminEntryHandler),
        (api + "admin/audit", AdminAuditHandler),
        (api + "tool-calls", ToolCallsHandler),
        (api + "admin/tool-calls", AdminToolCallsHandler),
        (base + "metrics", MetricsHandler),
        (base, HealthHandler),
        (r".*", NotFoundHandler),
    ]
