"""A notebook's file text kept ready for more cells (:class:`NotebookText`): the same
text ``nbformat.v4.writes`` makes of the notebook, byte for byte, without encoding the
cells already in it again.

``nbformat.v4.writes`` deep-copies the whole notebook, splits its multi-line strings into
lists of lines (``split_lines``), drops transient metadata (``strip_transient``) and
encodes it with ``json.dumps`` (``indent=1``, sorted keys, ``ensure_ascii=False``): the
pure-Python encoder, because of the indent. For a notebook of a few hundred runs, that
is tens of milliseconds at every run. Here each cell is made ready the same way and
encoded once, when it joins the notebook, as it stands in the file: JSON text has
newlines only between its tokens (a string's are escaped), so a cell encoded alone, with
two more spaces after each newline, is that cell inside the ``cells`` list of the file.
The file's text is then the rest of the notebook (metadata, ``nbformat``,
``nbformat_minor``: small), encoded at every write, with the cells' texts in place of
its ``cells``.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from nbformat import NotebookNode, from_dict
from nbformat.v4.nbjson import BytesEncoder
from nbformat.v4.rwbase import split_lines, strip_transient

__all__ = ["NotebookText"]

#: ``json.dumps`` as ``nbformat.v4.writes`` calls it.
_dumps = functools.partial(
    json.dumps,
    cls=BytesEncoder,
    indent=1,
    sort_keys=True,
    separators=(",", ": "),
    ensure_ascii=False,
)
#: A newline inside a cell's text once the cell stands in the file's ``cells`` list.
_CELL_NEWLINE = "\n  "
#: The ``cells`` key of the file's text with no cells (a key at the top level is the
#: only one with a single space before it).
_NO_CELLS = '\n "cells": []'


def _as_written(notebook: dict[str, Any]) -> NotebookNode:
    """A copy of ``notebook`` the way ``nbformat.v4.writes`` encodes it: multi-line
    strings split into lines, transient metadata left out."""
    written: NotebookNode = strip_transient(split_lines(from_dict(notebook)))
    return written


class NotebookText:
    """A version 4 notebook as its file's text: ``top``, the notebook but for its cells
    (plain data; ``metadata`` may be changed between writes), and ``cells``, each
    cell's text as it stands in the file."""

    def __init__(self, notebook: dict[str, Any]) -> None:
        written = _as_written(notebook)  # a copy: ``notebook`` is left as it is
        self.top: dict[str, Any] = {key: value for key, value in written.items() if key != "cells"}
        self.cells: list[str] = []
        #: How many characters the cells' texts take.
        self.size = 0
        self._add(written.cells)

    @property
    def metadata(self) -> dict[str, Any]:
        """The notebook's metadata (written as it is at :meth:`text`)."""
        metadata: dict[str, Any] = self.top["metadata"]
        return metadata

    def extend(self, cells: list[NotebookNode]) -> None:
        """Add ``cells`` (left as they are) after the notebook's cells."""
        self._add(_as_written({"cells": cells, "metadata": {}}).cells)

    def _add(self, cells: list[NotebookNode]) -> None:
        for cell in cells:
            text = _dumps(cell).replace("\n", _CELL_NEWLINE)
            self.cells.append(text)
            self.size += len(text)

    def text(self) -> str:
        """The file's text: what ``nbformat.v4.writes`` makes of the notebook."""
        top = NotebookNode({**self.top, "cells": [], "metadata": dict(self.metadata)})
        rest = _dumps(strip_transient(top))
        if not self.cells:
            return rest
        cells = "[" + _CELL_NEWLINE + ("," + _CELL_NEWLINE).join(self.cells) + "\n ]"
        return rest.replace(_NO_CELLS, '\n "cells": ' + cells, 1)
