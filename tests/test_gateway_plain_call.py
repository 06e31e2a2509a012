"""Which requests the gateway answers without the SDK's per-request machinery
(:func:`dodo_jupyter.gateway.plain_call.read_plain_request`): a plain 2026-07-28
``tools/call`` or ``tools/list`` that passes the SDK's own validation ladder, nothing
else."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
import pytest

from dodo_jupyter.gateway.plain_call import CALL, LIST, PlainRequest, read_plain_request

NAME = "srv__echo"
SCHEMAS: dict[str, dict[str, Any]] = {
    NAME: {"type": "object", "properties": {"text": {"type": "string"}}},
    "srv__regional": {
        "type": "object",
        "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
    },
}
META = {types.PROTOCOL_VERSION_META_KEY: "2026-07-28", types.CLIENT_CAPABILITIES_META_KEY: {}}


def request(
    *,
    headers: dict[str, str | None] | None = None,
    extra_headers: list[tuple[str, str]] | None = None,
    **body: Any,
) -> tuple[list[tuple[str, str]], bytes]:
    """A plain call of ``srv__echo`` with ``headers`` replaced (None: removed) and the
    body's top-level members (``params`` too) replaced by ``body``."""
    base: dict[str, str | None] = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": NAME,
    }
    base.update(headers or {})
    lines = [(k, v) for k, v in base.items() if v is not None] + (extra_headers or [])
    message: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": NAME, "arguments": {"text": "hi"}, "_meta": META},
    }
    message.update(body)
    return lines, json.dumps(message).encode()


def read(lines: list[tuple[str, str]], raw: bytes) -> PlainRequest | None:
    return read_plain_request(lines, raw, SCHEMAS.get)


def listing(**params: Any) -> tuple[list[tuple[str, str]], bytes]:
    return request(
        headers={"Mcp-Method": LIST, "Mcp-Name": None},
        method=LIST,
        params={"_meta": META, **params},
    )


def test_a_plain_call_is_read() -> None:
    call = read(*request())
    assert call == PlainRequest(CALL, 7, "2026-07-28", META, NAME, {"text": "hi"})
    assert read(*request(id="req-1")) is not None  # string ids too
    assert read(*request(headers={"Accept": "*/*"})) is not None


def test_a_call_without_arguments_needs_no_schema() -> None:
    params = {"name": "srv__unknown", "_meta": META}
    call = read(*request(params=params, headers={"Mcp-Name": "srv__unknown"}))
    assert call is not None and call.arguments == {}
    # With arguments, the Mcp-Param check needs the schema: not cached, the SDK serves it.
    params = {"name": "srv__unknown", "arguments": {"a": 1}, "_meta": META}
    assert read(*request(params=params, headers={"Mcp-Name": "srv__unknown"})) is None


def test_mcp_param_headers_are_checked_against_the_schema() -> None:
    params = {"name": "srv__regional", "arguments": {"region": "eu"}, "_meta": META}
    named = {"Mcp-Name": "srv__regional"}
    ok = read(*request(params=params, headers=named, extra_headers=[("Mcp-Param-Region", "eu")]))
    assert ok is not None and ok.arguments == {"region": "eu"}
    # The SDK answers these with a header-mismatch error: they are left to it.
    assert read(*request(params=params, headers=named)) is None  # header missing
    wrong = [("Mcp-Param-Region", "us")]
    assert read(*request(params=params, headers=named, extra_headers=wrong)) is None
    twice = [("Mcp-Param-Region", "eu"), ("mcp-param-region", "eu")]
    assert read(*request(params=params, headers=named, extra_headers=twice)) is None


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"headers": {"Content-Type": "text/plain"}}, id="not-json-content"),
        pytest.param({"headers": {"Accept": "application/json"}}, id="accepts-no-sse"),
        pytest.param({"headers": {"Accept": None}}, id="no-accept"),
        pytest.param({"headers": {"MCP-Protocol-Version": "2025-11-25"}}, id="older-version"),
        pytest.param({"headers": {"MCP-Protocol-Version": None}}, id="no-version-header"),
        pytest.param({"headers": {"Mcp-Name": "srv__other"}}, id="name-mismatch"),
        pytest.param({"headers": {"Mcp-Method": "tools/list"}}, id="method-mismatch"),
        pytest.param({"extra_headers": [("mcp-name", NAME)]}, id="repeated-routing-header"),
        pytest.param({"method": "tools/list"}, id="another-method"),
        pytest.param({"id": True}, id="boolean-id"),
        pytest.param({"id": None}, id="null-id"),
        pytest.param({"jsonrpc": "1.0"}, id="not-json-rpc-2"),
        pytest.param({"params": [NAME]}, id="params-not-an-object"),
        pytest.param(
            {"params": {"name": NAME, "arguments": ["hi"], "_meta": META}}, id="bad-arguments"
        ),
        pytest.param({"params": {"name": NAME, "arguments": {}}}, id="no-envelope"),
        pytest.param(
            {"params": {"name": NAME, "_meta": {**META, "progressToken": "p1"}}},
            id="asks-for-progress",
        ),
    ],
)
def test_anything_else_is_left_to_the_sdk(changes: dict[str, Any]) -> None:
    assert read(*request(**changes)) is None


def test_a_plain_listing_is_read() -> None:
    assert read(*listing()) == PlainRequest(LIST, 7, "2026-07-28", META)
    assert read(*listing(cursor="page-2")) is None  # pages are the SDK's
    progress = {"_meta": {**META, "progressToken": "p"}}
    assert read(*listing(**progress)) is None
    lines, raw = listing()
    assert read([(k, v) for k, v in lines if k != "Mcp-Method"], raw) is None


def test_notifications_batches_and_broken_json_are_left_to_the_sdk() -> None:
    lines, raw = request()
    message = json.loads(raw)
    del message["id"]
    assert read(lines, json.dumps(message).encode()) is None
    assert read(lines, json.dumps([json.loads(raw)]).encode()) is None
    assert read(lines, raw[:-3]) is None
