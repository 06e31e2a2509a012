"""What the code-mode ``search_tools`` tool tells a model: the tools that match a query,
in as few bytes as say how to call them.

Three levels of detail (progressive disclosure: a model asks for more only for the
tools it means to use)::

    detail="names"        tools.demo.add: Add two numbers.
    detail="signatures"   # tools.demo
                          def add(*, a: float, b: float = 0) -> float:
                              \"\"\"Add two numbers.\"\"\"
    detail="full"         the same with the whole generated docstrings

The names and signatures are those of :mod:`~dodo_jupyter.client.typed_api`, the
generator of the kernel's ``from dodo_jupyter import tools``: what a model reads is
exactly what its code can call.

Matching: the query's words (case-insensitive) are looked for in each tool's gateway
name, Python path and description; a tool matches when any word does, and tools that
match more words, then in their names, come first. An empty query lists every tool,
by server and name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from ..client.python_names import python_path, tool_paths
from ..client.results import Tool
from ..client.typed_api import ToolShape, shape_of

if TYPE_CHECKING:
    import mcp_types

__all__ = ["Detail", "python_path", "search_tools"]

Detail = Literal["names", "signatures", "full"]
DETAILS: tuple[Detail, ...] = ("names", "signatures", "full")
#: What a one-line summary is cut to.
SUMMARY_LENGTH = 120


def _shapes(tools: Sequence[mcp_types.Tool]) -> list[ToolShape]:
    plain = [
        Tool(t.name, t.description or "", dict(t.input_schema or {}), dict(t.output_schema or {}))
        for t in tools
    ]
    paths = tool_paths(t.name for t in plain)
    return [shape_of(tool, paths[tool.name]) for tool in plain]


def _score(shape: ToolShape, words: list[str]) -> tuple[int, int]:
    """(words found anywhere, words found in the names)."""
    names = f"{shape.tool.name} {shape.python_path}".lower()
    text = f"{names} {shape.tool.description}".lower()
    return sum(word in text for word in words), sum(word in names for word in words)


def _summary(shape: ToolShape) -> str:
    line = shape.summary
    return line if len(line) <= SUMMARY_LENGTH else line[: SUMMARY_LENGTH - 1] + "…"


def _indented(text: str, indent: str = "    ") -> str:
    return "\n".join(indent + line if line else "" for line in text.splitlines())


def _stub(shape: ToolShape, detail: Detail) -> str:
    if detail == "full":
        doc = shape.doc.replace('"""', r"\"\"\"")
        return f'{shape.definition}:\n{_indented(chr(34) * 3 + doc)}\n    """'
    summary = _summary(shape).replace('"""', r"\"\"\"")
    return f'{shape.definition}:\n    """{summary}"""' if summary else f"{shape.definition}: ..."


def _render(shapes: list[ToolShape], detail: Detail) -> list[str]:
    if detail == "names":
        return [f"{s.python_path}: {_summary(s)}" if s.summary else s.python_path for s in shapes]
    # Grouped by server, in the order their best tool ranks: one "# tools.<server>" line.
    groups: dict[str, list[ToolShape]] = {}
    for shape in shapes:
        groups.setdefault(shape.server, []).append(shape)
    lines: list[str] = []
    for server, members in groups.items():
        lines.append(f"# tools.{server}")
        lines.extend(_stub(shape, detail) for shape in members)
    return lines


def _header(query: str, found: int, shown: int, total: int, detail: Detail) -> str:
    if total == 0:
        return (
            "No tools yet: the user has connected no MCP server with tools switched on "
            "(they connect servers in JupyterLab's MCP panel)."
        )
    if found == 0:
        return f"No tool matches {query!r} ({total} tools; an empty query lists them all)."
    what = f"{found} of {total} tools match {query!r}" if query.strip() else f"{total} tools"
    if shown < found:
        what += f", the best {shown} shown (raise limit for more)"
    hint = {
        "names": ' (call as tools.<server>.<tool>(...); detail="signatures" or "full" for more)',
        "signatures": ' (keyword arguments only; detail="full" for the parameters\' docs)',
        "full": "",
    }[detail]
    return f"{what}{hint}:"


def search_tools(
    tools: Sequence[mcp_types.Tool],
    query: str,
    detail: Literal["names", "signatures", "full"] = "signatures",
    *,
    limit: int = 20,
) -> str:
    """The tools among ``tools`` (the gateway's, ``<alias>__<tool>``) that match
    ``query``, at ``detail``, at most ``limit`` of them, under a header line saying how
    many matched and how to see more (see the module docstring)."""
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
    shapes = _shapes(tools)
    words = query.lower().split()
    if words:
        scored = [(_score(shape, words), shape) for shape in shapes]
        ranked = [
            shape
            for score, shape in sorted(
                scored, key=lambda item: (-item[0][0], -item[0][1], item[1].python_path)
            )
            if score[0]
        ]
    else:
        ranked = sorted(shapes, key=lambda shape: shape.python_path)
    shown = ranked[: max(limit, 0)]
    header = _header(query, len(ranked), len(shown), len(shapes), detail)
    return "\n".join([header, *_render(shown, detail)])
