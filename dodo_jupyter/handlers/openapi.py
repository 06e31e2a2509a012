"""REST: the OpenAPI document of this API (see :mod:`dodo_jupyter.openapi`)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..openapi import render_document
from .base import DodoAPIHandler

__all__ = ["OpenAPIHandler"]


class OpenAPIHandler(DodoAPIHandler):
    """``GET /dodo/api/openapi.json``: the document, with this server's ``base_url`` in
    ``servers``. It needs no store, so it answers before dodo is ready."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(render_document(self.base_url))
