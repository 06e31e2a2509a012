"""The standard streams of agent kernels: ipykernel's, minus a wait when there is
nothing to send.

ipykernel's :class:`~ipykernel.iostream.OutStream` sends what the code printed from its
IOPub thread. Its ``flush()``, called from the kernel's main thread, hands the thread
a flush and then waits until the thread has done it. ipykernel calls it for stdout and
stderr before each value it shows and again before each reply: six hand-offs between
threads per run, about a millisecond of a short run, also when nothing was printed.

:class:`AgentOutStream` returns at once when nothing was written since the thread last
began to send (no send pending); otherwise it flushes as ipykernel does. What was
written is sent before whatever the kernel publishes next: the IOPub thread handles
both in order. Agent kernels use it through ``--IPKernelApp.outstream_class``
(:data:`.kernelspec.KERNEL_OPTIONS`).
"""

from __future__ import annotations

from ipykernel.iostream import OutStream

__all__ = ["AgentOutStream"]


class AgentOutStream(OutStream):
    """:class:`OutStream` whose ``flush()`` does not wait when there is nothing to send."""

    def flush(self) -> None:
        pending = getattr(self, "_flush_pending", True) or getattr(
            self, "_subprocess_flush_pending", True
        )
        if pending:
            super().flush()
