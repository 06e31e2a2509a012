"""What the code-mode tests share: the endpoint's URL, a governed upstream in the catalog,
and reading an agent's results (tests/test_codemode_*.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from dodo_jupyter.codemode.landlock import Unavailable, abi_version
from dodo_jupyter.runtime import DodoRuntime

from .mcp_peers import RunningServer

NOTEBOOKS = "dodo/api/user/agent-notebooks"


def landlock_abi() -> int:
    """This machine's Landlock ABI; 0 where there is none."""
    try:
        return abi_version()
    except Unavailable:
        return 0


#: Tests of isolation need Landlock; elsewhere they say so and are skipped.
needs_landlock = pytest.mark.skipif(
    landlock_abi() == 0, reason="Linux Landlock is not available here"
)


def code_mode_config(
    config: dict[str, Any], upstream: RunningServer, **more: Any
) -> dict[str, Any]:
    """The test server's DodoApp settings with code mode on and the governed upstream
    approved as ``gov``; kernels are isolated where Landlock is (elsewhere the first
    result of each kernel would carry a note saying they are not)."""
    return {
        **config,
        "code_mode": True,
        "code_mode_filesystem_isolation": "best_effort" if landlock_abi() else "off",
        "approval_timeout": 5.0,
        "catalog": [{"id": "gov", "url": upstream.url, "auth_type": "none"}],
        **more,
    }


async def run(client: Client, code: str, **arguments: Any) -> types.CallToolResult:
    """``run_python`` with ``code``."""
    return await client.call_tool("run_python", {"code": code, **arguments})


def text(result: types.CallToolResult) -> str:
    """Every text block of a result, joined."""
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def code_mode_tokens(runtime: DodoRuntime) -> list[dict[str, Any]]:
    """The owner's code-mode kernel tokens."""
    tokens = await runtime.tokens.list(runtime.resolver.owner)
    return [t for t in tokens if t["kind"] == "code_mode"]


async def eventually(check: Any, seconds: float = 10.0) -> None:
    """Wait until the coroutine function ``check`` returns true."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"{check.__name__} never became true"
        await asyncio.sleep(0.1)
