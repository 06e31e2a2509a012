"""Running one piece of code in a kernel and collecting what it produced
(:func:`execute`), within a deadline and an output budget (:class:`Outputs`).

The code is sent as an ``execute_request`` on the kernel client's shell channel; its
outputs arrive on the IOPub channel (``stream``, ``display_data``, ``execute_result``,
``error``, ``clear_output``) until the kernel says it is ``idle`` for that request. The
outputs are kept in nbformat v4's shape (:func:`output_of`, what
``nbformat.v4.output_from_msg`` builds, without validating each output against the
notebook schema: that took a sixth of a short run's time on the server's event loop),
so the same list goes into the run's notebook cell and, rendered, to the agent
(:mod:`.results`).

**Budget.** At most ``max_bytes`` of output are kept: printed text is cut at the budget
(consecutive prints to the same stream are merged first, as a notebook shows them), a
display that does not fit is left out whole, and an error is always kept. What was left
out is counted (:attr:`Outputs.cut_bytes`, :attr:`Outputs.cut_outputs`) so that the
result can say so.

**Deadline.** :func:`execute` returns ``"timeout"`` when the kernel is not done by then,
and ``"died"`` when its process went away; what to do with the kernel then (interrupt,
restart) is :mod:`.kernels`'s business.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from queue import Empty
from typing import Any, Literal

from nbformat import NotebookNode

__all__ = ["Execution", "Outputs", "RunStatus", "execute", "output_of"]

RunStatus = Literal["ok", "error", "timeout", "died", "cancelled"]
#: How often (seconds) a silent kernel is checked for being alive.
POLL_SECONDS = 0.5


def _size(output: dict[str, Any]) -> int:
    """Bytes an output takes in a notebook: its text, or every representation of it."""
    if output["output_type"] == "stream":
        return len(output["text"].encode())
    total = 0
    for value in output.get("data", {}).values():
        total += len(value.encode()) if isinstance(value, str) else len(json.dumps(value))
    return total


def _head(text: str, limit: int) -> str:
    """The longest start of ``text`` that takes at most ``limit`` bytes in UTF-8."""
    return text.encode()[: max(limit, 0)].decode(errors="ignore")


#: What each output kind keeps of its IOPub message's content (nbformat v4), and the
#: value when the message has none.
_OUTPUT_FIELDS: dict[str, dict[str, Any]] = {
    "stream": {"name": "stdout", "text": ""},
    "display_data": {"data": {}, "metadata": {}},
    "execute_result": {"data": {}, "metadata": {}, "execution_count": None},
    "error": {"ename": "", "evalue": "", "traceback": []},
}


def output_of(kind: str, content: dict[str, Any]) -> NotebookNode:
    """The notebook output of an IOPub message of ``kind`` (one of :data:`_OUTPUT_FIELDS`)."""
    fields = _OUTPUT_FIELDS[kind]
    return NotebookNode(output_type=kind, **{k: content.get(k, v) for k, v in fields.items()})


class Outputs:
    """A run's outputs, kept within ``max_bytes`` (see the module docstring)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.items: list[dict[str, Any]] = []
        self.used = 0
        self.cut_bytes = 0
        self.cut_outputs = 0

    def add(self, msg: dict[str, Any]) -> None:
        """Keep the output an IOPub message carries (or clear them, for ``clear_output``)."""
        kind = msg["msg_type"]
        if kind == "clear_output":
            self.items.clear()
            self.used = 0
            return
        if kind not in _OUTPUT_FIELDS:
            return  # update_display_data, comm messages...: nothing a cell keeps
        output = output_of(kind, msg["content"])
        if kind == "error":
            self.items.append(output)
            return
        size = _size(output)
        if kind == "stream":
            self._add_text(output, size)
            return
        if self.used + size > self.max_bytes:
            self.cut_bytes += size
            self.cut_outputs += 1
            return
        self.items.append(output)
        self.used += size

    def _add_text(self, output: dict[str, Any], size: int) -> None:
        text = output["text"]
        room = self.max_bytes - self.used
        if size > room:
            text = _head(text, room)
            self.cut_bytes += size - len(text.encode())
        if not text:
            return
        self.used += len(text.encode())
        last = self.items[-1] if self.items else None
        if last is not None and last["output_type"] == "stream" and last["name"] == output["name"]:
            last["text"] += text
        else:
            output["text"] = text
            self.items.append(output)

    @property
    def cut(self) -> bool:
        return self.cut_bytes > 0


@dataclass
class Execution:
    """What one run did."""

    status: RunStatus
    outputs: Outputs
    seconds: float
    #: The kernel's number for this execution (``In [n]``); None when it never started.
    execution_count: int | None = None
    #: What happened to the kernel, for the agent and the notebook (set by .kernels).
    notes: list[str] = field(default_factory=list)


async def execute(
    client: Any,
    code: str,
    *,
    seconds: float,
    max_output_bytes: int,
    alive: Callable[[], Awaitable[bool]],
    outputs: Outputs | None = None,
) -> Execution:
    """Run ``code`` through the (started) async kernel ``client`` for at most
    ``seconds``; see the module docstring. ``alive`` says whether the kernel's process
    still runs; ``outputs``, when given, collects the outputs (the caller keeps what came
    of a run that is cancelled)."""
    started = time.monotonic()
    deadline = started + seconds
    if outputs is None:
        outputs = Outputs(max_output_bytes)
    # One run at a time per kernel: nothing is queued behind this one for the kernel to
    # abort after an error (which it would do to a run sent right after an interrupt).
    msg_id = client.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
    status: RunStatus = "ok"
    count: int | None = None

    def done(how: RunStatus) -> Execution:
        return Execution(how, outputs, time.monotonic() - started, count)

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return done("timeout")
        try:
            msg = await client.get_iopub_msg(timeout=min(left, POLL_SECONDS))
        except Empty:
            if not await alive():
                return done("died")
            continue
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status":
            if content.get("execution_state") == "idle":
                break
        elif kind == "execute_input":
            count = content.get("execution_count")
        else:
            if kind == "error":
                status = "error"
            outputs.add(msg)
    await _reply(client, msg_id)
    return done(status)


async def _reply(client: Any, msg_id: str, wait: float = 5.0) -> None:
    """Read the shell reply of ``msg_id`` (and any stale one before it), so replies do
    not pile up; the outputs already said everything."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            reply = await asyncio.wait_for(client.get_shell_msg(timeout=left), left + 1)
        except (Empty, TimeoutError):
            return
        if reply.get("parent_header", {}).get("msg_id") == msg_id:
            return
