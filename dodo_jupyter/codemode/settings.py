"""Code mode's settings (``c.DodoApp.code_mode*``): the traits
:class:`~dodo_jupyter.settings.DodoSettings` inherits, and :func:`check_notebook_dir`.

Light: traitlets only, read at server start."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from traitlets import Bool, CaselessStrEnum, Float, Integer, List, TraitError, Unicode, default
from traitlets import validate as validates
from traitlets.config import Configurable

__all__ = ["CODE_MODE_ENV", "CodeModeSettings", "check_notebook_dir"]

#: The environment variable that turns code mode on when ``DodoApp.code_mode`` is unset.
CODE_MODE_ENV = "DODO_CODE_MODE"
_TRUE = frozenset({"1", "true", "yes", "on"})


def check_notebook_dir(value: str) -> str:
    """``value`` as a folder below the server's root (``/`` separated, no ``..``).

    Raises
    ------
    ValueError
        naming what is wrong, for an absolute path, ``..`` or an empty one.
    """
    path = PurePosixPath(value.replace("\\", "/").strip())
    if path.is_absolute() or ".." in path.parts or str(path) in ("", "."):
        raise ValueError(
            "DodoApp.code_mode_notebook_dir must be a folder below the Jupyter server's "
            f"root_dir, such as 'dodo-agent-runs', not {value!r}."
        )
    return str(path)


class CodeModeSettings(Configurable):
    """The traits of code mode (see docs/code-mode.md)."""

    code_mode = Bool(
        config=True,
        help="""Offer code mode at {base_url}dodo/mcp/codemode: agents holding a gateway
        token may run Python in Jupyter kernels on this server (one per MCP session),
        calling the owner's tools from code, and every run is kept as a notebook. Off
        (the default), that URL answers 404 naming this setting. Default: the
        DODO_CODE_MODE environment variable ('1', 'true', 'yes' or 'on'), else False.
        Security: code runs as the server's OS user, with that user's network and files
        except dodo's store, key and the Jupyter runtime directory, which Landlock hides
        where Linux has it (DodoApp.code_mode_filesystem_isolation; see docs/code-mode.md,
        "Security"); its tool calls pass the governance gate.""",
    )

    @default("code_mode")
    def _default_code_mode(self) -> bool:
        return os.environ.get(CODE_MODE_ENV, "").strip().lower() in _TRUE

    code_mode_approval = CaselessStrEnum(
        ["never", "always"],
        default_value="never",
        config=True,
        help="""'always': every run_python waits until the owner approves its code in
        JupyterLab (the approval prompt tools use; "for this session" approves the rest
        of the agent's MCP session), and is refused when denied, not decided within
        DodoApp.approval_timeout or no JupyterLab is open. 'never' (default): code runs
        at once; the tools it calls still follow their own policies.""",
    )

    code_mode_idle_timeout = Float(
        900.0,
        min=0.0,
        config=True,
        help="""Seconds a code-mode kernel may sit without running code before it is
        shut down (its variables are lost; the session's next run starts a new kernel
        and says so). Default 900; 0 keeps idle kernels until their session ends.""",
    )

    code_mode_max_kernels = Integer(
        3,
        min=1,
        config=True,
        help="""Most code-mode kernels one user may have at once (one per agent MCP
        session). Starting one more shuts down the user's kernel idle the longest;
        when every one is running code, the run is refused saying so. Default 3.""",
    )

    code_mode_run_timeout = Float(
        60.0,
        min=1.0,
        config=True,
        help="""Seconds a run_python may take when the agent gives no timeout_s. A run
        past its timeout is interrupted and its kernel restarted (variables are lost,
        and the result says so). Default 60.""",
    )

    code_mode_max_run_timeout = Float(
        600.0,
        min=1.0,
        config=True,
        help="""The largest timeout_s an agent may give run_python, in seconds; larger
        ones are lowered to it. Default 600.""",
    )

    code_mode_max_output_bytes = Integer(
        100_000,
        min=100,
        config=True,
        help="""Most bytes of output one run returns and keeps in its notebook cell
        (printed text, values, images; an error's traceback always comes). The rest is
        cut, and the result says how much. Default 100000 (about 25,000 tokens of
        text).""",
    )

    code_mode_memory_limit_mb = Integer(
        4096,
        min=0,
        config=True,
        help="""Address-space limit of each code-mode kernel in MiB (RLIMIT_AS, set by
        the kernel's launcher where the OS enforces it: Linux). Past it an allocation
        raises MemoryError. It counts reserved virtual memory, not only what is used: an
        idle kernel reserves about 900 MiB. 0: no limit (needed by libraries that
        reserve much address space, such as CUDA or JAX). Default 4096.""",
    )

    code_mode_notebook_dir = Unicode(
        "dodo-agent-runs",
        config=True,
        help="""Where the runs' notebooks go, relative to the Jupyter server's root_dir:
        one notebook per agent session, <YYYY-MM-DD>-<agent>-<id>.ipynb; the kernels run
        in this folder. Default 'dodo-agent-runs'.""",
    )

    @validates("code_mode_notebook_dir")
    def _valid_notebook_dir(self, proposal: dict[str, str]) -> str:
        try:
            return check_notebook_dir(proposal["value"])
        except ValueError as e:
            raise TraitError(str(e)) from None

    code_mode_env_keep = List(
        Unicode(),
        config=True,
        help="""Names of environment variables code-mode kernels get from the server's
        environment, besides the safe ones always passed (PATH, HOME, LANG, LC_*, TZ,
        TMPDIR, PYTHONPATH, VIRTUAL_ENV, CONDA_PREFIX, ...; see docs/code-mode.md). Every
        other variable is left out: dodo's own, JupyterHub's token, credentials. Example:
        ['HTTPS_PROXY', 'NO_PROXY']. Security: whatever is listed here, agents' code can
        read.""",
    )

    code_mode_filesystem_isolation = CaselessStrEnum(
        ["best_effort", "required", "off"],
        default_value="best_effort",
        config=True,
        help="""Hide dodo's database and key file, the Jupyter runtime directory (the
        server's token, other kernels' keys) and DodoApp.code_mode_hidden_paths from
        code-mode kernels with Linux Landlock (5.13 or later), which also keeps kernels
        from reading other processes' environments, and make what runs later with more
        privilege read-only to them (the Jupyter config directories, the server's Python
        environment, ~/.ipython, DodoApp.code_mode_read_only_paths); the rest of the
        filesystem stays as it was (see docs/code-mode.md, "Security"). 'best_effort'
        (default): isolate where Landlock is available; where not, kernels start anyway,
        the server log warns and the agent's first result says so. 'required': refuse to
        start kernels that cannot be isolated. 'off': no isolation (for debugging).""",
    )

    code_mode_hidden_paths = List(
        Unicode(),
        config=True,
        help="""More files or folders to hide from code-mode kernels (with
        DodoApp.code_mode_filesystem_isolation), such as ['~/.aws', '~/.ssh',
        '~/.jupyter']; '~' is the server user's home. A path holding what a kernel needs
        (its Python, its working directory) is not hidden, and the server log says so.
        Default: none.""",
    )

    code_mode_read_only_paths = List(
        Unicode(),
        config=True,
        help="""More files or folders code-mode kernels may read but not write (with
        DodoApp.code_mode_filesystem_isolation), such as ['~/.bashrc', '~/.profile',
        '~/bin']; '~' is the server user's home. Read-only already: the Jupyter config
        directories, the server's Python environment (its prefixes, site-packages and
        the user's site-packages) and the user's IPython directory. A path holding the
        server's root_dir is not made read-only, and the server log says so; the
        kernel's working directory stays writable inside one. Default: none.""",
    )
