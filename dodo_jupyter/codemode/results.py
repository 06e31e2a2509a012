"""A run as the agent reads it (:func:`tool_result`): its outputs as MCP content, its
error with the traceback trimmed to the agent's own lines (:func:`trim_traceback`).

Per output, in the order they came: printed text as text (``stderr`` marked); an image
(PNG, JPEG, GIF, WebP) as MCP ``ImageContent``; any other value or display as its
Markdown, plain text or HTML, in that order of preference (the value of the last
expression starts with ``Out[n]:``). Neighbouring texts are joined into one block. Notes
(a new kernel, a timeout, output that was cut) come before or after, as sentences.

An error's traceback comes without ANSI colours and without the frames inside IPython,
ipykernel, dodo and the libraries dodo's client runs on: a line says how many were left
out. A library frame of the agent's choosing (``json``, ``pandas``) keeps its location
and the line that failed; the agent's own cells (``Cell In[n]``) keep their context.
"""

from __future__ import annotations

import re
from typing import Any

import mcp_types as types

from .execution import Execution

__all__ = ["strip_ansi", "tool_result", "trim_traceback"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
#: Frames in these packages are dodo's, IPython's or the client's machinery.
_INTERNAL = re.compile(
    r"[/\\](IPython|ipykernel|dodo_jupyter|mcp|mcp_types|httpx2|httpcore|anyio|pydantic"
    r"|pydantic_core|asyncio|concurrent|jupyter_client|tornado|zmq)[/\\]"
)
_FILE = re.compile(r"^File (.+?):\d+")
_HEADER = re.compile(r"^(\S+)\s+Traceback \(most recent call last\)$")
#: The longest traceback sent, in characters (its start and end are kept).
MAX_TRACEBACK = 6000
_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_TEXTS = ("text/markdown", "text/plain", "text/html")


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)


def trim_traceback(traceback: list[str]) -> str:
    """An IPython traceback (its list of ANSI-coloured blocks) for the agent: see the
    module docstring."""
    kept: list[str] = []
    hidden = 0

    def flush_hidden() -> None:
        nonlocal hidden
        if hidden:
            plural = "s" if hidden > 1 else ""
            kept.append(f"  ({hidden} frame{plural} inside IPython or dodo not shown)")
            hidden = 0

    for block in traceback:
        text = strip_ansi(block).rstrip()
        first = text.lstrip().split("\n", 1)[0].strip()
        if not first or set(first) <= {"-"}:
            continue  # IPython's rule line
        header = _HEADER.match(first)
        file = _FILE.match(first)
        if header:
            flush_hidden()
            kept.append("Traceback (most recent call last):")
        elif file and _INTERNAL.search(file.group(1)):
            hidden += 1
        elif file:
            flush_hidden()
            arrow = [line for line in text.splitlines() if line.lstrip().startswith("-")]
            kept.append("\n".join([first, *arrow[-1:]]))
        else:
            flush_hidden()
            kept.append(text)
    flush_hidden()
    joined = "\n".join(kept)
    if len(joined) > MAX_TRACEBACK:
        half = MAX_TRACEBACK // 2
        joined = f"{joined[:half]}\n  [...]\n{joined[-half:]}"
    return joined


def _text_of(output: dict[str, Any]) -> str | None:
    data = output.get("data", {})
    for mime in _TEXTS:
        value = data.get(mime)
        if isinstance(value, str) and value:
            return value
    return None


def _contents(output: dict[str, Any]) -> list[str | types.ImageContent]:
    kind = output["output_type"]
    if kind == "stream":
        text: str = output["text"]
        return [f"[stderr]\n{text}" if output.get("name") == "stderr" else text]
    if kind == "error":
        return [trim_traceback(list(output.get("traceback") or []))]
    data = output.get("data", {})
    for mime in _IMAGES:
        if isinstance(data.get(mime), str):
            encoded = "".join(data[mime].split())
            return [types.ImageContent(type="image", data=encoded, mime_type=mime)]
    shown = _text_of(output)
    if shown is None:
        return [f"(an output of type {', '.join(sorted(data)) or 'nothing'})"]
    if kind == "execute_result":
        count = output.get("execution_count")
        return [f"Out[{count}]: {shown}" if count else f"Out: {shown}"]
    return [shown]


def _cut_note(execution: Execution, max_bytes: int) -> str:
    outputs = execution.outputs
    whole = ""
    if outputs.cut_outputs:
        plural = "s" * (outputs.cut_outputs > 1)
        whole = f", among them {outputs.cut_outputs} whole output{plural} (values, images)"
    return (
        f"Output cut after {max_bytes:,} bytes (DodoApp.code_mode_max_output_bytes): "
        f"{outputs.cut_bytes:,} more bytes were left out{whole}. Print less: summarise, "
        "slice or count in code, and keep large results in variables."
    )


def tool_result(execution: Execution, *, before: list[str] | None = None) -> types.CallToolResult:
    """The MCP result of a run; ``before`` are notes to read first (a new kernel)."""
    pieces: list[str | types.ImageContent] = [f"Note: {note}" for note in before or []]
    for output in execution.outputs.items:
        pieces.extend(_contents(output))
    if execution.outputs.cut:
        pieces.append(_cut_note(execution, execution.outputs.max_bytes))
    pieces.extend(f"Note: {note}" for note in execution.notes)
    if not execution.outputs.items and execution.status == "ok":
        pieces.append(
            "(The code ran and printed nothing. End with an expression to see its value.)"
        )
    content: list[types.TextContent | types.ImageContent] = []
    for piece in pieces:
        if isinstance(piece, str):
            last = content[-1] if content else None
            if isinstance(last, types.TextContent):
                joiner = "" if last.text.endswith("\n") else "\n"
                content[-1] = types.TextContent(type="text", text=last.text + joiner + piece)
            else:
                content.append(types.TextContent(type="text", text=piece))
        else:
            content.append(piece)
    return types.CallToolResult(content=list(content), is_error=execution.status != "ok")
