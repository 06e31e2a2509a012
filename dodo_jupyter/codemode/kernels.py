"""Code-mode kernels (:class:`AgentKernels`): started, limited, restarted, culled and
shut down, each with a gateway token of its own.

**Starting.** A kernel is started by a ``jupyter_client`` ``AsyncMultiKernelManager`` of
dodo's own (not the server's ``kernel_manager``), with the ``dodo-agent`` spec of
:mod:`.kernelspec`: so code-mode kernels are not among the user's kernels in JupyterLab
or ``/api/kernels``, and the server's kernel culling does not apply to them (this
module's does). Their connection files (and, on POSIX, their IPC sockets, so that no TCP
port is opened) live in a private temporary folder, and so does each kernel's IPython
directory (``IPYTHONDIR``): a kernel neither runs the user's IPython startup files nor
can write them, nor shares its own with other kernels. Each kernel gets a new gateway token
of kind ``code_mode`` (:data:`~dodo_jupyter.gateway.caller.CODE_MODE_TOKEN_KIND`, so its
calls are recorded with the path ``code_mode``) that expires after
:data:`TOKEN_LIFETIME`, in its environment as ``DODO_MCP_TOKEN``; the token is deleted
when the kernel is shut down. The process dies with the server (ipykernel watches its
parent).

**Isolation.** Unless ``DodoApp.code_mode_filesystem_isolation`` is ``'off'``, the
kernel's launcher hides dodo's store, key and the Jupyter runtime directory from it,
makes the Jupyter config directories and the server's Python read-only to it
(:mod:`.isolation`, :mod:`.landlock`) and reports what it did. A kernel that could not
be isolated starts anyway (``'best_effort'``; the server log warns, and the session's
first result says so) or not at all (``'required'``: the run is refused saying why).

**Limits.** At most ``max_kernels`` per user: starting one more shuts down the user's
kernel idle the longest, or is refused (:class:`~dodo_jupyter.exceptions.Conflict`) when
every one is running code. A kernel idle for ``idle_timeout`` seconds is shut down, and
so is one about to outlive its token. A run past its deadline interrupts the kernel and
restarts it (same token, empty state); a kernel whose process died is started again.
Runs on one kernel take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import Conflict, NotFound, Unavailable
from ..gateway.caller import CODE_MODE_TOKEN_KIND
from .execution import Execution, Outputs, execute
from .isolation import ROOT_WARNING, not_isolated_note, read_report, refusal
from .kernelspec import AGENT_KERNEL_NAME, AgentKernelSpecs, kernel_env
from .launch import report_path

if TYPE_CHECKING:
    from ..tokens import TokenService

__all__ = ["TOKEN_LIFETIME", "AgentKernel", "AgentKernels", "KernelLimits"]

log = logging.getLogger("dodo_jupyter.codemode")

#: How long a code-mode kernel's gateway token lives; the kernel is shut down before.
TOKEN_LIFETIME = timedelta(hours=12)
#: A kernel is shut down this long before its token expires.
_TOKEN_MARGIN_S = 600.0
#: Seconds a kernel may take to start and answer.
START_TIMEOUT = 60.0
#: Seconds an interrupted run is given to stop before its kernel restarts anyway.
INTERRUPT_GRACE = 2.0
_TIMEOUT_NOTE = (
    "Timed out after {:g} s: the kernel was interrupted and restarted, so every variable, "
    "import and function defined so far is gone. Run the setup again; do long work in "
    "smaller steps or give a larger timeout_s."
)


@dataclass(frozen=True)
class KernelLimits:
    """The ``DodoApp.code_mode_*`` values kernels follow."""

    max_kernels: int = 3
    idle_timeout: float = 900.0
    memory_limit_mb: int = 4096
    max_output_bytes: int = 100_000
    env_keep: tuple[str, ...] = ()
    isolation: str = "off"
    hidden_paths: tuple[str, ...] = ()
    read_only_paths: tuple[str, ...] = ()


@dataclass(eq=False)
class AgentKernel:
    """One running code-mode kernel."""

    kernel_id: str
    username: str
    token_id: str
    manager: Any
    client: Any
    #: Its own IPython directory (``IPYTHONDIR``), in the kernels' private folder.
    ipython_dir: str = ""
    started_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Why it was shut down (None while it runs).
    ended: str | None = None
    #: What its next run's result must say (once).
    notes: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        """Whether a run (or a restart) holds it."""
        return self.lock.locked()


class AgentKernels:
    """The code-mode kernels of one Jupyter server (see the module docstring).

    Parameters
    ----------
    tokens:
        Mints and deletes the kernels' gateway tokens.
    gateway_url:
        The gateway kernels call tools through (``DODO_MCP_URL``).
    cwd:
        The folder kernels run in (made when missing).
    limits:
        How many, how long idle, how much memory and output.
    server_env:
        The environment kernels' own is taken from (:func:`~.kernelspec.kernel_env`).
    """

    def __init__(
        self,
        tokens: TokenService,
        *,
        gateway_url: str,
        cwd: Path,
        limits: KernelLimits,
        server_env: Mapping[str, str] | None = None,
    ) -> None:
        self.tokens = tokens
        self.gateway_url = gateway_url
        self.cwd = cwd
        self.limits = limits
        self._server_env = server_env if server_env is not None else os.environ
        self._kernels: dict[str, AgentKernel] = {}
        self._starting: dict[str, asyncio.Lock] = {}
        self._manager: Any = None
        self._folder: str | None = None
        self._culler: asyncio.Task[None] | None = None
        self._stopped = False
        self._aftercare: set[asyncio.Task[None]] = set()
        self._warned_root = False
        #: How many kernels were started (and restarted): for tests and the log.
        self.starts = 0

    def of(self, username: str) -> list[AgentKernel]:
        """``username``'s running kernels, oldest first."""
        return [k for k in self._kernels.values() if k.username == username]

    # -- starting ---------------------------------------------------------------------

    async def start(self, username: str, label: str) -> AgentKernel:
        """A new kernel for ``username`` with a new token labelled ``label``.

        Raises
        ------
        Conflict
            every one of the user's ``max_kernels`` kernels is running code.
        Unavailable
            the kernel did not start (the server log has why).
        """
        if self._stopped:
            raise Unavailable("dodo is shutting down; try again once the server is back.")
        lock = self._starting.setdefault(username, asyncio.Lock())
        async with lock:
            await self._make_room(username)
            manager = await self._kernel_manager()
            token = await self.tokens.create(
                username, label[:100], kind=CODE_MODE_TOKEN_KIND, lifetime=TOKEN_LIFETIME
            )
            token_id = str(token.info["id"])
            env = kernel_env(
                self._server_env,
                gateway_url=self.gateway_url,
                token=token.token,
                keep=self.limits.env_keep,
            )
            kernel_id: str | None = None
            km: Any = None
            ipython_dir = ""
            try:
                await asyncio.to_thread(self.cwd.mkdir, parents=True, exist_ok=True)
                ipython_dir = await asyncio.to_thread(
                    tempfile.mkdtemp, prefix="ipython-", dir=self._folder
                )
                env["IPYTHONDIR"] = ipython_dir
                kernel_id = await manager.start_kernel(
                    kernel_name=AGENT_KERNEL_NAME, env=env, cwd=str(self.cwd)
                )
                km = manager.get_kernel(kernel_id)
                client = await self._client(km)
            except BaseException as e:
                # Also when the request was cancelled: no kernel or token is left behind.
                await asyncio.shield(self._abandon(manager, kernel_id, username, token_id))
                if ipython_dir:
                    await asyncio.to_thread(shutil.rmtree, ipython_dir, True)
                if not isinstance(e, Exception):
                    raise
                refused = await asyncio.to_thread(self._isolation_refused, km)
                if refused is not None:
                    log.error("dodo code mode: a kernel did not start: %s", refused)
                    raise Unavailable(refused) from None
                log.error("dodo code mode: a kernel did not start: %s", e, exc_info=e)
                raise Unavailable(
                    "The code-mode kernel did not start; the Jupyter server log says why "
                    "(is ipykernel installed in the server's Python?)."
                ) from None
            kernel = AgentKernel(kernel_id, username, token_id, km, client, ipython_dir)
            await self._check_isolation(kernel)
            self._kernels[kernel_id] = kernel
            self.starts += 1
            self._watch()
            log.info("dodo code mode: kernel %s started for %r", kernel_id[:8], username)
            return kernel

    async def _abandon(
        self, manager: Any, kernel_id: str | None, username: str, token_id: str
    ) -> None:
        """Undo a start that failed: its token, and its kernel if it was started."""
        await self._forget_token(username, token_id)
        if kernel_id is not None:
            with contextlib.suppress(Exception):
                await manager.shutdown_kernel(kernel_id, now=True)

    async def _check_isolation(self, kernel: AgentKernel) -> None:
        """Read what the kernel's launcher did: warn (log, and the session's next result)
        when it could not isolate the kernel."""
        if self.limits.isolation == "off":
            return
        report = await asyncio.to_thread(read_report, kernel.manager.connection_file)
        for remark in report.remarks if report else []:
            log.warning("dodo code mode: isolating kernel %s: %s", kernel.kernel_id[:8], remark)
        if report is not None and report.as_root and not self._warned_root:
            self._warned_root = True
            log.warning(ROOT_WARNING)
        if report is not None and report.isolated:
            return
        reason = report.reason if report else "its launcher said nothing of it"
        log.warning(
            "dodo code mode: kernel %s runs without filesystem isolation: %s "
            "(DodoApp.code_mode_filesystem_isolation = 'required' refuses such kernels)",
            kernel.kernel_id[:8],
            reason,
        )
        kernel.notes.append(not_isolated_note(reason))

    def _isolation_refused(self, km: Any) -> str | None:
        """Why a kernel that did not start was refused for want of isolation, if it was
        (its launcher's report is removed)."""
        if km is None:
            return None
        report = read_report(km.connection_file)
        report_path(km.connection_file).unlink(missing_ok=True)
        if self.limits.isolation != "required" or report is None or report.isolated:
            return None
        return refusal(report.reason)

    async def _make_room(self, username: str) -> None:
        mine = self.of(username)
        if len(mine) < self.limits.max_kernels:
            return
        idle = sorted((k for k in mine if not k.busy), key=lambda k: k.last_used)
        if not idle:
            raise Conflict(
                f"All {len(mine)} of your code-mode kernels are running code "
                f"(DodoApp.code_mode_max_kernels = {self.limits.max_kernels}): wait for a "
                "run to finish, or end another agent session, and try again."
            )
        await self.shutdown(
            idle[0],
            "it was shut down to make room for another session's kernel "
            f"(DodoApp.code_mode_max_kernels = {self.limits.max_kernels})",
        )

    async def _kernel_manager(self) -> Any:
        if self._manager is None:
            from jupyter_client.multikernelmanager import AsyncMultiKernelManager
            from traitlets.config import Config

            self._folder = await asyncio.to_thread(tempfile.mkdtemp, prefix="dodo-agent-")
            transport = "ipc" if os.name == "posix" else "tcp"
            self._manager = AsyncMultiKernelManager(
                kernel_spec_manager=AgentKernelSpecs(
                    self.limits.memory_limit_mb,
                    self.limits.isolation,
                    self.limits.hidden_paths,
                    self.limits.read_only_paths,
                ),
                connection_dir=self._folder,
                default_kernel_name=AGENT_KERNEL_NAME,
                config=Config({"KernelManager": {"autorestart": False, "transport": transport}}),
            )
        return self._manager

    @staticmethod
    async def _client(km: Any) -> Any:
        client = km.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=START_TIMEOUT)
        except BaseException:
            client.stop_channels()
            raise
        return client

    # -- running ----------------------------------------------------------------------

    async def run(
        self, kernel: AgentKernel, code: str, seconds: float, outputs: Outputs | None = None
    ) -> Execution:
        """Run ``code`` in ``kernel`` (after any run already in it) for at most
        ``seconds``; a timeout interrupts and restarts it, a dead kernel is started
        again; the notes say which. ``outputs`` collects the outputs (see
        :func:`~.execution.execute`).

        What must finish even when the agent stops waiting (the interrupt after a
        cancelled run, a restart) runs in a task of its own that keeps the kernel's turn
        until it is done: the SDK cancels a request's task at every await once it is
        cancelled, and the next run must not start while the kernel still settles."""
        await kernel.lock.acquire()
        handed_over = False
        try:
            kernel.last_used = time.monotonic()
            try:
                done = await execute(
                    kernel.client,
                    code,
                    seconds=seconds,
                    max_output_bytes=self.limits.max_output_bytes,
                    alive=kernel.manager.is_alive,
                    outputs=outputs,
                )
            except asyncio.CancelledError:
                # The agent cancelled the call: stop the code, keep the kernel.
                handed_over = True
                self._hand_over(kernel, self._interrupt(kernel))
                raise
            done.notes.extend(kernel.notes)
            kernel.notes.clear()
            if kernel.ended is not None:  # shut down while it ran (its session ended)
                done.notes.append(f"The kernel was shut down during this run: {kernel.ended}.")
            elif done.status in ("timeout", "died"):
                handed_over = True
                timed_out = done.status == "timeout"
                await asyncio.shield(self._hand_over(kernel, self._settle(kernel, timed_out)))
                done.notes.append(_TIMEOUT_NOTE.format(seconds) if timed_out else self._died_note)
            elif done.status == "error" and self.limits.memory_limit_mb > 0:
                if any(o.get("ename") == "MemoryError" for o in done.outputs.items):
                    done.notes.append(
                        "The kernel may use at most "
                        f"{self.limits.memory_limit_mb:,} MiB of address space "
                        "(DodoApp.code_mode_memory_limit_mb): work in smaller pieces."
                    )
            return done
        finally:
            kernel.last_used = time.monotonic()
            if not handed_over:
                kernel.lock.release()

    @property
    def _died_note(self) -> str:
        return (
            "The kernel's process died during this run (out of memory? the limit is "
            f"DodoApp.code_mode_memory_limit_mb = {self.limits.memory_limit_mb}); it was "
            "started again, so every variable defined so far is gone."
        )

    async def reset(self, kernel: AgentKernel) -> None:
        """Restart ``kernel``: its state is gone, its token stays (shut down instead when
        it cannot restart: the session's next run starts a new one)."""
        await kernel.lock.acquire()
        await asyncio.shield(self._hand_over(kernel, self._settle(kernel, False)))

    def _hand_over(
        self, kernel: AgentKernel, work: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        """Run ``work`` in a task of its own that gives up ``kernel``'s turn (held by the
        caller) when it is done."""

        async def then_release() -> None:
            try:
                await work
            finally:
                kernel.lock.release()

        task = asyncio.ensure_future(then_release())
        self._aftercare.add(task)
        task.add_done_callback(self._aftercare.discard)
        return task

    async def _settle(self, kernel: AgentKernel, interrupt: bool) -> None:
        """After a run that timed out (``interrupt``) or whose kernel died: a restarted
        kernel, or none (shut down) when even that fails."""
        if interrupt:
            await self._interrupt(kernel)
        try:
            await self._restart(kernel)
        except Exception as e:
            log.error("dodo code mode: kernel %s did not restart: %s", kernel.kernel_id[:8], e)
            await self.shutdown(kernel, "it could not be restarted (the server log says why)")

    @staticmethod
    async def _interrupt(kernel: AgentKernel) -> None:
        """Interrupt the code ``kernel`` runs and wait (a little) until it is idle."""
        with contextlib.suppress(Exception):
            await kernel.manager.interrupt_kernel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_idle(kernel.client), INTERRUPT_GRACE)

    async def _restart(self, kernel: AgentKernel) -> None:
        kernel.client.stop_channels()
        await kernel.manager.restart_kernel(now=True)
        kernel.client = await self._client(kernel.manager)
        kernel.started_at = time.monotonic()
        self.starts += 1

    # -- ending -----------------------------------------------------------------------

    async def shutdown(self, kernel: AgentKernel, reason: str) -> None:
        """Shut ``kernel`` down and delete its token; ``reason`` is kept for its session."""
        if self._kernels.pop(kernel.kernel_id, None) is None:
            return
        kernel.ended = reason
        kernel.client.stop_channels()
        try:
            await self._manager.shutdown_kernel(kernel.kernel_id, now=self._stopped)
        except Exception as e:  # already gone: nothing left to stop
            log.warning("dodo code mode: kernel %s: %s", kernel.kernel_id[:8], e)
        with contextlib.suppress(OSError):
            report_path(kernel.manager.connection_file).unlink(missing_ok=True)
        if kernel.ipython_dir:
            await asyncio.to_thread(shutil.rmtree, kernel.ipython_dir, True)
        await self._forget_token(kernel.username, kernel.token_id)
        log.info("dodo code mode: kernel %s shut down: %s", kernel.kernel_id[:8], reason)

    async def _forget_token(self, username: str, token_id: str) -> None:
        try:
            await self.tokens.delete(username, token_id)
        except NotFound:
            pass
        except Exception as e:  # the store may be down: the token expires on its own
            log.warning("dodo code mode: could not delete a kernel's token: %s", e)

    def _watch(self) -> None:
        if self._culler is None or self._culler.done():
            self._culler = asyncio.ensure_future(self._cull_forever())

    async def _cull_forever(self) -> None:
        idle = self.limits.idle_timeout
        period = min(max(idle / 4, 0.25), 60.0) if idle > 0 else 60.0
        while self._kernels:
            await asyncio.sleep(period)
            await self.cull()

    async def cull(self) -> None:
        """Shut down kernels idle too long, or about to outlive their token."""
        now = time.monotonic()
        idle = self.limits.idle_timeout
        max_age = TOKEN_LIFETIME.total_seconds() - _TOKEN_MARGIN_S
        for kernel in list(self._kernels.values()):
            if kernel.busy:
                continue
            if idle > 0 and now - kernel.last_used > idle:
                await self.shutdown(
                    kernel,
                    f"it was idle for more than {idle:g} s (DodoApp.code_mode_idle_timeout)",
                )
            elif now - kernel.started_at > max_age:
                await self.shutdown(kernel, "its gateway token was about to expire")

    async def stop(self) -> None:
        """Shut every kernel down and delete their tokens (the server stops)."""
        self._stopped = True
        if self._culler is not None:
            self._culler.cancel()
        for task in list(self._aftercare):
            task.cancel()
        for kernel in list(self._kernels.values()):
            await self.shutdown(kernel, "the Jupyter server stopped")
        if self._manager is not None:
            with contextlib.suppress(Exception):
                await self._manager.shutdown_all(now=True)
        if self._folder is not None:
            await asyncio.to_thread(shutil.rmtree, self._folder, True)


async def _idle(client: Any) -> None:
    """Read IOPub until the kernel says it is idle (after an interrupt)."""
    while True:
        msg = await client.get_iopub_msg()
        if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
            return
