"""Code mode's run_python through a real Jupyter server and real kernels, driven by the
MCP SDK's client at /dodo/mcp/codemode: what a run answers (printed text, the last value,
images, errors with trimmed tracebacks, cut output, timeouts), state kept per session,
the notebook every run ends up in, and what a kernel can see (its environment, its own
token, which stops working with its session).

Kernel starts are few on purpose (each costs about a second): one session lives through
the first test, two through the second."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import nbformat
import pytest
from cryptography.fernet import Fernet

from dodo_jupyter.runtime import DodoRuntime

from .codemode_peers import NOTEBOOKS, code_mode_config, code_mode_tokens, eventually, run, text
from .conftest import Api
from .governance_peers import agent, governed_upstream
from .mcp_peers import INITIALIZE, MCP_HEADERS, RunningServer

pytestmark = pytest.mark.usefixtures("upstreams_closed_first")

#: The server's secrets that no code-mode kernel may see.
SECRETS = {
    "DODO_CRYPT_KEY": Fernet.generate_key().decode(),
    "DODO_SERVICE_TOKEN": "service-token-not-for-kernels",
    "DODO_DB_URL": "sqlite:////nowhere/dodo.sqlite",
    "JUPYTERHUB_API_TOKEN": "hub-token-not-for-kernels",
    "JUPYTER_TOKEN": "jupyter-token-not-for-kernels",
    # What kernel access exports for the notebooks' kernels: code mode's have their own.
    "DODO_MCP_TOKEN": "dodo_server-wide-kernel-token",
    "DODO_MCP_URL": "http://127.0.0.1:9/elsewhere/dodo/mcp",
}


@pytest.fixture
def upstream() -> Iterator[RunningServer]:
    with governed_upstream() as server:
        yield server


@pytest.fixture
def server_secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


@pytest.fixture
def dodo_config(
    dodo_config: dict[str, Any], upstream: RunningServer, server_secrets: dict[str, str]
) -> dict[str, Any]:
    return code_mode_config(
        dodo_config,
        upstream,
        code_mode_max_output_bytes=2000,
        code_mode_memory_limit_mb=3072,
    )


@pytest.fixture
def codemode_url(gateway_url: str) -> str:
    return f"{gateway_url}/codemode"


async def test_a_session_runs_code_keeps_state_and_writes_a_notebook(
    api: Api, runtime_: DodoRuntime, codemode_url: str, jp_root_dir: Path
) -> None:
    async with agent(runtime_, codemode_url, mode="legacy") as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == {"search_tools", "run_python", "reset"}
        assert "from dodo_jupyter import tools" in (listed["run_python"].description or "")

        first = await run(client, "x = 6 * 7\nprint('hello from the kernel')\nx")
        assert not first.is_error
        assert text(first) == "hello from the kernel\nOut[1]: 42"
        assert text(await run(client, "x + 1")) == "Out[2]: 43"  # the state stays

        picture = await run(
            client,
            "from IPython.display import Image\n"
            "from dodo_jupyter.demo.tools import make_png\n"
            "Image(make_png(8, (255, 0, 0)))",
        )
        (image,) = [c for c in picture.content if isinstance(c, types.ImageContent)]
        assert image.mime_type == "image/png"
        assert base64.b64decode(image.data).startswith(b"\x89PNG")

        await run(client, "def divide(a, b):\n    return a / b\n")
        failed = await run(
            client, "import sys\nprint('about to fail', file=sys.stderr)\ndivide(1, 0)"
        )
        assert failed.is_error
        error = text(failed)
        assert error.startswith("[stderr]\nabout to fail")
        assert "Traceback (most recent call last):" in error
        assert "----> 3 divide(1, 0)" in error and "----> 2     return a / b" in error
        assert error.rstrip().endswith("ZeroDivisionError: division by zero")
        assert "\x1b[" not in error and "site-packages" not in error

        # A failing call into dodo's client: its own frames are left out, the cause stays.
        client_error = text(
            await run(
                client,
                "from dodo_jupyter.client import DodoClient\n"
                "DodoClient().call_tool('gov__no_such_tool', {})",
            )
        )
        assert "frames inside IPython or dodo not shown" in client_error
        assert "dodo_jupyter/client" not in client_error
        assert "gov__no_such_tool" in client_error.splitlines()[-1]

        cut = await run(client, "print('y' * 5000)\n'the end'")
        assert not cut.is_error
        assert "y" * 2000 in text(cut) and "y" * 2001 not in text(cut)
        assert (
            "Output cut after 2,000 bytes (DodoApp.code_mode_max_output_bytes): 3,010 more "
            "bytes were left out, among them 1 whole output (values, images)."
        ) in text(cut)

        found = await client.call_tool("search_tools", {"query": ""})
        assert text(found).startswith("No tools yet")  # nothing connected yet

        # Past its timeout the run is interrupted and the kernel restarted.
        slow = await run(
            client, "import time\nprint('started', flush=True)\ntime.sleep(30)", timeout_s=1
        )
        assert slow.is_error
        assert text(slow).startswith("started\n")
        assert "Timed out after 1 s: the kernel was interrupted and restarted" in text(slow)
        assert "NameError" in text(await run(client, "x"))  # the state went with it
        assert text(await run(client, "print('still here')")) == "still here\n"

        # A run the agent cancels is interrupted: the kernel is free for the next one,
        # and the notebook keeps what it printed.
        cancelled = asyncio.ensure_future(
            run(client, "import time\nprint('waiting', flush=True)\ntime.sleep(60)")
        )
        await asyncio.sleep(1.5)
        cancelled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancelled
        after_cancel = await run(client, "'next'", timeout_s=20)  # the sleep had 60 s
        assert not after_cancel.is_error and text(after_cancel).endswith("'next'")

        # What was printed comes whole and before the value: many lines, and from a thread.
        printed = await run(
            client,
            "import threading\nfor i in range(300):\n    print(i)\n"
            "t = threading.Thread(target=print, args=('from a thread',))\n"
            "t.start()\nt.join()\n'done'",
        )
        lines = "\n".join(map(str, range(300))) + "\nfrom a thread\n"
        assert text(printed).startswith(lines) and text(printed).endswith("]: 'done'")

        status, body = await api("GET", NOTEBOOKS)
        (listed_nb,) = body["notebooks"]
        assert listed_nb["active"] is True
    assert listed_nb["runs"] == 13
    assert listed_nb["agent"]["client"] == "test-agent 1.0"
    assert listed_nb["agent"]["token_label"] == "an agent"
    assert listed_nb["path"].startswith("dodo-agent-runs/")
    assert listed_nb["path"].endswith(".ipynb") and "-test-agent-" in listed_nb["path"]

    notebook = nbformat.read(jp_root_dir / listed_nb["path"], as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.metadata.dodo.code_mode.runs == 13
    cells = notebook.cells
    assert [c.cell_type for c in cells] == ["code"] * 13
    assert cells[0].source == "x = 6 * 7\nprint('hello from the kernel')\nx"
    assert [o["output_type"] for o in cells[0].outputs] == ["stream", "execute_result"]
    assert cells[0].outputs[1]["data"]["text/plain"] == "42"
    assert cells[0].execution_count == 1 and cells[0].metadata.dodo.status == "ok"
    assert "image/png" in cells[2].outputs[0]["data"]
    assert cells[4].outputs[-1]["output_type"] == "error"  # the whole traceback, for people
    assert cells[6].outputs[-1]["text"].startswith("dodo: ")  # what was cut, said
    assert cells[7].metadata.dodo.status == "timeout"
    assert "Timed out" in cells[7].outputs[-1]["text"]
    assert cells[10].metadata.dodo.status == "cancelled"
    assert [o.get("text") for o in cells[10].outputs] == [
        "waiting\n",
        "dodo: The agent cancelled this run before it ended: the kernel was interrupted; "
        "the outputs above are what it printed until then.\n",
    ]
    assert cells[11].source == "'next'"

    async def kernel_gone() -> bool:  # the session ended: its kernel too
        status, body = await api("GET", NOTEBOOKS)
        return body["notebooks"][0]["active"] is False

    await eventually(kernel_gone)


async def test_each_session_has_its_own_kernel_environment_and_token(
    api: Api,
    runtime_: DodoRuntime,
    codemode_url: str,
    gateway_url: str,
    server_secrets: dict[str, str],
    tmp_path: Path,
) -> None:
    # A folder made before the kernel starts: tmp_path is on the way to paths the kernel
    # must not see (the runtime directory, the store), so nothing new is made in it.
    token_file = tmp_path / "shared" / "kernel-token"
    token_file.parent.mkdir()
    async with (
        agent(runtime_, codemode_url, mode="legacy") as first,  # a 2025-11-25 session
        agent(runtime_, codemode_url) as second,  # stateless 2026-07-28: by its token
    ):
        assert text(await run(first, "secret_of_first = 1\nsecret_of_first")) == "Out[1]: 1"
        assert "NameError" in text(await run(second, "secret_of_first"))

        seen = await run(
            first,
            "import hashlib, json, os, resource\n"
            "token = os.environ['DODO_MCP_TOKEN']\n"
            f"open({str(token_file)!r}, 'w').write(token)\n"
            "print(json.dumps({'names': sorted(os.environ),\n"
            "    'token': hashlib.sha256(token.encode()).hexdigest(),\n"
            "    'url': os.environ['DODO_MCP_URL'],\n"
            "    'values': sorted(hashlib.sha256(v.encode()).hexdigest()\n"
            "                     for v in os.environ.values()),\n"
            "    'memory': resource.getrlimit(resource.RLIMIT_AS)[0], 'cwd': os.getcwd()}))",
        )
        env = json.loads(text(seen))
        assert env["url"] == gateway_url.replace("127.0.0.1", "localhost")  # the server's
        assert env["memory"] == 3072 * 1024 * 1024
        assert env["cwd"].endswith("dodo-agent-runs")
        forbidden = set(server_secrets) - {"DODO_MCP_TOKEN", "DODO_MCP_URL"}
        forbidden |= {"JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR"}
        assert not forbidden & set(env["names"]), forbidden & set(env["names"])
        digests = {hashlib.sha256(v.encode()).hexdigest() for v in server_secrets.values()}
        assert not digests & set(env["values"])  # not under another name either

        # Past the memory limit an allocation fails; the kernel goes on.
        greedy = await run(second, "hoard = bytearray(4 * 1024**3)")
        assert greedy.is_error and "\nMemoryError" in text(greedy)
        assert text(greedy).endswith(
            "Note: The kernel may use at most 3,072 MiB of address space "
            "(DodoApp.code_mode_memory_limit_mb): work in smaller pieces."
        )
        assert text(await run(second, "'still alive'")) == "Out[3]: 'still alive'"
        second_pid = int(text(await run(second, "import os\nos.getpid()")).split(": ")[1])

        kernel_token = token_file.read_text()
        assert len(await code_mode_tokens(runtime_)) == 2  # one per kernel
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {kernel_token}"}
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(gateway_url, json=INITIALIZE, headers=headers)
            assert response.status_code == 200

        # Not among the user's kernels or kernel specs.
        status, kernels = await api("GET", "api/kernels")
        assert kernels == []
        status, specs = await api("GET", "api/kernelspecs")
        assert "dodo-agent" not in specs["kernelspecs"]

    # The first session ended (DELETE): its kernel and token are gone. The stateless
    # client's kernel stays for its token's next requests, until it is idle too long.
    async def one_token_left() -> bool:
        return len(await code_mode_tokens(runtime_)) == 1

    await eventually(one_token_left)
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(gateway_url, json=INITIALIZE, headers=headers)
    assert response.status_code == 401

    # The server stops (DodoApp.stop_extension stops code mode): the kernel left goes too.
    assert runtime_.code_mode is not None
    await runtime_.code_mode.stop()
    assert await code_mode_tokens(runtime_) == []

    async def process_gone() -> bool:
        try:
            os.kill(second_pid, 0)
        except ProcessLookupError:
            return True
        return False

    await eventually(process_gone)
