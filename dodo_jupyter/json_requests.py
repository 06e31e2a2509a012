"""JSON request bodies and answers for dodo's tornado handlers (the server extension's
and the hub catalog service's), with 400s that say what is wrong with the request."""

from __future__ import annotations

import json
from typing import Any

from tornado.web import RequestHandler

from .exceptions import BadRequest

__all__ = ["JsonRequestMixin"]


class JsonRequestMixin(RequestHandler):
    """``json_body`` / ``json_object`` to read a request, ``send_json`` to answer."""

    def json_body(self) -> Any:
        """The request body parsed as JSON; :class:`BadRequest` when it is not."""
        body = self.request.body
        if not body:
            raise BadRequest("The request needs a JSON body.")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"The request body is not valid JSON: {e}") from None

    def json_object(self) -> dict[str, Any]:
        """The request body, which must be a JSON object."""
        data = self.json_body()
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object.")
        return data

    def page_arguments(self) -> tuple[int, int | None]:
        """``?limit=&before=`` of a paged listing (the audit log): ``limit`` (default 100)
        and ``before`` (None when absent); :class:`BadRequest` unless whole numbers."""
        try:
            limit = int(self.get_query_argument("limit", "100"))
            before = self.get_query_argument("before", None)
            return limit, int(before) if before is not None else None
        except ValueError:
            raise BadRequest("'limit' and 'before' must be whole numbers.") from None

    def history_filters(self) -> dict[str, Any]:
        """``?server=&tool=&outcome=&before=&limit=`` of a tool-call history listing, as
        keyword arguments of ``CallHistory.query`` (``before`` is a record id);
        :class:`BadRequest` unless ``limit`` is a whole number."""
        arg = self.get_query_argument
        try:
            limit = int(arg("limit", "100"))
        except ValueError:
            raise BadRequest("'limit' must be a whole number.") from None
        names = {"server": "server_id", "tool": "tool", "outcome": "outcome", "before": "before"}
        return {key: arg(name, None) for name, key in names.items()} | {"limit": limit}

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))
