"""Code mode's parts that need no kernel: tracebacks as an agent reads them, the output
budget, the kernel's environment and launcher options, the notebook folder. (Run
notebooks: tests/test_codemode_notebooks.py; the whole, with real kernels:
tests/test_codemode_run.py.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from dodo_jupyter.codemode.execution import Execution, Outputs
from dodo_jupyter.codemode.kernelspec import KERNEL_OPTIONS, AgentKernelSpecs, kernel_env
from dodo_jupyter.codemode.launch import LaunchOptions, split_options
from dodo_jupyter.codemode.results import tool_result, trim_traceback
from dodo_jupyter.codemode.settings import check_notebook_dir

RED, RESET = "\x1b[31m", "\x1b[39m"

#: An IPython traceback of a tool error raised inside dodo's client, as ipykernel sends it.
TOOL_ERROR_TRACEBACK = [
    f"{RED}---------------------------------------------------------------------------{RESET}",
    f"{RED}ToolError{RESET}                                 Traceback (most recent call last)",
    f"\x1b[36mCell\x1b[39m In[4], line 3\n      1 x = 1\n----> 3 {RED}tools{RESET}.call()\n",
    "File /srv/venv/lib/python3.11/site-packages/dodo_jupyter/client/dodo_client.py:397, in "
    "DodoClient.call_tool(self, name)\n    395 def call_tool(self, name):\n--> 397     return "
    "self._run(...)\n",
    "File /srv/venv/lib/python3.11/concurrent/futures/_base.py:449, in Future.result(self)\n"
    "--> 449     return self.__get_result()\n",
    "File /srv/venv/lib/python3.11/site-packages/pandas/core/frame.py:12, in DataFrame(x)\n"
    "     10 a = 1\n---> 12 raise ValueError(x)\n     13 b = 2\n",
    f"{RED}ToolError{RESET}: gov__delete_item: refused: deny: 'delete_*'.",
]


def test_a_traceback_keeps_the_agents_lines_and_drops_dodos() -> None:
    assert trim_traceback(TOOL_ERROR_TRACEBACK) == (
        "Traceback (most recent call last):\n"
        "Cell In[4], line 3\n      1 x = 1\n----> 3 tools.call()\n"
        "  (2 frames inside IPython or dodo not shown)\n"
        "File /srv/venv/lib/python3.11/site-packages/pandas/core/frame.py:12, in DataFrame(x)\n"
        "---> 12 raise ValueError(x)\n"
        "ToolError: gov__delete_item: refused: deny: 'delete_*'."
    )


def test_a_syntax_error_keeps_its_caret() -> None:
    traceback = [
        "  \x1b[36mCell\x1b[39m In[2], line 1\n    def\n       ^\n",
        f"{RED}SyntaxError{RESET}: invalid syntax\n",
    ]
    assert (
        trim_traceback(traceback)
        == "  Cell In[2], line 1\n    def\n       ^\nSyntaxError: invalid syntax"
    )


def _msg(kind: str, **content: object) -> dict[str, object]:
    """An IOPub message of ``kind`` as a kernel client receives it."""
    return {"msg_type": kind, "header": {"msg_type": kind}, "content": content}


def _stream(text: str, name: str = "stdout") -> dict[str, object]:
    return _msg("stream", name=name, text=text)


def _display(data: dict[str, str]) -> dict[str, object]:
    return _msg("display_data", data=data, metadata={})


def test_the_output_budget_merges_prints_and_counts_what_it_cuts() -> None:
    outputs = Outputs(max_bytes=10)
    for part in ("héllo ", "wörld", "!" * 5):
        outputs.add(_stream(part))
    outputs.add(_display({"text/plain": "a value"}))
    outputs.add(_msg("error", ename="E", evalue="x", traceback=[]))
    (printed, error) = outputs.items
    assert printed["text"] == "héllo wö"  # 10 bytes of UTF-8, no broken character
    assert outputs.cut_bytes == len("rld!!!!!a value") and outputs.cut_outputs == 1
    assert error["output_type"] == "error"  # an error always comes

    result = tool_result(Execution("error", outputs, 0.1, 1))
    assert result.is_error
    assert "Output cut after 10 bytes" in result.content[0].text  # type: ignore[union-attr]


def test_stderr_is_marked_and_an_empty_run_says_how_to_see_a_value() -> None:
    outputs = Outputs(1000)
    outputs.add(_stream("careful\n", "stderr"))
    assert tool_result(Execution("ok", outputs, 0.1)).content[0].text == "[stderr]\ncareful\n"  # type: ignore[union-attr]
    empty = tool_result(Execution("ok", Outputs(1000), 0.1))
    assert "End with an expression to see its value" in empty.content[0].text  # type: ignore[union-attr]


def test_the_kernel_environment_is_an_allowlist() -> None:
    server = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LC_ALL": "C.UTF-8",
        "DODO_DB_URL": "postgresql://secret",
        "DODO_MCP_TOKEN": "dodo_server_wide",
        "JUPYTERHUB_API_TOKEN": "hub",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "HTTPS_PROXY": "http://proxy:3128",
    }
    env = kernel_env(
        server, gateway_url="http://x/dodo/mcp", token="dodo_own", keep=["HTTPS_PROXY"]
    )
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LC_ALL": "C.UTF-8",
        "HTTPS_PROXY": "http://proxy:3128",
        "DODO_MCP_URL": "http://x/dodo/mcp",
        "DODO_MCP_TOKEN": "dodo_own",
    }


def test_the_agent_kernel_spec_is_known_only_to_its_own_manager() -> None:
    specs = AgentKernelSpecs(memory_limit_mb=512)
    spec = specs.get_kernel_spec("dodo-agent")
    assert spec.argv[:3] == [sys.executable, "-m", "dodo_jupyter.codemode.launch"]
    options = list(KERNEL_OPTIONS)
    assert spec.argv[3:] == ["--memory-mb", "512", "-f", "{connection_file}", *options]
    assert list(specs.get_all_specs()) == ["dodo-agent"]
    isolated = AgentKernelSpecs(0, "best_effort", ["/a b", "/c"], ["/r"]).get_kernel_spec(
        "dodo-agent"
    )
    assert isolated.argv[3:] == [
        *("--isolation", "best_effort", "--hide", "/a b", "--hide", "/c", "--read-only", "/r"),
        *("-f", "{connection_file}", *options),
    ]
    assert split_options(["--memory-mb=64", "-f", "c.json"]) == (
        LaunchOptions(memory_mb=64),
        ["-f", "c.json"],
    )
    assert split_options(isolated.argv[3:])[0] == LaunchOptions(
        0, "best_effort", ["/a b", "/c"], ["/r"]
    )
    with pytest.raises(SystemExit, match="--read-only needs a path"):
        split_options(["--read-only="])
    with pytest.raises(SystemExit, match="needs a whole number of MiB"):
        split_options(["--memory-mb", "lots"])
    with pytest.raises(SystemExit, match="needs one of off, best_effort, required"):
        split_options(["--isolation=on"])


def test_the_launcher_limits_the_kernels_memory() -> None:
    code = (
        "import resource, sys; from dodo_jupyter.codemode.launch import apply_memory_limit;"
        "apply_memory_limit(1024); print(resource.getrlimit(resource.RLIMIT_AS)[0])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(done.stdout) == 1024 * 1024 * 1024


@pytest.mark.parametrize("bad", ["/etc", "../up", "a/../../b", "", "."])
def test_the_notebook_folder_must_be_below_the_root(bad: str) -> None:
    with pytest.raises(ValueError, match="below the Jupyter server's root_dir"):
        check_notebook_dir(bad)
    assert check_notebook_dir("runs/agents/") == "runs/agents"
