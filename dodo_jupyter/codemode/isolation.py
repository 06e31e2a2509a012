"""What code-mode kernels are kept from (:func:`hidden_paths`), what they may read but
not write (:func:`read_only_paths`), and what their launcher says it did
(:func:`read_report`, :class:`IsolationReport`).

**Hidden** from every code-mode kernel (``DodoApp.code_mode_filesystem_isolation``, on
by default where Linux has Landlock; :mod:`.launch` does it):

- dodo's SQLite database and its ``-wal``, ``-shm`` and ``-journal`` files, and the key
  file: together they are every stored secret. When they are in dodo's own data folder
  (``<jupyter data dir>/dodo``, where they are by default), that whole folder.
- the Jupyter runtime directory: the server's ``jpserver-<pid>.json`` (its token),
  ``dodo-<pid>.json``, and the connection files (HMAC keys) of the user's own kernels.
  The agent kernels' connection files are elsewhere, in a private temporary folder.
- whatever the admin adds (``DodoApp.code_mode_hidden_paths``).

**Read-only** (readable and listable; nothing beneath written, made, removed or
renamed), being what runs later with more privilege than the kernel's:

- the Jupyter config directories (``jupyter_config_path()``, those missing too: then
  they cannot be made): a ``jupyter_server_config.py`` there runs in the server;
- the server's Python: ``sys.prefix``, ``sys.base_prefix`` (may be ``/usr``: harmless
  to read only), the site-packages and dist-packages folders on its ``sys.path``, and the
  user's site-packages (``site.getusersitepackages()``): a ``.pth`` file there runs in
  every Python started;
- the user's IPython directory (``~/.ipython``): its ``profile_*/startup`` files run in
  the user's own kernels. Agent kernels get an IPython directory of their own;
- whatever the admin adds (``DodoApp.code_mode_read_only_paths``).

A path that holds the server's ``root_dir`` or the notebook folder is not made
read-only, nor is one inside the temporary folder, such as ``/tmp``
(:func:`in_temporary_folder`: restricting it would leave the kernel no new files
there); the kernel's launcher keeps its working directory and connection file's
folder writable inside a read-only path.

The notebook folder, the kernel's working directory, ``/tmp``, ``/proc`` and ``/dev``
stay as they were.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .landlock import within
from .launch import report_path

__all__ = [
    "ROOT_WARNING",
    "IsolationReport",
    "hidden_paths",
    "in_temporary_folder",
    "not_isolated_note",
    "read_only_paths",
    "read_report",
    "refusal",
    "sqlite_file",
]

_SQLITE_SIBLINGS = ("-wal", "-shm", "-journal")


def sqlite_file(db_url: str) -> Path | None:
    """The file of a SQLite database URL (absolute); None for another database or one in
    memory."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    database = url.database or ""
    if not url.drivername.startswith("sqlite") or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):  # a URI filename: file:path?options
        database = database[len("file:") :].split("?", 1)[0]
    return Path(os.path.abspath(database))


def hidden_paths(
    *,
    db_url: str,
    key_file: Path | str | None,
    runtime_dirs: Iterable[Path | str],
    extra: Iterable[str] = (),
    data_dir: Path | str | None = None,
) -> list[str]:
    """The absolute paths to hide from code-mode kernels (see the module docstring);
    ``data_dir`` is dodo's own data folder (default: ``<jupyter data dir>/dodo``)."""
    if data_dir is None:
        from jupyter_core.paths import jupyter_data_dir

        data_dir = Path(jupyter_data_dir()) / "dodo"
    own = os.path.abspath(data_dir)
    found: list[str] = []
    database = sqlite_file(db_url)
    secrets = [] if database is None else [str(database) + s for s in ("", *_SQLITE_SIBLINGS)]
    if key_file:
        secrets.append(os.path.abspath(key_file))
    for path in secrets:
        found.append(own if os.path.dirname(path) == own else path)
    found.extend(os.path.abspath(d) for d in runtime_dirs)
    found.extend(os.path.abspath(os.path.expanduser(p)) for p in extra)
    return list(dict.fromkeys(found))


def _python_paths() -> list[str]:
    """The server's Python environment, as far as writing there changes what runs."""
    import site
    import sys

    found = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    found.append(site.getusersitepackages())
    found.extend(
        entry
        for entry in sys.path
        if os.path.basename(entry.rstrip(os.sep)) in ("site-packages", "dist-packages")
    )
    return found


def read_only_paths(
    *, keep: Mapping[str, str], extra: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """The absolute paths to make read-only to code-mode kernels (see the module
    docstring), and a remark on each candidate left out because it holds one of
    ``keep`` (paths kernels write, such as the server's ``root_dir``, to what each is)."""
    from IPython.paths import get_ipython_dir
    from jupyter_core.paths import jupyter_config_path

    candidates = [*jupyter_config_path(), *_python_paths(), get_ipython_dir()]
    candidates.extend(os.path.expanduser(p) for p in extra)
    kept = {os.path.realpath(path): what for path, what in keep.items()}
    found: list[str] = []
    left: list[str] = []
    for path in dict.fromkeys(os.path.abspath(p) for p in candidates if p):
        held = [what for k, what in kept.items() if within(k, os.path.realpath(path))]
        temporary = in_temporary_folder(path)
        if held:
            left.append(f"{path}: not read-only to code-mode kernels: it holds {held[0]}")
        elif temporary is not None:
            left.append(
                f"{path}: not read-only to code-mode kernels: it lies in the temporary "
                f"folder {temporary}, where kernels could then make no new file (install "
                "the server's Python elsewhere to protect it)"
            )
        else:
            found.append(path)
    return found, left


def in_temporary_folder(path: str) -> str | None:
    """The temporary folder (``tempfile.gettempdir()``, usually ``/tmp``) when ``path``
    lies inside it, else None. A path restricted with Landlock leaves the folders above
    it no room for new entries (:mod:`.landlock`), and kernels make their temporary
    files there."""
    import tempfile

    folder = os.path.realpath(tempfile.gettempdir())
    real = os.path.realpath(path)
    return folder if real != folder and within(real, folder) else None


@dataclass
class IsolationReport:
    """What a kernel's launcher did (see :func:`~.launch.isolate`)."""

    isolated: bool
    reason: str = ""
    hidden: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    as_root: bool = False
    read_only: list[str] = field(default_factory=list)


def read_report(connection_file: str) -> IsolationReport | None:
    """The report of the launcher of the kernel with ``connection_file``; None when
    there is none (or it cannot be read)."""
    try:
        data = json.loads(report_path(connection_file).read_text(encoding="utf-8"))
        return IsolationReport(
            bool(data["isolated"]),
            str(data.get("reason") or ""),
            [str(p) for p in data.get("hidden", [])],
            [str(p) for p in data.get("remarks", [])],
            bool(data.get("as_root")),
            [str(p) for p in data.get("read_only", [])],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def not_isolated_note(reason: str) -> str:
    """What the agent is told (once) about a kernel that could not be isolated."""
    return (
        "This kernel runs without filesystem isolation: dodo could not hide its store and "
        f"the Jupyter runtime directory from it ({reason})."
    )


def refusal(reason: str) -> str:
    """Why a kernel is not started with ``'required'`` isolation."""
    return (
        "The code-mode kernel was not started: it could not be isolated from the server's "
        f"files ({reason}), and DodoApp.code_mode_filesystem_isolation is 'required'. Ask "
        "the server's admin to run Jupyter where Linux has Landlock (5.13 or later), or to "
        "set it to 'best_effort'."
    )


#: The server log's warning when the server (so each kernel's launcher) runs as root.
ROOT_WARNING = (
    "dodo code mode: the Jupyter server runs as root: code-mode kernels give up root's "
    "capabilities, but the files root owns stay within their reach (the disks' device "
    "files, kernel settings under /proc/sys and /sys): run Jupyter as an ordinary user for "
    "the isolation to hold."
)
