"""Hiding paths from this process and its children with Linux Landlock (:func:`hide`):
what the code-mode kernel launcher does before ipykernel starts.

**How.** Landlock only allows: a process restricts itself to a ruleset that *handles*
some filesystem rights, and may then use a handled right only beneath a path a rule
grants it on. To take everything away from a few paths and nothing from the rest, the
ruleset handles every right the kernel's Landlock ABI knows except ``EXECUTE`` (reading
and writing files, listing directories, making and removing entries, renaming across
directories, truncating, device ioctls), and grants:

- ``READ_DIR`` beneath ``/``: every directory stays listable (names only);
- every right beneath each entry of an *ancestor* of a hidden path (``/``, ``/home``,
  ``/home/u``, ... up to the hidden path's parent) except the entries on the way to a
  hidden path, and the hidden paths themselves. A directory gets every right, any other
  file the file rights; a symbolic link gets none (what it points to has its own).

A right granted on a directory holds for everything beneath it, so the ancestors
themselves get nothing but ``READ_DIR``: no new entries directly in them (making a file
in the home directory would allow it in ``~/.local/share/jupyter/runtime`` too), no
removing or renaming their entries, and entries made there by others after the kernel
started are out of its reach. Rules hold on what the paths name when the kernel starts
(inodes, not names). Another name for a hidden file (a hard link, a bind mount) is not
hidden.

**Also.** Any Landlock domain keeps its processes from tracing processes outside it, so
the kernel cannot read ``/proc/<pid>/environ``, ``mem`` or ``fd`` of the Jupyter server
or of other kernels. From ABI 6 the domain is also *scoped*: no signals to processes
outside it, no connecting to abstract UNIX sockets made outside it (D-Bus, X11).
Sockets with a path, such as the kernel's own IPC sockets, are files like any other.

**Where not.** On other systems, Linux before 5.13, a kernel without Landlock enabled,
or a container whose seccomp filter refuses the system calls, :func:`hide` does nothing
and says why; so it does when more than :data:`MAX_RULES` rules would be needed.

Light on purpose (the standard library only): the launcher runs it before ipykernel.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["MAX_RULES", "Outcome", "Unavailable", "abi_version", "hide"]

#: The most rules :func:`hide` makes; past it the process is left as it was.
MAX_RULES = 4096

#: landlock_create_ruleset, landlock_add_rule, landlock_restrict_self: the generic
#: numbers, which x86_64 shares.
_SYSCALLS = {machine: (444, 445, 446) for machine in ("x86_64", "amd64", "aarch64", "arm64")}
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_READ_FILE = 1 << 2
_WRITE_FILE = 1 << 1
_READ_DIR = 1 << 3
#: ABI 1's rights on directories besides READ_DIR: REMOVE_DIR, REMOVE_FILE and MAKE_*.
_MAKE_AND_REMOVE = sum(1 << bit for bit in range(4, 13))
_REFER = 1 << 13  # ABI 2
_TRUNCATE = 1 << 14  # ABI 3
_IOCTL_DEV = 1 << 15  # ABI 5
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1  # ABI 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class Unavailable(Exception):
    """Landlock cannot be used here; the message says why."""


class _TooMany(Exception):
    pass


@dataclass
class Outcome:
    """What :func:`hide` did."""

    #: Whether the process is now restricted.
    isolated: bool
    #: Why not (empty when it is).
    reason: str = ""
    abi: int = 0
    #: The paths hidden (resolved).
    hidden: list[str] = field(default_factory=list)
    #: What did not go as asked, each with why: a path not hidden, an entry out of reach.
    remarks: list[str] = field(default_factory=list)
    rules: int = 0


def _file_rights(abi: int) -> int:
    rights = _READ_FILE | _WRITE_FILE
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def _all_rights(abi: int) -> int:
    return _file_rights(abi) | _READ_DIR | _MAKE_AND_REMOVE | (_REFER if abi >= 2 else 0)


def _libc() -> tuple[ctypes.CDLL, tuple[int, int, int]]:
    if not sys.platform.startswith("linux"):
        raise Unavailable(f"Landlock exists on Linux only, not on {sys.platform}")
    machine = platform.machine().lower()
    if machine not in _SYSCALLS:
        raise Unavailable(f"dodo does not know Landlock's system calls on {machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc, _SYSCALLS[machine]


def _why(call: str, code: int) -> str:
    if code == errno.ENOSYS:
        return (
            f"{call}: the Linux kernel has no Landlock (it needs Linux 5.13 or later built "
            "with CONFIG_SECURITY_LANDLOCK), or a seccomp filter hides it"
        )
    if code == errno.EOPNOTSUPP:
        return (
            f"{call}: Landlock is built into the Linux kernel but not enabled: add "
            "'landlock' to the lsm= boot parameter"
        )
    if code == errno.EPERM:
        return f"{call}: refused (a container's seccomp filter?)"
    return f"{call}: {os.strerror(code)}"


def abi_version() -> int:
    """The Landlock ABI of the running Linux kernel.

    Raises
    ------
    Unavailable
        saying why there is none.
    """
    libc, (create, _, _) = _libc()
    abi = libc.syscall(create, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    if abi < 0:
        raise Unavailable(_why("landlock_create_ruleset", ctypes.get_errno()))
    return int(abi)


class _Ruleset:
    def __init__(self, abi: int, max_rules: int) -> None:
        self.libc, (create, self._add, self._restrict) = _libc()
        attr = _RulesetAttr(_all_rights(abi), 0, 0)
        if abi >= 6:
            attr.scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
        fd = self.libc.syscall(
            create, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0)
        )
        if fd < 0:
            raise Unavailable(_why("landlock_create_ruleset", ctypes.get_errno()))
        self.fd = int(fd)
        self.rules = 0
        self.max_rules = max_rules

    def allow(self, fd: int, rights: int) -> None:
        if self.rules >= self.max_rules:
            raise _TooMany
        rule = _PathBeneathAttr(rights, fd)
        done = self.libc.syscall(
            self._add,
            ctypes.c_int(self.fd),
            ctypes.c_int(_RULE_PATH_BENEATH),
            ctypes.byref(rule),
            ctypes.c_uint32(0),
        )
        if done < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        self.rules += 1

    def restrict(self) -> None:
        if self.libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise Unavailable(_why("prctl(PR_SET_NO_NEW_PRIVS)", ctypes.get_errno()))
        if self.libc.syscall(self._restrict, ctypes.c_int(self.fd), ctypes.c_uint32(0)) < 0:
            raise Unavailable(_why("landlock_restrict_self", ctypes.get_errno()))

    def close(self) -> None:
        os.close(self.fd)


#: A tree of path components: a directory on the way to hidden paths maps names to
#: subtrees; None marks a hidden path.
_Tree = dict[str, "_Tree | None"]


def _tree(paths: Iterable[str]) -> _Tree:
    root: _Tree = {}
    for path in sorted(paths, key=len):  # shorter first: a hidden folder covers its insides
        node = root
        *parents, last = path.strip("/").split("/")
        for part in parents:
            child = node.setdefault(part, {})
            if child is None:
                break
            node = child
        else:
            node[last] = None
    return root


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _names(dir_fd: int) -> list[str]:
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _grant_around(
    ruleset: _Ruleset, dir_fd: int, where: str, tree: _Tree, abi: int, notes: list[str]
) -> None:
    """Grant every right beneath each entry of the directory ``dir_fd`` (at ``where``)
    that is not in ``tree``, and go down the entries that are."""
    try:
        names = set(_names(dir_fd))
    except OSError as e:
        notes.append(
            f"{where}: not listable ({e.strerror}): of its entries only the way to the "
            "hidden paths is within reach"
        )
        names = set()
    for name in sorted(names | set(tree)):
        below = tree.get(name, {})
        path = os.path.join(where, name)
        if name in tree:
            if below is None:
                continue  # hidden
            try:
                fd = os.open(
                    name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd
                )
            except OSError:
                continue  # missing, or no folder: nothing below it to hide
            try:
                _grant_around(ruleset, fd, path, below, abi, notes)
            finally:
                os.close(fd)
            continue
        try:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError:
            continue  # gone meanwhile
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISLNK(mode):
                rights = _all_rights(abi) if stat.S_ISDIR(mode) else _file_rights(abi)
                ruleset.allow(fd, rights)
        except _TooMany:
            raise _TooMany(where) from None
        except OSError as e:
            notes.append(f"{path}: out of reach (no rule: {e.strerror})")
        finally:
            os.close(fd)


def hide(
    paths: Iterable[str], keep: Mapping[str, str] | None = None, max_rules: int = MAX_RULES
) -> Outcome:
    """Restrict this process (and what it starts) so that ``paths`` cannot be read,
    written or listed inside, leaving the rest of the filesystem as it was (see the
    module docstring); never raises. ``keep`` maps paths the process needs to what they
    are: a path to hide that holds one of them is left alone, saying so in
    :attr:`Outcome.remarks`."""
    outcome = Outcome(False)
    kept = {os.path.realpath(path): what for path, what in (keep or {}).items()}
    for path in dict.fromkeys(os.path.realpath(p) for p in paths):
        needed = [what for held, what in kept.items() if _within(held, path)]
        if path == "/":
            outcome.remarks.append("/: not hidden: hiding it would hide everything")
        elif needed:
            outcome.remarks.append(f"{path}: not hidden: it holds {needed[0]}")
        else:
            outcome.hidden.append(path)
    try:
        outcome.abi = abi_version()
        ruleset = _Ruleset(outcome.abi, max_rules)
    except Unavailable as e:
        outcome.reason = str(e)
        return outcome
    try:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY)
        try:
            if outcome.hidden:
                ruleset.allow(root, _READ_DIR)
                _grant_around(
                    ruleset, root, "/", _tree(outcome.hidden), outcome.abi, outcome.remarks
                )
            else:
                ruleset.allow(root, _all_rights(outcome.abi))
        finally:
            os.close(root)
        ruleset.restrict()
    except _TooMany as e:
        outcome.reason = (
            f"more than {max_rules} entries lie beside the way to the paths to hide "
            f"(in {e.args[0] if e.args else '?'}): hide paths in a folder with fewer "
            "neighbours"
        )
    except Unavailable as e:
        outcome.reason = str(e)
    except OSError as e:
        outcome.reason = f"a Landlock rule could not be made: {e}"
    else:
        outcome.isolated = True
    finally:
        outcome.rules = ruleset.rules
        ruleset.close()
    return outcome
