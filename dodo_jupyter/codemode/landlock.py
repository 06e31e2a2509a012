"""Hiding paths from this process and its children, and making others read-only, with
Linux Landlock (:func:`hide`): what the code-mode kernel launcher does before ipykernel
starts.

**How.** Landlock only allows: a process restricts itself to a ruleset that *handles*
some filesystem rights, and may then use a handled right only beneath a path a rule
grants it on. To take everything away from a few paths, the writing rights from a few
others and nothing from the rest, the ruleset handles every right the kernel's Landlock
ABI knows except ``EXECUTE`` (reading and writing files, listing directories, making
and removing entries, renaming across directories, truncating, device ioctls), and
grants:

- ``READ_DIR`` beneath ``/``: every directory stays listable (names only);
- every right beneath each entry of an *ancestor* of a hidden or read-only path (``/``,
  ``/home``, ``/home/u``, ... up to the path's parent) except the entries on the way to
  such a path, and those paths themselves. A directory gets every right, any other file
  the file rights; a symbolic link gets none (what it points to has its own).
- beneath a read-only path, ``READ_FILE`` and ``READ_DIR`` (a file: ``READ_FILE``).
  When a hidden path lies inside it, or one the process needs to write (``keep``), the
  read-only path is not granted whole: the walk goes down the way to that path as it
  does from ``/``, granting the read-only rights to the entries beside the way (and
  every right to the path kept writable).

A right granted on a directory holds for everything beneath it, so the ancestors
themselves get nothing but ``READ_DIR``: no new entries directly in them (making a file
in the home directory would allow it in ``~/.local/share/jupyter/runtime`` too), no
removing or renaming their entries, and entries made there by others after the kernel
started are out of its reach. So a read-only or hidden path that does not exist cannot
be made either. Rules hold on what the paths name when the kernel starts (inodes, not
names). Another name for a hidden or read-only file (a hard link, a bind mount) is not
covered.

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

__all__ = ["MAX_RULES", "Outcome", "Unavailable", "abi_version", "hide", "within"]

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
    #: The paths made read-only (resolved), but for what they hold that is kept writable.
    read_only: list[str] = field(default_factory=list)
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


#: What a leaf of a :data:`_Tree` is: a path hidden, read-only, or writable (a path the
#: process needs to write, inside a read-only one).
_HIDDEN, _READ_ONLY, _WRITABLE = "hidden", "read-only", "writable"


class _Tree(dict[str, "_Tree | str"]):
    """A directory on the way to the paths :func:`hide` restricts: its entries on the way,
    each a subtree or a leaf (:data:`_HIDDEN`, :data:`_READ_ONLY`, :data:`_WRITABLE`).
    ``read_only``: it lies in a read-only path, so its other entries are read-only too."""

    def __init__(self, read_only: bool = False) -> None:
        super().__init__()
        self.read_only = read_only


def _tree(paths: Mapping[str, str]) -> _Tree:
    """The tree of ``paths`` (each to its kind of leaf). A path inside a hidden one is
    hidden; inside a read-only one a read-only path is covered, a hidden or writable one
    cuts the read-only leaf open into a subtree whose other entries are read-only."""
    root = _Tree()
    for path in sorted(paths, key=len):  # shorter first: the outer path decides
        kind = paths[path]
        node = root
        *parents, last = path.strip("/").split("/")
        for part in parents:
            child = node.get(part)
            if child in (_HIDDEN, kind):
                break  # covered
            if child is None:
                child = node[part] = _Tree(node.read_only)
            elif not isinstance(child, _Tree):  # a leaf to cut open
                child = node[part] = _Tree(child == _READ_ONLY)
            node = child
        else:
            node[last] = kind
    return root


def within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies beneath it (both absolute, as written)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _names(dir_fd: int) -> list[str]:
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _rights(kind: str, mode: int, abi: int) -> int:
    """The rights granted beneath an entry of ``mode`` that is ``kind``: read-only, or
    anything else within reach (every right). None on a symbolic link: what it points to
    has its own."""
    if stat.S_ISLNK(mode):
        return 0
    if kind == _READ_ONLY:
        return _READ_FILE | _READ_DIR if stat.S_ISDIR(mode) else _READ_FILE
    return _all_rights(abi) if stat.S_ISDIR(mode) else _file_rights(abi)


def _grant_around(
    ruleset: _Ruleset, dir_fd: int, where: str, tree: _Tree, abi: int, notes: list[str]
) -> None:
    """Grant rights beneath each entry of the directory ``dir_fd`` (at ``where``): to an
    entry not in ``tree`` every right (read-only ones when ``tree`` lies in a read-only
    path), to a leaf what it is, and go down the subtrees."""
    try:
        names = set(_names(dir_fd))
    except OSError as e:
        notes.append(
            f"{where}: not listable ({e.strerror}): of its entries only the way to the "
            "hidden and read-only paths is within reach"
        )
        names = set()
    beside = _READ_ONLY if tree.read_only else _WRITABLE
    for name in sorted(names | set(tree)):
        below = tree.get(name, beside)
        path = os.path.join(where, name)
        if below == _HIDDEN:
            continue
        flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(
                name, flags | (os.O_DIRECTORY if isinstance(below, _Tree) else 0), dir_fd=dir_fd
            )
        except OSError:
            continue  # missing (or gone meanwhile), or no folder: nothing below it
        try:
            if isinstance(below, _Tree):
                _grant_around(ruleset, fd, path, below, abi, notes)
            elif rights := _rights(below, os.fstat(fd).st_mode, abi):
                ruleset.allow(fd, rights)
        except _TooMany as e:
            raise _TooMany(e.args[0] if e.args else where) from None
        except OSError as e:
            notes.append(f"{path}: out of reach (no rule: {e.strerror})")
        finally:
            os.close(fd)


def _sorted_out(
    outcome: Outcome,
    paths: Iterable[str],
    read_only: Iterable[str],
    keep: Mapping[str, str],
    readable: Mapping[str, str],
) -> dict[str, str]:
    """Fill ``outcome``'s hidden and read-only paths and remarks; the paths (resolved)
    to the kind of leaf each is in the tree (:func:`_tree`)."""
    needed = {**readable, **keep}
    for path in dict.fromkeys(paths):
        held = [what for kept, what in needed.items() if within(kept, path)]
        if path == "/":
            outcome.remarks.append("/: not hidden: hiding it would hide everything")
        elif held:
            outcome.remarks.append(f"{path}: not hidden: it holds {held[0]}")
        else:
            outcome.hidden.append(path)
    for path in dict.fromkeys(read_only):
        if any(within(path, hidden) for hidden in outcome.hidden):
            continue  # simply hidden
        if path == "/":
            outcome.remarks.append(
                "/: not read-only: it would make everything read-only (name the folders "
                "to protect instead)"
            )
        elif path in keep:
            outcome.remarks.append(f"{path}: not read-only: it is {keep[path]}")
        else:
            outcome.read_only.append(path)
            outcome.remarks.extend(
                f"{path}: read-only but for {kept}, {what}, which stays writable"
                for kept, what in keep.items()
                if within(kept, path)
            )
    # Only inside a read-only path: elsewhere, what the process writes is as it was.
    leaves = {p: _WRITABLE for p in keep if any(within(p, r) for r in outcome.read_only)}
    leaves.update({path: _READ_ONLY for path in outcome.read_only})
    leaves.update({path: _HIDDEN for path in outcome.hidden})
    for kept, what in keep.items():
        inside = [p for p in (*outcome.hidden, *outcome.read_only) if within(p, kept)]
        if inside:
            outcome.remarks.append(
                f"{kept} ({what}): nothing new can be made directly in it: it is on the "
                f"way to {inside[0]}"
            )
    return leaves


def hide(
    paths: Iterable[str],
    keep: Mapping[str, str] | None = None,
    *,
    read_only: Iterable[str] = (),
    readable: Mapping[str, str] | None = None,
    max_rules: int = MAX_RULES,
) -> Outcome:
    """Restrict this process (and what it starts) so that ``paths`` cannot be read,
    written or listed inside and ``read_only`` paths can be read and listed but nothing
    beneath them written, made, removed, renamed or truncated, leaving the rest of the
    filesystem as it was (see the module docstring); never raises.

    ``keep`` maps paths the process needs to write to what they are: a path to hide that
    holds one is left alone, a read-only path that holds one is read-only but for it.
    ``readable`` does the same for paths it needs to read only (its Python): a path to
    hide that holds one is left alone, a read-only one stays read-only. Each is said in
    :attr:`Outcome.remarks`."""
    outcome = Outcome(False)
    leaves = _sorted_out(
        outcome,
        (os.path.realpath(p) for p in paths),
        (os.path.realpath(p) for p in read_only),
        {os.path.realpath(p): what for p, what in (keep or {}).items()},
        {os.path.realpath(p): what for p, what in (readable or {}).items()},
    )
    try:
        outcome.abi = abi_version()
        ruleset = _Ruleset(outcome.abi, max_rules)
    except Unavailable as e:
        outcome.reason = str(e)
        return outcome
    try:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY)
        try:
            if outcome.hidden or outcome.read_only:
                ruleset.allow(root, _READ_DIR)
                _grant_around(ruleset, root, "/", _tree(leaves), outcome.abi, outcome.remarks)
            else:
                ruleset.allow(root, _all_rights(outcome.abi))
        finally:
            os.close(root)
        ruleset.restrict()
    except _TooMany as e:
        outcome.reason = (
            f"more than {max_rules} entries lie beside the way to the paths to hide "
            f"or make read-only (in {e.args[0] if e.args else '?'}): name paths in a "
            "folder with fewer neighbours"
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
