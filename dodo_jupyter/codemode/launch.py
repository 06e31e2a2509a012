"""The launcher of code-mode kernels: ``python -m dodo_jupyter.codemode.launch
[--memory-mb N] -f <connection file>``.

It limits the process's address space to ``N`` MiB (``RLIMIT_AS``, where the operating
system has it: Linux enforces it; macOS accepts it without much effect; Windows has no
``resource`` module and gets no limit), then runs ipykernel as ``ipykernel_launcher``
would, with every other argument. Past the limit an allocation fails: the code gets a
``MemoryError`` and the kernel goes on. 0 (or no option) sets no limit.

The limit is on virtual memory, which is more than what a process really uses (each
thread reserves its stack, allocators reserve arenas): an idle ipykernel reserves about
0.9 GiB. Libraries that reserve much address space up front (CUDA, JAX) need the limit
off (``DodoApp.code_mode_memory_limit_mb = 0``).

Light on purpose: it imports nothing of dodo's but this module, before ipykernel.
"""

from __future__ import annotations

import os
import sys

__all__ = ["MEMORY_OPTION", "apply_memory_limit", "main", "split_memory_option"]

#: The option that sets the limit, in MiB.
MEMORY_OPTION = "--memory-mb"


def split_memory_option(argv: list[str]) -> tuple[int, list[str]]:
    """The limit in MiB (0: none) and the arguments left for ipykernel.

    Raises
    ------
    SystemExit
        when the option has no whole number after it.
    """
    rest: list[str] = []
    limit = 0
    args = iter(argv)
    for arg in args:
        if arg == MEMORY_OPTION or arg.startswith(MEMORY_OPTION + "="):
            value = arg.partition("=")[2] if "=" in arg else next(args, "")
            if not value.isdigit():
                raise SystemExit(f"{MEMORY_OPTION} needs a whole number of MiB, not {value!r}")
            limit = int(value)
        else:
            rest.append(arg)
    return limit, rest


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


def main(argv: list[str] | None = None) -> None:
    limit, rest = split_memory_option(list(sys.argv[1:] if argv is None else argv))
    apply_memory_limit(limit)
    # As ipykernel_launcher does: the working directory leaves sys.path while ipykernel
    # loads (IPython puts it back for the user's code).
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=rest)


if __name__ == "__main__":
    main()
