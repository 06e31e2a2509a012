"""Giving up Linux capabilities (:func:`drop_capabilities`): what the code-mode kernel
launcher does after Landlock when the server runs as root.

A Landlock domain keeps its processes from tracing processes outside it, but root's
``CAP_PERFMON`` (or ``CAP_SYS_ADMIN``) still lets it read another process's
``/proc/<pid>/environ``, and root's other capabilities reach past files and processes in
many ways (loading kernel modules, raw I/O, other users' files). So a kernel started by
root gives them all up: effective, permitted, inheritable and ambient, and the bounding
set where it may. With ``no_new_privs`` (set by :mod:`.landlock`) a program it runs does
not get them back, not even a set-user-ID one.

Light on purpose (the standard library only): the launcher runs it before ipykernel.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

__all__ = ["drop_capabilities", "has_capabilities"]

_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    return 0


def has_capabilities() -> bool:
    """Whether this process holds any capability (it runs as root, usually)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return _status("CapPrm") != 0 or _status("CapAmb") != 0
    except OSError:
        return os.geteuid() == 0


def drop_capabilities() -> str:
    """Give up every capability (see the module docstring); what went wrong, or ''."""
    if not has_capabilities():
        return ""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        last = int(open("/proc/sys/kernel/cap_last_cap", encoding="ascii").read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):  # needs CAP_SETPCAP: best effort, no_new_privs suffices
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        code = ctypes.get_errno() or errno.EPERM
        return f"capset: {os.strerror(code)}"
    return ""
