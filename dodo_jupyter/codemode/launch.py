"""The launcher of code-mode kernels: ``python -m dodo_jupyter.codemode.launch
[--memory-mb N] [--isolation MODE] [--hide PATH]... [--read-only PATH]... -f <connection
file>``.

**Isolation** (``--isolation best_effort`` or ``required``; ``off``, the default, does
nothing): the paths given with ``--hide`` become unreadable, unwritable and unlistable
to the kernel and whatever it starts, those given with ``--read-only`` readable but not
writable, through Linux Landlock (:mod:`.landlock`: the rest of the filesystem stays as
it was), the kernel cannot look into other processes (``/proc/<pid>/environ``) or
signal them, and a kernel started by root gives up root's capabilities
(:mod:`.capabilities`). A path to hide that holds what the kernel needs (its connection
file, working directory or Python) is left alone; what it writes (its connection file's
folder, its working directory) stays writable inside a read-only path. What was done
goes to ``<connection file>-isolation.json`` (:func:`report_path`) for dodo to read; where
Landlock is missing a line on stderr says why, and ``required`` stops there (exit 1)
instead of starting ipykernel.

**Memory**: the process's address space is limited to ``N`` MiB (``RLIMIT_AS``, where
the operating system has it: Linux enforces it; macOS accepts it without much effect;
Windows has no ``resource`` module and gets no limit). Past the limit an allocation
fails: the code gets a ``MemoryError`` and the kernel goes on. 0 (or no option) sets no
limit. The limit is on virtual memory, which is more than what a process really uses
(each thread reserves its stack, allocators reserve arenas): an idle ipykernel reserves
about 0.9 GiB. Libraries that reserve much address space up front (CUDA, JAX) need the
limit off (``DodoApp.code_mode_memory_limit_mb = 0``).

Then it runs ipykernel as ``ipykernel_launcher`` would, with every other argument.

Light on purpose: it imports nothing of dodo's but code mode's launcher modules, before
ipykernel.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "HIDE_OPTION",
    "ISOLATION_MODES",
    "ISOLATION_OPTION",
    "MEMORY_OPTION",
    "READ_ONLY_OPTION",
    "LaunchOptions",
    "apply_memory_limit",
    "isolate",
    "main",
    "report_path",
    "split_options",
]

#: The option that sets the limit, in MiB.
MEMORY_OPTION = "--memory-mb"
#: The option naming a path to hide (repeated).
HIDE_OPTION = "--hide"
#: The option naming a path to make read-only (repeated).
READ_ONLY_OPTION = "--read-only"
#: The option saying whether to isolate: one of :data:`ISOLATION_MODES`.
ISOLATION_OPTION = "--isolation"
ISOLATION_MODES = ("off", "best_effort", "required")


@dataclass
class LaunchOptions:
    """The launcher's own options."""

    memory_mb: int = 0
    isolation: str = "off"
    hide: list[str] = field(default_factory=list)
    read_only: list[str] = field(default_factory=list)


def split_options(argv: list[str]) -> tuple[LaunchOptions, list[str]]:
    """The launcher's options and the arguments left for ipykernel.

    Raises
    ------
    SystemExit
        for an option without a valid value after it.
    """
    options = LaunchOptions()
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        name, equals, value = arg.partition("=")
        if name not in (MEMORY_OPTION, HIDE_OPTION, READ_ONLY_OPTION, ISOLATION_OPTION):
            rest.append(arg)
            continue
        if not equals:
            value = next(args, "")
        if name == MEMORY_OPTION:
            if not value.isdigit():
                raise SystemExit(f"{MEMORY_OPTION} needs a whole number of MiB, not {value!r}")
            options.memory_mb = int(value)
        elif name == ISOLATION_OPTION:
            if value not in ISOLATION_MODES:
                raise SystemExit(
                    f"{ISOLATION_OPTION} needs one of {', '.join(ISOLATION_MODES)}, not {value!r}"
                )
            options.isolation = value
        elif not value:
            raise SystemExit(f"{name} needs a path")
        else:
            (options.hide if name == HIDE_OPTION else options.read_only).append(value)
    return options, rest


def apply_memory_limit(megabytes: int) -> bool:
    """Limit this process's address space to ``megabytes`` MiB; False where the system
    cannot (no ``resource`` module, or a hard limit below it)."""
    if megabytes <= 0:
        return False
    try:
        import resource
    except ImportError:  # Windows
        return False
    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and hard < limit:
        limit = hard
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        return False
    return True


def report_path(connection_file: str) -> Path:
    """Where the launcher of the kernel with ``connection_file`` reports its isolation."""
    path = Path(connection_file)
    return path.with_name(f"{path.stem}-isolation.json")


def _connection_file(ipykernel_args: list[str]) -> str | None:
    for i, arg in enumerate(ipykernel_args):
        if arg == "-f" and i + 1 < len(ipykernel_args):
            return ipykernel_args[i + 1]
        if arg.startswith(("-f=", "--f=")):
            return arg.partition("=")[2]
    return None


def _written(connection_file: str | None) -> dict[str, str]:
    """Where the kernel writes and cannot do without, to what it is: its working
    directory and its connection file's folder (its IPC sockets, its IPython directory,
    the report)."""
    needed = {os.getcwd(): "the kernel's working directory"}
    if connection_file:
        needed[os.path.dirname(os.path.abspath(connection_file))] = "the kernel's connection file"
    return needed


def _read() -> dict[str, str]:
    """What the kernel reads and cannot do without, to what it is: its Python."""
    needed: dict[str, str] = {}
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path):
        if path and os.path.isdir(path):
            needed.setdefault(path, f"the kernel's Python ({path})")
    return needed


def isolate(
    hide: list[str],
    *,
    read_only: list[str] | None = None,
    required: bool,
    connection_file: str | None,
) -> dict[str, object]:
    """Isolate this process (see the module docstring); what was done, as reported.

    Raises
    ------
    SystemExit
        when ``required`` and Landlock could not be used.
    """
    from .capabilities import drop_capabilities, has_capabilities
    from .landlock import hide as hide_paths

    # IPython makes its folder at start, which may be right in the home directory: a
    # folder on the way to a hidden one, where nothing new can be made once isolated.
    ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join(os.path.expanduser("~"), ".ipython")
    with contextlib.suppress(OSError):
        os.makedirs(ipython_dir, exist_ok=True)
    outcome = hide_paths(
        hide, _written(connection_file), read_only=read_only or [], readable=_read()
    )
    as_root = has_capabilities()
    report: dict[str, object] = {
        "isolated": outcome.isolated,
        "reason": outcome.reason,
        "abi": outcome.abi,
        "hidden": outcome.hidden,
        "read_only": outcome.read_only,
        "remarks": outcome.remarks,
        "rules": outcome.rules,
        "as_root": as_root,
        "capabilities": drop_capabilities() if as_root else "",
    }
    if connection_file:
        try:
            report_path(connection_file).write_text(json.dumps(report), encoding="utf-8")
        except OSError as e:
            print(f"dodo code mode: could not report the kernel's isolation: {e}", file=sys.stderr)
    for remark in outcome.remarks:
        print(f"dodo code mode: isolating the kernel: {remark}", file=sys.stderr)
    if not outcome.isolated:
        print(
            f"dodo code mode: the kernel runs without filesystem isolation: {outcome.reason}",
            file=sys.stderr,
        )
        if required:
            raise SystemExit(
                "dodo code mode: not starting the kernel: DodoApp.code_mode_filesystem_isolation"
                " is 'required'"
            )
    return report


def main(argv: list[str] | None = None) -> None:
    options, rest = split_options(list(sys.argv[1:] if argv is None else argv))
    if options.isolation != "off":
        isolate(
            options.hide,
            read_only=options.read_only,
            required=options.isolation == "required",
            connection_file=_connection_file(rest),
        )
    apply_memory_limit(options.memory_mb)
    # As ipykernel_launcher does: the working directory leaves sys.path while ipykernel
    # loads (IPython puts it back for the user's code).
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=rest)


if __name__ == "__main__":
    main()
