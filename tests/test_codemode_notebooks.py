"""How a run's cell is added to its session's notebook (:mod:`dodo_jupyter.codemode.notebooks`,
:mod:`~dodo_jupyter.codemode.notebook_file`), without a kernel: names, the listing of
notebooks a user may have edited by hand, the file's bytes as nbformat writes them,
changes made on disk between runs, and writes that fail. (With real kernels:
tests/test_codemode_run.py.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from dodo_jupyter.codemode import notebooks as notebooks_module
from dodo_jupyter.codemode.execution import Execution, Outputs
from dodo_jupyter.codemode.notebook_file import NotebookText
from dodo_jupyter.codemode.notebooks import RunNotebooks, agent_slug, now_local

from .test_codemode_parts import _display, _msg, _stream


def a_run_notebook(tmp_path: Path) -> tuple[RunNotebooks, dict[str, Any], str]:
    """Run notebooks under ``tmp_path/runs``, an agent, and the path of its new notebook."""
    notebooks = RunNotebooks(tmp_path, "runs")
    agent: dict[str, Any] = {"client": "a 1", "token_label": "t", "token_id": "1"}
    return notebooks, agent, notebooks.new_path(agent, now_local())


def test_notebook_names_use_the_agents_name() -> None:
    assert agent_slug({"client": "Claude Code 1.0.3"}) == "claude-code"
    assert agent_slug({"client": None, "token_label": "My laptop!"}) == "my-laptop"
    assert agent_slug({"client": "???"}) == "agent"


def test_the_listing_reads_only_code_mode_notebooks_and_trusts_nothing_in_them(
    tmp_path: Path,
) -> None:
    notebooks = RunNotebooks(tmp_path, "runs")
    agent = {
        "client": "a 1",
        "token_label": "t",
        "token_id": "1",
        "chat_id": None,
        "persona_id": None,
    }
    path = notebooks.new_path(agent, now_local())
    outputs = Outputs(100)
    outputs.add(_stream("hi\n"))
    asyncio.run(
        notebooks.append(
            path, Execution("ok", outputs, 0.2, 1), "print('hi')", agent=agent, started=now_local()
        )
    )
    folder = tmp_path / "runs"
    nbformat.write(nbformat.v4.new_notebook(), folder / "mine.ipynb")  # the user's own
    (folder / "broken.ipynb").write_text("{not json")
    edited = nbformat.v4.new_notebook()
    edited.metadata["dodo"] = {"code_mode": {"agent": {"client": 5, "extra": "x"}, "runs": "many"}}
    nbformat.write(edited, folder / "edited.ipynb")

    listed = {entry["path"]: entry for entry in asyncio.run(notebooks.listing())}
    assert set(listed) == {path, "runs/edited.ipynb"}
    assert listed[path]["runs"] == 1 and listed[path]["agent"] == agent
    assert listed["runs/edited.ipynb"] == {
        "path": "runs/edited.ipynb",
        "agent": dict.fromkeys(("client", "token_label", "token_id", "chat_id", "persona_id")),
        "started_at": None,
        "runs": 0,
        "last_run_at": None,
    }
    written = json.loads((tmp_path / path).read_text())
    nbformat.validate(nbformat.from_dict(written))


def test_every_kind_of_output_makes_a_valid_notebook_the_way_nbformat_reads_it(
    tmp_path: Path,
) -> None:
    notebooks, agent, path = a_run_notebook(tmp_path)
    outputs = Outputs(10_000)
    outputs.add(_stream("out\n"))
    outputs.add(_stream("warn\n", "stderr"))
    outputs.add(_display({"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}))
    outputs.add(_msg("display_data", data={"application/json": {"a": [1, {"b": None}]}}))
    outputs.add(_msg("execute_result", data={"text/plain": "42"}, metadata={}, execution_count=3))
    outputs.add(_msg("error", ename="ValueError", evalue="no", traceback=["line 1", "line 2"]))
    run = Execution("error", outputs, 0.5, 3, notes=["the kernel was restarted"])
    for new_kernel in (None, "it ran out of time"):
        asyncio.run(
            notebooks.append(
                path, run, "x = 1", agent=agent, started=now_local(), new_kernel=new_kernel
            )
        )
    notebook = nbformat.read(tmp_path / path, as_version=4)
    nbformat.validate(notebook)
    kinds = [(c.cell_type, [o.output_type for o in c.get("outputs", [])]) for c in notebook.cells]
    shown = ["stream", "stream", "display_data", "display_data", "execute_result", "error"]
    assert kinds == [("code", [*shown, "stream"]), ("markdown", []), ("code", [*shown, "stream"])]
    first = notebook.cells[0]
    assert first.outputs[3].data["application/json"] == {"a": [1, {"b": None}]}
    assert first.outputs[5].traceback == ["line 1", "line 2"]
    assert first.outputs[-1].text == "dodo: the kernel was restarted\n"
    assert len({cell.id for cell in notebook.cells}) == 3


@pytest.mark.parametrize(
    "found", ["{not json", "{}", "[1, 2]", '"x"', '{"nbformat": 4, "cells": "x"}', "old"]
)
def test_a_notebook_file_that_is_no_notebook_any_more_is_started_again(
    tmp_path: Path, found: str
) -> None:
    notebooks, agent, path = a_run_notebook(tmp_path)
    file = tmp_path / path
    file.parent.mkdir(parents=True)
    if found == "old":  # an nbformat 3 notebook with one cell: converted, its cell kept
        cell = {"cell_type": "markdown", "source": "mine", "metadata": {}}
        worksheets = [{"cells": [cell], "metadata": {}}]
        found = json.dumps(
            {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": worksheets}
        )
    file.write_text(found)
    run = Execution("ok", Outputs(100), 0.1, 1)
    asyncio.run(notebooks.append(path, run, "1 + 1", agent=agent, started=now_local()))
    notebook = nbformat.read(file, as_version=4)
    nbformat.validate(notebook)
    kept = ["mine"] if "worksheets" in found else []
    assert [c.source for c in notebook.cells] == [*kept, "1 + 1"]


def test_runs_are_written_after_the_answer_in_order_and_a_failed_write_is_told_once(
    tmp_path: Path,
) -> None:
    notebooks, agent, path = a_run_notebook(tmp_path)

    def run(code: str) -> Execution:
        outputs = Outputs(100)
        outputs.add(_stream(f"{code}\n"))
        return Execution("ok", outputs, 0.1, 1)

    async def scenario() -> str | None:
        for n in range(5):
            notebooks.append_later(
                path, run(str(n)), f"print({n})", agent=agent, started=now_local()
            )
        await notebooks.listing()  # a listing waits for the writes under way
        cells = nbformat.read(tmp_path / path, as_version=4).cells
        assert [c.source for c in cells] == [f"print({n})" for n in range(5)]

        blocker = (tmp_path / path).with_name(f".~{Path(path).name}.tmp")
        blocker.mkdir()  # the write's temporary file cannot be made (root ignores modes)
        notebooks.append_later(path, run("5"), "print(5)", agent=agent, started=now_local())
        await notebooks.flush()
        blocker.rmdir()
        failure = notebooks.take_failure(path)
        notebooks.append_later(path, run("6"), "print(6)", agent=agent, started=now_local())
        await notebooks.flush()
        cells = nbformat.read(tmp_path / path, as_version=4).cells
        assert [c.source for c in cells] == [f"print({n})" for n in (0, 1, 2, 3, 4, 6)]
        return failure

    failure = asyncio.run(scenario())
    assert failure is not None
    assert failure.startswith(f"An earlier run could not be added to its notebook {path}")
    assert failure.endswith("tell the user.")
    assert notebooks.take_failure(path) is None  # told once


def _every_kind_of_cell() -> list[nbformat.NotebookNode]:
    """Cells with every kind of output, multi-line and unicode text, as a run's cell, a
    cell read back from a file (its text already split into lines) and a user's."""
    v4 = nbformat.v4
    outputs = [
        v4.new_output("stream", name="stdout", text="one\ntwo\r\nthree"),
        v4.new_output("stream", name="stderr", text="héllo wörld ✓ 🙂\u2028\n"),
        v4.new_output(
            "execute_result",
            data={
                "text/plain": "42\nforty-two\n",
                "image/png": "iVBORw0KGgo=\nAAAA",
                "application/json": {"a": [1, {"b": None, "c": "d\ne"}], "é": 1.5},
            },
            metadata={"image/png": {"width": 10}},
            execution_count=3,
        ),
        v4.new_output(
            "display_data",
            data={
                "text/html": "<b>\n bold</b>\n",
                "image/svg+xml": "<svg>\n</svg>",
                "application/javascript": "a();\nb();",
                "application/vnd.x+json": {"k": "v\nw"},
            },
        ),
        v4.new_output("error", ename="ValueError", evalue="nö\nmore", traceback=["a\nb", "c"]),
    ]
    run = v4.new_code_cell("x = 1\nprint('ü')\n", outputs=outputs, execution_count=3)
    run.metadata["dodo"] = {"ran_at": "2026-05-01T10:00:00+02:00", "seconds": 0.5}
    run.metadata["trusted"] = True  # transient: not written
    new_kernel = v4.new_markdown_cell("*New kernel: the session's previous one stopped.*")
    read_back = nbformat.from_dict(json.loads(nbformat.v4.writes(v4.new_notebook(cells=[run]))))
    read_back.cells[0].id = "read-back"
    return [
        run,
        new_kernel,
        read_back.cells[0],
        v4.new_code_cell(""),
        v4.new_raw_cell("raw\n\n"),
        v4.new_markdown_cell("mine", attachments={"a.png": {"image/png": "AA=="}}),
    ]


def test_a_notebooks_file_is_written_byte_for_byte_as_nbformat_writes_it(
    tmp_path: Path,
) -> None:
    cells = _every_kind_of_cell()
    notebook = nbformat.v4.new_notebook(cells=cells)
    kernelspec = {"name": "python3", "display_name": "Python 3"}
    notebook.metadata.update(kernelspec=kernelspec, dodo={"code_mode": {"runs": 2}})
    notebook.metadata["orig_nbformat"] = 3  # transient: not written
    expected = nbformat.v4.writes(notebook)
    assert NotebookText(notebook).text() == expected
    for start in range(len(cells)):  # the first cells when it is read, the others added
        grown = NotebookText(nbformat.v4.new_notebook(cells=cells[:start], metadata={}))
        grown.extend(cells[start:])
        grown.metadata.update(notebook.metadata)
        assert grown.text() == expected
    nbformat.validate(nbformat.reads(expected, as_version=4))
    assert nbformat.v4.writes(notebook) == expected  # nothing of the notebook was changed
    empty = nbformat.v4.new_notebook()
    assert NotebookText(empty).text() == nbformat.v4.writes(empty)

    # And a run's notebook is what nbformat writes of the notebook it holds.
    notebooks, agent, path = a_run_notebook(tmp_path)
    outputs = Outputs(10_000)
    outputs.add(_stream("ünïcode\nlines\n"))
    outputs.add(_msg("execute_result", data={"text/plain": "1\n2"}, metadata={}, execution_count=1))
    for new_kernel in (None, "it ran out of time", None):
        run = Execution("ok", outputs, 0.25, 1, notes=["a note"])
        asyncio.run(
            notebooks.append(
                path, run, "a\nb\n", agent=agent, started=now_local(), new_kernel=new_kernel
            )
        )
    text = (tmp_path / path).read_text(encoding="utf-8")
    assert text == nbformat.v4.writes(nbformat.from_dict(json.loads(text)))
    assert not text.endswith("\n")  # as nbformat.v4.writes leaves it


def _notebook_cells(file: Path) -> list[str]:
    notebook = nbformat.read(file, as_version=4)
    nbformat.validate(notebook)
    return [cell.source for cell in notebook.cells]


def test_a_notebook_the_user_changed_between_runs_is_read_again(tmp_path: Path) -> None:
    notebooks, agent, path = a_run_notebook(tmp_path)
    file = tmp_path / path
    run = Execution("ok", Outputs(100), 0.1, 1)

    def append(code: str) -> None:
        asyncio.run(notebooks.append(path, run, code, agent=agent, started=now_local()))

    append("1")
    edited = nbformat.read(file, as_version=4)  # the user adds a cell and saves
    edited.cells.append(nbformat.v4.new_markdown_cell("mine"))
    nbformat.write(edited, file)
    append("2")
    assert _notebook_cells(file) == ["1", "mine", "2"]
    assert nbformat.read(file, as_version=4).metadata.dodo.code_mode.runs == 2


def test_a_notebook_deleted_between_runs_is_started_again(tmp_path: Path) -> None:
    notebooks, agent, path = a_run_notebook(tmp_path)
    file = tmp_path / path
    run = Execution("ok", Outputs(100), 0.1, 1)
    for code in ("1", "2"):
        asyncio.run(notebooks.append(path, run, code, agent=agent, started=now_local()))
    file.unlink()
    asyncio.run(notebooks.append(path, run, "3", agent=agent, started=now_local()))
    assert _notebook_cells(file) == ["3"]
    assert nbformat.read(file, as_version=4).metadata.dodo.code_mode.runs == 1


def test_a_run_reads_its_notebook_only_when_it_changed_since_dodo_wrote_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    real_read = notebooks_module._read

    def counted_read(file: Path) -> nbformat.NotebookNode | None:
        read.append(file.name)
        return real_read(file)

    monkeypatch.setattr(notebooks_module, "_read", counted_read)
    monkeypatch.setattr(notebooks_module, "CACHED_NOTEBOOKS", 2)
    notebooks = RunNotebooks(tmp_path, "runs")
    agent = {"client": "a 1", "token_label": "t", "token_id": "1"}
    paths = [f"runs/{n}.ipynb" for n in range(3)]
    run = Execution("ok", Outputs(100), 0.1, 1)

    def append(path: str, code: str) -> None:
        asyncio.run(notebooks.append(path, run, code, agent=agent, started=now_local()))

    for n in range(3):
        append(paths[0], str(n))
    assert read == ["0.ipynb"]  # read once, when it did not exist yet
    nbformat.write(nbformat.read(tmp_path / paths[0], as_version=4), tmp_path / paths[0])
    append(paths[0], "3")
    assert read == ["0.ipynb"] * 2  # saved by the user: read again
    append(paths[1], "a")
    append(paths[2], "b")  # the third notebook: the first one is forgotten
    append(paths[0], "4")
    append(paths[2], "c")
    assert read == ["0.ipynb", "0.ipynb", "1.ipynb", "2.ipynb", "0.ipynb"]
    assert _notebook_cells(tmp_path / paths[0]) == ["0", "1", "2", "3", "4"]


def test_many_runs_make_a_valid_notebook_with_every_cell_in_order(tmp_path: Path) -> None:
    notebooks, agent, path = a_run_notebook(tmp_path)

    async def scenario() -> None:
        for n in range(120):
            outputs = Outputs(1000)
            outputs.add(_stream(f"{n}\n" * (n % 4)))
            run = Execution("ok", outputs, 0.1, n + 1)
            new_kernel = "it died" if n % 50 == 49 else None
            notebooks.append_later(
                path, run, f"print({n})", agent=agent, started=now_local(), new_kernel=new_kernel
            )
        await notebooks.flush()

    asyncio.run(scenario())
    file = tmp_path / path
    expected = []
    for n in range(120):
        if n % 50 == 49:
            expected.append("*New kernel: the session's previous one stopped because it died. ")
        expected.append(f"print({n})")
    sources = _notebook_cells(file)
    assert [s[: len(e)] for s, e in zip(sources, expected, strict=True)] == expected
    notebook = nbformat.read(file, as_version=4)
    assert notebook.metadata.dodo.code_mode.runs == 120
    assert len({cell.id for cell in notebook.cells}) == len(expected)
    text = file.read_text(encoding="utf-8")
    assert text == nbformat.v4.writes(nbformat.from_dict(json.loads(text)))


@pytest.mark.parametrize(
    "broken",
    [
        {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"source": "x"}]},
        {"nbformat": 4, "nbformat_minor": 5, "metadata": [], "cells": []},
    ],
    ids=["a cell without its type", "metadata that is a list"],
)
def test_a_notebook_of_a_broken_shape_is_left_as_it_is_and_the_agent_told(
    tmp_path: Path, broken: dict[str, object]
) -> None:
    """A version 4 notebook whose cells or metadata do not have nbformat's shape (the
    user's hand edit, say) is not rewritten; the session's next answer says why."""
    notebooks = RunNotebooks(tmp_path, "runs")
    agent = {"client": "claude-code"}
    path = notebooks.new_path(agent, now_local())
    file = tmp_path / path
    file.parent.mkdir(parents=True)
    file.write_text(json.dumps(broken))

    async def run() -> str | None:
        notebooks.append_later(
            path, Execution("ok", Outputs(1000), 0.1), "1 + 1", agent=agent, started=now_local()
        )
        await notebooks.flush()
        return notebooks.take_failure(path)

    told = asyncio.run(run())
    assert told is not None and path in told and "not a notebook dodo can add a cell to" in told
    assert json.loads(file.read_text()) == broken
