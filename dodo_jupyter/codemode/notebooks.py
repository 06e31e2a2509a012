"""Every run becomes a notebook (:class:`RunNotebooks`): one per agent session, a code
cell per run with its outputs, under ``DodoApp.code_mode_notebook_dir`` of the Jupyter
server's root.

A session's notebook is ``<folder>/<YYYY-MM-DD>-<agent>-<6 hex>.ipynb`` (nbformat v4):
the date the session's first run started (server's local time), the agent's name as a
file-name-safe word (its MCP client's name, else its token's label), a random id (not
the MCP session's, which is a credential of sorts). Its metadata says who ran it and
when, under ``metadata.dodo.code_mode``::

    {"agent": {"client": "claude-code 1.0", "token_label": "laptop", "token_id": "…",
               "chat_id": null, "persona_id": null},
     "started_at": "2026-05-01T10:00:00+02:00", "runs": 3,
     "last_run_at": "2026-05-01T10:04:00+02:00"}

and its kernel is the ordinary ``python3``, so the user can open it in JupyterLab, run it
again (``from dodo_jupyter import tools`` works in their kernels too) or carry on by
hand. Each run's cell has ``metadata.dodo`` with ``ran_at``, ``seconds`` and ``status``
(``ok``, ``error``, ``timeout``, ``died``); a note of what happened to the kernel (a
timeout, output that was cut) is the cell's last output, and a new kernel for the same
session is announced by a Markdown cell.

Files are read and written on a thread, never on the event loop, one write at a time per
notebook, after the run's answer has left (the agent does not wait for the file; a failed
write is told with the session's next answer); each write replaces the file whole (a
temporary file renamed over it). What dodo last wrote to a notebook is kept in memory
(:class:`.notebook_file.NotebookText`: its cells already serialized) with the file's
identity then (modification time, size, inode): while the file still has it, a run is
added without reading the file again or serializing the cells before it, so a run costs
what its own cell does, not the notebook's length. A file changed since (the user saved
it, added cells, deleted or replaced it) is read first, so cells the user added stay.
The last writes of the :data:`CACHED_NOTEBOOKS` most recently written notebooks are kept,
within :data:`CACHED_CHARS` characters together; another notebook is read again at its
next run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4.nbbase import random_cell_id

from .execution import Execution, output_of
from .notebook_file import NotebookText

log = logging.getLogger(__name__)

__all__ = ["MAX_LISTED", "RunNotebooks", "agent_slug", "now_local"]

#: The most notebooks :meth:`RunNotebooks.listing` returns (the newest).
MAX_LISTED = 200
_KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
_SLUG = re.compile(r"[^a-z0-9]+")
#: What a notebook records of the agent (labels from its Caller's Attribution).
AGENT_KEYS = ("client", "token_label", "token_id", "chat_id", "persona_id")
#: How many notebooks' last writes :class:`RunNotebooks` keeps (the most recently
#: written), and how many characters of cells they may take together.
CACHED_NOTEBOOKS = 64
CACHED_CHARS = 64_000_000


def now_local() -> datetime:
    """Now, in the server's time zone."""
    return datetime.now().astimezone()


def agent_slug(agent: dict[str, Any]) -> str:
    """A file-name-safe word for the agent: its client's name, else its token's label."""
    for raw in (agent.get("client"), agent.get("token_label")):
        if isinstance(raw, str):
            words = raw.split()
            if len(words) > 1 and words[-1][:1].isdigit():  # "claude-code 1.0": no version
                words = words[:-1]
            name = " ".join(words)
            slug = _SLUG.sub("-", name.lower()).strip("-")[:32].strip("-")
            if slug:
                return slug
    return "agent"


#: A file's identity: its modification time (ns), size and inode.
FileIdentity = tuple[int, int, int]


def _identity(status: os.stat_result) -> FileIdentity:
    return (status.st_mtime_ns, status.st_size, status.st_ino)


@dataclass
class _Written:
    """What dodo last wrote to a notebook, and the file's identity then."""

    notebook: NotebookText
    identity: FileIdentity


class RunNotebooks:
    """The runs' notebooks below ``root_dir/folder`` (see the module docstring)."""

    def __init__(self, root_dir: Path, folder: str) -> None:
        self.root_dir = root_dir
        self.folder = folder
        self._locks: dict[str, asyncio.Lock] = {}
        #: Writes under way (:meth:`append_later`), and why the last one of a path failed.
        self._writing: set[asyncio.Task[None]] = set()
        self._failed: dict[str, str] = {}
        #: The last writes kept (least recently written first); written by the threads.
        self._written: OrderedDict[str, _Written] = OrderedDict()
        self._written_lock = threading.Lock()

    @property
    def directory(self) -> Path:
        """Where the notebooks are (and code-mode kernels run)."""
        return self.root_dir / self.folder

    def new_path(self, agent: dict[str, Any], started: datetime) -> str:
        """The path (relative to the root, ``/``-separated) of a new session's notebook."""
        name = f"{started:%Y-%m-%d}-{agent_slug(agent)}-{secrets.token_hex(3)}.ipynb"
        return f"{self.folder}/{name}"

    async def append(
        self,
        path: str,
        execution: Execution,
        code: str,
        *,
        agent: dict[str, Any],
        started: datetime,
        new_kernel: str | None = None,
    ) -> None:
        """Add the run's cell (after a Markdown cell announcing ``new_kernel``, the reason
        a new kernel runs the session) to ``path``, creating it for ``agent`` when
        missing."""
        ran_at = now_local()
        cells = []
        if new_kernel:
            cells.append(
                nbformat.v4.new_markdown_cell(
                    f"*New kernel: the session's previous one stopped because {new_kernel}. "
                    "The cells above ran in that one.*"
                )
            )
        cells.append(_code_cell(code, execution, ran_at))
        lock = self._locks.setdefault(path, asyncio.Lock())
        async with lock:
            await asyncio.to_thread(self._write, path, cells, agent, started, ran_at)

    def _write(
        self,
        path: str,
        cells: list[NotebookNode],
        agent: dict[str, Any],
        started: datetime,
        ran_at: datetime,
    ) -> None:
        file = self.root_dir / path
        file.parent.mkdir(parents=True, exist_ok=True)
        notebook = self._take_written(path, file)
        if notebook is None:
            notebook = NotebookText(_read(file) or _new_notebook(agent, started))
        notebook.extend(cells)
        record = notebook.metadata.setdefault("dodo", {}).setdefault("code_mode", {})
        record["runs"] = int(record.get("runs") or 0) + 1
        record["last_run_at"] = ran_at.isoformat(timespec="seconds")
        temporary = file.with_name(f".~{file.name}.tmp")
        # What nbformat.v4.writes makes of it (nbformat.writes would also check the whole
        # notebook against the schema at every run).
        temporary.write_text(notebook.text(), encoding="utf-8")
        identity = _identity(temporary.stat())  # a rename keeps it
        os.replace(temporary, file)
        self._keep_written(path, _Written(notebook, identity))

    def _take_written(self, path: str, file: Path) -> NotebookText | None:
        """What dodo last wrote to ``path`` when ``file`` is still as dodo left it, else
        None; either way it is forgotten until the write under way keeps it again (a
        write that fails midway leaves nothing behind)."""
        with self._written_lock:
            written = self._written.pop(path, None)
        if written is None:
            return None
        try:
            identity = _identity(file.stat())
        except OSError:  # deleted: started again
            return None
        return written.notebook if identity == written.identity else None

    def _keep_written(self, path: str, written: _Written) -> None:
        """Keep ``written`` as ``path``'s last write, forgetting the least recently
        written notebooks beyond :data:`CACHED_NOTEBOOKS` or :data:`CACHED_CHARS`."""
        with self._written_lock:
            self._written[path] = written
            size = sum(kept.notebook.size for kept in self._written.values())
            while len(self._written) > CACHED_NOTEBOOKS or size > CACHED_CHARS:
                _, forgotten = self._written.popitem(last=False)
                size -= forgotten.notebook.size

    def append_later(self, path: str, execution: Execution, code: str, **kw: Any) -> None:
        """:meth:`append` after the run's answer has left (the agent does not wait for
        the file); writes of one path keep their order. A failure is logged and kept
        for :meth:`take_failure`."""

        async def write() -> None:
            try:
                await self.append(path, execution, code, **kw)
            except OSError as e:
                log.warning("dodo code mode: a run was not added to %s: %s", path, e)
                self._failed[path] = (
                    f"An earlier run could not be added to its notebook {path} "
                    f"({e.strerror or e}); tell the user."
                )
            except Exception:  # a version 4 notebook of a broken shape: left as it is
                log.warning("dodo code mode: %s is no notebook a run can be added to", path)
                self._failed[path] = (
                    f"An earlier run could not be added to its notebook {path}: the file "
                    "is not a notebook dodo can add a cell to (a cell or its metadata is "
                    "not what nbformat 4 says). Tell the user; once they fix or move it, "
                    "the next run is added again."
                )

        task = asyncio.get_running_loop().create_task(write())
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    def take_failure(self, path: str) -> str | None:
        """Why the last write of ``path`` failed (once), or None."""
        return self._failed.pop(path, None)

    async def flush(self) -> None:
        """Wait for the writes under way."""
        while self._writing:
            await asyncio.gather(*list(self._writing), return_exceptions=True)

    async def listing(self, limit: int = MAX_LISTED) -> list[dict[str, Any]]:
        """The runs' notebooks, most recently run first: ``{path, agent, started_at,
        runs, last_run_at}`` each (other notebooks in the folder are left out), with
        every run answered so far written."""
        await self.flush()
        return await asyncio.to_thread(self._list, limit)

    def _list(self, limit: int) -> list[dict[str, Any]]:
        try:
            files = [f for f in self.directory.iterdir() if f.suffix == ".ipynb" and f.is_file()]
        except OSError:
            return []
        files.sort(key=lambda f: f.stat().st_mtime, reverse=True)
        found = []
        for file in files[: limit * 2]:
            record = _record_of(file)
            if record is not None:
                found.append({"path": f"{self.folder}/{file.name}", **record})
            if len(found) >= limit:
                break
        found.sort(key=lambda r: r["last_run_at"] or r["started_at"] or "", reverse=True)
        return found


def _code_cell(code: str, execution: Execution, ran_at: datetime) -> NotebookNode:
    outputs = [NotebookNode(dict(o)) for o in execution.outputs.items]
    notes = list(execution.notes)
    if execution.outputs.cut:
        notes.append(
            f"{execution.outputs.cut_bytes:,} bytes of output were cut "
            "(DodoApp.code_mode_max_output_bytes)."
        )
    if notes:
        text = "".join(f"dodo: {note}\n" for note in notes)
        outputs.append(output_of("stream", {"name": "stderr", "text": text}))
    # Built as nbformat.v4.new_code_cell does, without its schema check of every cell.
    return NotebookNode(
        id=random_cell_id(),
        cell_type="code",
        source=code,
        outputs=outputs,
        execution_count=execution.execution_count,
        metadata={
            "dodo": {
                "ran_at": ran_at.isoformat(timespec="seconds"),
                "seconds": round(execution.seconds, 3),
                "status": execution.status,
            }
        },
    )


def _new_notebook(agent: dict[str, Any], started: datetime) -> NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = dict(_KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.metadata["dodo"] = {
        "code_mode": {
            "agent": agent,
            "started_at": started.isoformat(timespec="seconds"),
            "runs": 0,
            "last_run_at": None,
        }
    }
    return notebook


def _read(file: Path) -> NotebookNode | None:
    """The notebook at ``file``; None when there is none (or it is no notebook any more:
    it is then replaced). A version 4 notebook is taken as it is, without nbformat's
    check of it against the schema (which grew with every run); an older one is
    converted."""
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("nbformat") == 4 and isinstance(data.get("cells"), list):
        notebook: NotebookNode = nbformat.from_dict(data)
        return notebook
    try:
        converted: NotebookNode = nbformat.reads(text, as_version=4)
    except Exception:  # nbformat raises assorted errors for what is not a notebook
        return None
    return converted


def _record_of(file: Path) -> dict[str, Any] | None:
    try:
        metadata = json.loads(file.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return None
    dodo = metadata.get("dodo") if isinstance(metadata, dict) else None
    record = dodo.get("code_mode") if isinstance(dodo, dict) else None
    if not isinstance(record, dict):
        return None
    agent, runs = record.get("agent"), record.get("runs")
    agent = agent if isinstance(agent, dict) else {}
    started, last = record.get("started_at"), record.get("last_run_at")
    return {
        "agent": {key: _text(agent.get(key)) for key in AGENT_KEYS},
        "started_at": _text(started),
        "runs": runs if isinstance(runs, int) and not isinstance(runs, bool) and runs > 0 else 0,
        "last_run_at": _text(last),
    }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
