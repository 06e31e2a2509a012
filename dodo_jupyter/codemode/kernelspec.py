"""The ``dodo-agent`` kernel spec and what a code-mode kernel's process gets.

**The spec** is made in code (:func:`agent_kernel_spec`), not installed: code-mode
kernels are started by a kernel manager of dodo's own whose spec manager
(:class:`AgentKernelSpecs`) knows this one spec and no other. So the spec never appears
among the user's kernels (JupyterLab's launcher, ``/api/kernelspecs``) and the kernels
never among the server's (``/api/kernels``, the Running panel). Its command is
:mod:`.launch`, which applies the memory limit and then runs ipykernel.

**The environment** (:func:`kernel_env`) is built from an allowlist, not by removing
what looks secret: the variables a Python process needs to find its interpreter,
packages, home, locale and temporary files (:data:`SAFE_ENV`, ``LC_*``, ``XDG_*``),
those the admin adds (``DodoApp.code_mode_env_keep``), and the two that reach the
gateway: ``DODO_MCP_URL`` and this kernel's own ``DODO_MCP_TOKEN``. Nothing else of the
server's environment: not dodo's database URL, crypt key or service token, not
JupyterHub's API token, not the server-wide kernel token, not the Jupyter runtime
directory (where the server's own credentials lie).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

from .launch import HIDE_OPTION, ISOLATION_OPTION, MEMORY_OPTION, READ_ONLY_OPTION

__all__ = [
    "AGENT_KERNEL_NAME",
    "SAFE_ENV",
    "AgentKernelSpecs",
    "agent_kernel_spec",
    "kernel_env",
]

#: The name of the spec code-mode kernels are started with.
AGENT_KERNEL_NAME = "dodo-agent"

#: Variables every code-mode kernel gets from the server's environment, when set.
SAFE_ENV = frozenset(
    {
        # where programs, packages and the interpreter are
        "PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "CONDA_EXE",
        "LD_LIBRARY_PATH",
        "IPYTHONDIR",
        "MPLCONFIGDIR",
        # who and where the user is
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TMPDIR",
        "TEMP",
        "TMP",
        "TZ",
        "LANG",
        "LANGUAGE",
        "TERM",
        # certificates for https
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        # Windows needs these to start a process at all
        "SYSTEMROOT",
        "SYSTEMDRIVE",
        "WINDIR",
        "COMSPEC",
        "PATHEXT",
        "APPDATA",
        "LOCALAPPDATA",
        "USERPROFILE",
        "PROGRAMDATA",
    }
)
#: Prefixes of variables passed the same way (locale, XDG base directories).
SAFE_PREFIXES = ("LC_", "XDG_")


#: IPython settings of agent kernels: no input history in SQLite (the run's notebook is
#: the record, and its writes cost every run CPU), no pause of half a millisecond before
#: each reply (an old ipykernel workaround for late output; dodo reads output until the
#: kernel says it is idle), standard streams that do not wait for the IOPub thread when
#: nothing was printed (:mod:`.kernel_streams`), and IPython without needless tokenizing
#: of each run's code (:mod:`.agent_shell`).
KERNEL_OPTIONS = (
    "--HistoryManager.enabled=False",
    "--IPythonKernel._execute_sleep=0",
    "--IPKernelApp.outstream_class=dodo_jupyter.codemode.kernel_streams.AgentOutStream",
    "--IPKernelApp.extensions=dodo_jupyter.codemode.agent_shell",
)


def agent_kernel_spec(
    memory_limit_mb: int = 0,
    isolation: str = "off",
    hidden: Iterable[str] = (),
    read_only: Iterable[str] = (),
) -> KernelSpec:
    """The ``dodo-agent`` spec: ipykernel in this server's Python, through :mod:`.launch`
    with a ``memory_limit_mb`` MiB address-space limit (0: none), and ``isolation``
    (``best_effort`` or ``required``: ``hidden`` are hidden from it, ``read_only`` are
    read-only to it; ``off``: nothing)."""
    argv = [sys.executable, "-m", "dodo_jupyter.codemode.launch"]
    if memory_limit_mb > 0:
        argv += [MEMORY_OPTION, str(memory_limit_mb)]
    if isolation != "off":
        argv += [ISOLATION_OPTION, isolation]
        for path in hidden:
            argv += [HIDE_OPTION, path]
        for path in read_only:
            argv += [READ_ONLY_OPTION, path]
    argv += ["-f", "{connection_file}", *KERNEL_OPTIONS]
    return KernelSpec(
        argv=argv,
        display_name="Agent code (dodo code mode)",
        language="python",
        resource_dir="",
        env={},
        metadata={"debugger": False},
    )


class AgentKernelSpecs(KernelSpecManager):
    """A kernel spec manager that knows the ``dodo-agent`` spec only (see the module
    docstring); the arguments of :func:`agent_kernel_spec` go into its command."""

    def __init__(
        self,
        memory_limit_mb: int = 0,
        isolation: str = "off",
        hidden: Iterable[str] = (),
        read_only: Iterable[str] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self._spec = agent_kernel_spec(memory_limit_mb, isolation, hidden, read_only)

    def find_kernel_specs(self) -> dict[str, str]:
        return {AGENT_KERNEL_NAME: ""}

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name != AGENT_KERNEL_NAME:
            raise NoSuchKernel(kernel_name)
        return self._spec

    def get_all_specs(self) -> dict[str, dict[str, object]]:
        return {AGENT_KERNEL_NAME: {"resource_dir": "", "spec": self._spec.to_dict()}}


def kernel_env(
    server_env: Mapping[str, str],
    *,
    gateway_url: str,
    token: str,
    keep: Iterable[str] = (),
) -> dict[str, str]:
    """The environment of a code-mode kernel (see the module docstring)."""
    kept = SAFE_ENV | set(keep)
    env = {
        name: value
        for name, value in server_env.items()
        if name in kept or name.startswith(SAFE_PREFIXES)
    }
    env["DODO_MCP_URL"] = gateway_url
    env["DODO_MCP_TOKEN"] = token
    return env
