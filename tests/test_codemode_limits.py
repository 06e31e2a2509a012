"""Code mode's limits through a real Jupyter server: at most DodoApp.code_mode_max_kernels
kernels per user (the one idle the longest makes room, or the run is refused when all
are busy), idle kernels shut down after DodoApp.code_mode_idle_timeout (short here), and
the endpoint answering 404 while code mode is off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from dodo_jupyter.runtime import DodoRuntime

from .codemode_peers import NOTEBOOKS, code_mode_config, code_mode_tokens, eventually, run, text
from .conftest import Api
from .governance_peers import agent, governed_upstream
from .mcp_peers import INITIALIZE, MCP_HEADERS, RunningServer

pytestmark = pytest.mark.usefixtures("upstreams_closed_first")


@pytest.fixture
def upstream() -> Iterator[RunningServer]:
    with governed_upstream() as server:
        yield server


@pytest.fixture
def limits() -> dict[str, Any]:
    return {}


@pytest.fixture
def dodo_config(
    dodo_config: dict[str, Any], upstream: RunningServer, limits: dict[str, Any]
) -> dict[str, Any]:
    return code_mode_config(dodo_config, upstream, **limits)


@pytest.fixture
def codemode_url(gateway_url: str) -> str:
    return f"{gateway_url}/codemode"


@pytest.mark.parametrize("limits", [{"code_mode_max_kernels": 1}])
async def test_a_new_session_takes_the_place_of_the_idle_one_or_is_refused(
    runtime_: DodoRuntime, codemode_url: str
) -> None:
    async with agent(runtime_, codemode_url) as first, agent(runtime_, codemode_url) as second:
        assert text(await run(first, "mine = 'first'\nmine")) == "Out[1]: 'first'"
        assert text(await run(second, "mine = 'second'\nmine")) == "Out[1]: 'second'"
        assert len(await code_mode_tokens(runtime_)) == 1  # the first kernel made room

        again = text(await run(first, "mine"))
        assert again.startswith(
            "Note: This session's kernel was replaced because it was shut down to make room "
            "for another session's kernel (DodoApp.code_mode_max_kernels = 1): variables, "
            "imports and functions of earlier runs are gone."
        )
        assert "NameError" in again

        # While the one kernel runs code, another session's run is refused.
        busy = asyncio.ensure_future(run(first, "import time\ntime.sleep(2)\n'done'"))
        await asyncio.sleep(0.5)
        refused = await run(second, "1 + 1")
        assert refused.is_error
        assert text(refused) == (
            "run_python: All 1 of your code-mode kernels are running code "
            "(DodoApp.code_mode_max_kernels = 1): wait for a run to finish, or end another "
            "agent session, and try again."
        )
        assert text(await busy) == "Out[2]: 'done'"


@pytest.mark.parametrize("limits", [{"code_mode_idle_timeout": 1.0}])
async def test_an_idle_kernel_is_shut_down_and_its_session_told(
    api: Api, runtime_: DodoRuntime, codemode_url: str
) -> None:
    async with agent(runtime_, codemode_url, mode="legacy") as client:
        assert text(await run(client, "kept = 1\nkept")) == "Out[1]: 1"

        async def culled() -> bool:  # the kernel, and its token with it
            status, body = await api("GET", NOTEBOOKS)
            gone = body["notebooks"][0]["active"] is False
            return gone and await code_mode_tokens(runtime_) == []

        await eventually(culled, 10)

        after = text(await run(client, "kept"))
        assert after.startswith(
            "Note: This session's kernel was replaced because it was idle for more than 1 s "
            "(DodoApp.code_mode_idle_timeout)"
        )
        assert "NameError" in after
    status, body = await api("GET", NOTEBOOKS)
    (notebook,) = body["notebooks"]
    assert notebook["runs"] == 2  # one notebook for the session, both kernels' runs


@pytest.mark.parametrize("limits", [{"code_mode": False}])
async def test_code_mode_off_answers_404_naming_the_setting(
    api: Api, runtime_: DodoRuntime
) -> None:
    await runtime_.ready()
    token = (await runtime_.tokens.create(runtime_.resolver.owner, "an agent")).token
    headers = {
        **MCP_HEADERS,
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
    }
    status, body = await api("POST", "dodo/mcp/codemode", INITIALIZE, headers=headers)
    assert status == 404
    assert body["error"] == "not_found"
    assert "c.DodoApp.code_mode = True" in body["message"] and "DODO_CODE_MODE=1" in body["message"]
    status, body = await api("GET", NOTEBOOKS)  # the notebooks of earlier sessions stay listed
    assert status == 200 and body == {
        "enabled": False,
        "folder": "dodo-agent-runs",
        "notebooks": [],
    }
