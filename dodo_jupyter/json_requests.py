"""JSON request bodies and answers for dodo's tornado handlers (the server extension's
and the hub catalog service's), with 400s that say what is wrong with the body."""

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

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))
