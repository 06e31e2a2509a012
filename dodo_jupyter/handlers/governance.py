"""REST: the owner's side of governance: the tool-call history, calls waiting for
approval (a long poll) and decisions on them, and accepting a changed tool definition.
Every endpoint is the server owner's alone (a visitor of a shared server gets 403)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import ValidationFailed
from .base import DodoAPIHandler

__all__ = [
    "ApprovalHandler",
    "ApprovalListHandler",
    "ToolAcceptHandler",
    "ToolCallHistoryHandler",
]

#: The longest long poll a lab may ask for, in seconds.
MAX_WAIT = 30.0
#: At most this many ids in ``seen`` (a lab never has more calls waiting than that).
MAX_SEEN = 100


class ToolCallHistoryHandler(DodoAPIHandler):
    """``GET /dodo/api/user/tool-calls?server=&tool=&outcome=&before=&limit=&format=``:
    the owner's calls, newest first; ``format=jsonl`` exports them as JSON lines."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from ..governance.history import json_lines  # with the store, not at server start

        who = (await self.identity(mcp=True)).require_owner()
        form = self.get_query_argument("format", "json")
        if form not in ("json", "jsonl"):
            raise ValidationFailed(
                f"'format' must be 'json' or 'jsonl', not {form[:50]!r}.",
                fields={"format": "'json' or 'jsonl'"},
            )
        records = await self.dodo.history.query(who.username, **self.history_filters())
        if form == "jsonl":
            self.set_header("Content-Disposition", 'attachment; filename="tool-calls.jsonl"')
            self.finish(json_lines(records), set_content_type="application/x-ndjson")
            return
        self.send_json({"calls": records})


class ApprovalListHandler(DodoAPIHandler):
    """``GET /dodo/api/user/approvals?wait=25&seen=<id>,<id>``: the calls waiting for
    the owner's approval; with ``wait``, answered once the list differs from ``seen``
    or after ``wait`` seconds (JupyterLab's long poll, which also tells dodo a lab is
    open)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        raw_wait = self.get_query_argument("wait", "0")
        try:
            wait = min(max(float(raw_wait), 0.0), MAX_WAIT)
        except ValueError:
            raise ValidationFailed(
                "'wait' must be a number of seconds.", fields={"wait": "number"}
            ) from None
        seen = {s for s in self.get_query_argument("seen", "").split(",") if s}
        if len(seen) > MAX_SEEN:
            raise ValidationFailed(f"'seen' may name at most {MAX_SEEN} calls.")
        calls = await self.dodo.approvals.wait(who.username, seen, wait)
        self.set_header("Cache-Control", "no-store")
        self.send_json({"calls": calls})


class ApprovalHandler(DodoAPIHandler):
    """``POST /dodo/api/user/approvals/{id} {decision: once|session|deny}``."""

    @web.authenticated
    @authorized
    async def post(self, call_id: str) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        body = self.json_object()
        self.dodo.approvals.decide(who.username, call_id, body.get("decision"))
        self.send_json({"id": call_id, "decision": body.get("decision")})


class ToolAcceptHandler(DodoAPIHandler):
    """``POST /dodo/api/mcp/tools/{name}/accept {digest}``: accept the reviewed
    definition of a quarantined tool (``digest`` is the one the review showed)."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        who = (await self.identity(mcp=True)).require_owner()
        digest = self.json_object().get("digest")
        if not isinstance(digest, str) or not digest:
            raise ValidationFailed(
                "Give the 'digest' of the definition you reviewed.", fields={"digest": "required"}
            )
        self.send_json(await self.dodo.gateway.accept_tool(who.username, name, digest))
