"""Code mode calling the user's tools: code in the agent's kernel calls a real upstream
through the gateway, with the kernel's own token, so every call passes the governance
gate (policy, approval, history with the path "code_mode"); and run_python itself waits
for the owner when DodoApp.code_mode_approval is 'always', through the approval prompt
tools use. The agent is the MCP SDK's client at /dodo/mcp/codemode."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from dodo_jupyter.runtime import DodoRuntime

from .codemode_peers import code_mode_config, code_mode_tokens, run, text
from .conftest import Api
from .governance_peers import agent, govern, governed_upstream, history
from .mcp_peers import RunningServer

pytestmark = pytest.mark.usefixtures("upstreams_closed_first")

APPROVALS = "dodo/api/user/approvals"

THREE_CALLS = """\
from dodo_jupyter import tools

before = tools.gov.list_items()
renamed = tools.gov.rename_item(name="a", to="z")
after = tools.gov.list_items()
items = sorted(set(before.split(", ")) | set(after.split(", ")))
print(f"3 calls: {len(items)} distinct items; {renamed}")
"""

#: The policy hides delete_item from listings (so from ``tools``); code that calls it by
#: its gateway name anyway is refused by the gate.
REFUSED = """\
from dodo_jupyter.client import DodoClient

try:
    DodoClient().call_tool("gov__delete_item", {"name": "a"})
except Exception as e:
    print("refused:", e)
"""


@pytest.fixture
def upstream() -> Iterator[RunningServer]:
    with governed_upstream() as server:
        yield server


@pytest.fixture
def code_mode_approval() -> str:
    return "never"


@pytest.fixture
def dodo_config(
    dodo_config: dict[str, Any], upstream: RunningServer, code_mode_approval: str
) -> dict[str, Any]:
    return code_mode_config(dodo_config, upstream, code_mode_approval=code_mode_approval)


@pytest.fixture
def codemode_url(gateway_url: str) -> str:
    return f"{gateway_url}/codemode"


async def test_code_calls_tools_through_the_gate_and_returns_only_a_summary(
    api: Api, runtime_: DodoRuntime, upstream: RunningServer, codemode_url: str
) -> None:
    await govern(api, upstream, deny=["delete_*"])
    async with agent(runtime_, codemode_url, mode="legacy") as client:
        found = text(await client.call_tool("search_tools", {"query": "item"}))
        assert "# tools.gov\ndef list_items() -> str:" in found and "List the items." in found
        assert "rename_item(*, name: str, to: str)" in found
        assert "delete_item" not in found  # refused by policy: not offered either

        summary = await run(client, THREE_CALLS)
        assert not summary.is_error, text(summary)
        assert text(summary) == "3 calls: 2 distinct items; renamed a to z\n"

        refused = text(await run(client, REFUSED))
        assert refused.startswith("refused:") and "deny: 'delete_*'" in refused
        (kernel_token,) = await code_mode_tokens(runtime_)

    calls = await history(api, runtime_)
    assert [(c["tool"], c["outcome"], c["path"]) for c in calls] == [
        ("delete_item", "refused_policy", "code_mode"),
        ("list_items", "ok", "code_mode"),
        ("rename_item", "ok", "code_mode"),
        ("list_items", "ok", "code_mode"),
    ]
    assert {c["token_id"] for c in calls} == {kernel_token["id"]}  # the kernel's own token
    assert kernel_token["label"].startswith("Code mode: test-agent 1.0 (")


@pytest.mark.parametrize("code_mode_approval", ["always"])
async def test_each_run_waits_for_the_owners_approval_of_its_code(
    api: Api, runtime_: DodoRuntime, codemode_url: str
) -> None:
    async with agent(runtime_, codemode_url, mode="legacy", http_timeout=30) as client:
        # No JupyterLab open: refused at once, saying why.
        alone = await run(client, "print('never')")
        assert alone.is_error and "no JupyterLab of theirs is open" in text(alone)

        async def held_call(code: str) -> tuple[dict[str, Any], asyncio.Future[Any]]:
            poll = asyncio.ensure_future(api("GET", APPROVALS, wait="10"))
            await asyncio.sleep(0.3)  # the lab's poll is open
            call = asyncio.ensure_future(run(client, code))
            status, body = await asyncio.wait_for(poll, 10)
            (held,) = body["calls"]
            return held, call

        held, call = await held_call("print('approved')")
        assert (held["server_id"], held["tool"]) == ("code_mode", "run_python")
        assert held["arguments"] == {"code": "print('approved')"}
        assert (held["agent"]["client"], held["agent"]["token"]) == ("test-agent 1.0", "an agent")
        assert held["agent"]["path"] == "code_mode"
        assert not call.done()
        assert (await api("POST", f"{APPROVALS}/{held['id']}", {"decision": "once"}))[0] == 200
        approved = await asyncio.wait_for(call, 30)
        assert not approved.is_error and text(approved) == "approved\n"

        held, call = await held_call("print('denied')")
        assert (await api("POST", f"{APPROVALS}/{held['id']}", {"decision": "deny"}))[0] == 200
        denied = await asyncio.wait_for(call, 10)
        assert denied.is_error
        assert text(denied) == (
            "run_python: the user denied running this code. Ask them what to do instead."
        )
