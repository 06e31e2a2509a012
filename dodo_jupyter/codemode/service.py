"""Code mode's three tools (:class:`CodeMode`): ``search_tools``, ``run_python`` and
``reset``, for one caller and one session at a time, without HTTP or the MCP SDK.

**Sessions.** Each downstream MCP session has its kernel and its notebook
(:class:`Session`), found by a key (:func:`session_key`): the ``Mcp-Session-Id`` of a
2025-11-25 session; for a 2026-07-28 client, which has no session, the gateway token it
presents (one kernel per token: what one agent configuration shares); for a caller
without a token (the service token, Jupyter's own login), one per user and credential.
A session's kernel is started at its first run; when it was shut down meanwhile (idle,
to make room, a failed restart), the next run starts a new one, continues the same
notebook, and the result says that earlier variables are gone. When the MCP session
ends (``DELETE``, the SDK's idle timeout), its kernel is shut down.

**Approval.** With ``DodoApp.code_mode_approval = 'always'`` each run waits for the
owner's decision through the same prompt as tool calls
(:meth:`~dodo_jupyter.governance.approvals.Approvals.ask`, server ``code_mode``, tool
``run_python``, arguments ``{"code": …}``); "for this session" approves the rest of the
session's runs. A denial, a timeout or no open JupyterLab is a tool error saying which.

Every failure is a tool error (``isError``) whose text tells the agent what to do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import mcp_types as types

from ..exceptions import DodoError
from ..gateway.routes import tool_error
from .execution import Execution, Outputs
from .notebooks import RunNotebooks, now_local
from .results import tool_result

if TYPE_CHECKING:
    from ..gateway.caller import Caller
    from ..gateway.tool_gateway import ToolGateway
    from ..governance.approvals import Approvals
    from .kernels import AgentKernel, AgentKernels

__all__ = ["APPROVAL_SERVER_ID", "CodeMode", "Session", "session_key"]

log = logging.getLogger("dodo_jupyter.codemode")

#: The ``server_id`` a run waiting for approval is shown with.
APPROVAL_SERVER_ID = "code_mode"
#: The most sessions remembered; the oldest without a kernel are forgotten first.
MAX_SESSIONS = 1000
DETAILS = ("names", "signatures", "full")
#: The note of a run the agent cancelled, in its notebook cell.
CANCELLED_NOTE = (
    "The agent cancelled this run before it ended: the kernel was interrupted; the "
    "outputs above are what it printed until then."
)


def session_key(caller: Caller, mcp_session_id: str | None) -> str:
    """Which session (kernel, notebook) a call belongs to: see the module docstring."""
    if mcp_session_id:
        return session_key_of_id(mcp_session_id)
    if caller.agent.token_id:
        return f"t:{caller.agent.token_id}"
    return f"u:{caller.username}:{caller.via}"


@dataclass(eq=False)
class Session:
    """One agent session's kernel and notebook."""

    key: str
    username: str
    agent: dict[str, Any]
    notebook: str
    started: datetime
    kernel: AgentKernel | None = None
    runs: int = 0
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _agent_of(caller: Caller) -> dict[str, Any]:
    agent = caller.agent
    return {
        "client": agent.client,
        "token_label": caller.token_label or None,
        "token_id": agent.token_id,
        "chat_id": agent.chat_id,
        "persona_id": agent.persona_id,
    }


class CodeMode:
    """The tools of ``{base_url}dodo/mcp/codemode`` (see the module docstring).

    Parameters
    ----------
    gateway:
        Lists the caller's tools (``search_tools``).
    approvals:
        Asks the owner (``approval == "always"``).
    kernels:
        Starts, runs and ends the sessions' kernels.
    notebooks:
        Where each run is recorded.
    approval:
        ``"always"`` or ``"never"`` (``DodoApp.code_mode_approval``).
    run_timeout, max_run_timeout:
        Seconds a run may take when the agent says nothing, and at most.
    """

    def __init__(
        self,
        *,
        gateway: ToolGateway,
        approvals: Approvals,
        kernels: AgentKernels,
        notebooks: RunNotebooks,
        approval: Literal["always", "never"] | str = "never",
        run_timeout: float = 60.0,
        max_run_timeout: float = 600.0,
    ) -> None:
        self.gateway = gateway
        self.approvals = approvals
        self.kernels = kernels
        self.notebooks = notebooks
        self.approval = approval
        self.run_timeout = run_timeout
        self.max_run_timeout = max_run_timeout
        self._sessions: dict[str, Session] = {}
        self._endings: set[asyncio.Future[None]] = set()

    # -- the tools ----------------------------------------------------------------------

    async def search_tools(
        self, caller: Caller, query: object, detail: object
    ) -> types.CallToolResult:
        """The caller's tools matching ``query``, as text (``detail``: names, signatures
        or full)."""
        from .search import search_tools

        if not isinstance(query, str):
            return tool_error("search_tools: 'query' must be a string ('' lists every tool).")
        if detail not in DETAILS:
            return tool_error(
                f"search_tools: 'detail' must be one of {', '.join(DETAILS)}, not {detail!r}."
            )
        try:
            tools = await self.gateway.list_tools(caller.username)
        except DodoError as e:
            return tool_error(f"search_tools: {e.message}")
        text = search_tools(tools, query, detail)  # type: ignore[arg-type]
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    async def run_python(
        self, caller: Caller, key: str, code: object, timeout_s: object = None
    ) -> types.CallToolResult:
        """Run ``code`` in the session's kernel (see the module docstring)."""
        if not isinstance(code, str) or not code.strip():
            return tool_error("run_python: 'code' must be Python source code (a string).")
        timeout = self._timeout(timeout_s)
        if isinstance(timeout, str):
            return tool_error(timeout)
        refusal = await self._approve(caller, key, code)
        if refusal is not None:
            return tool_error(refusal)
        session = self._session(caller, key)
        try:
            kernel, replaced = await self._kernel(session)
        except DodoError as e:
            return tool_error(f"run_python: {e.message}")
        outputs = Outputs(self.kernels.limits.max_output_bytes)
        started = time.monotonic()
        try:
            execution = await self.kernels.run(kernel, code, timeout, outputs)
        except asyncio.CancelledError:  # the notebook keeps what the run did until then
            cancelled = Execution("cancelled", outputs, time.monotonic() - started)
            cancelled.notes.append(CANCELLED_NOTE)
            self._record(session, cancelled, code, replaced)
            raise
        before = []
        if replaced:
            before.append(
                f"This session's kernel was replaced because {replaced}: variables, imports "
                "and functions of earlier runs are gone."
            )
        failed = self.notebooks.take_failure(session.notebook)
        if failed is not None:
            execution.notes.append(failed)
        self._record(session, execution, code, replaced)
        return tool_result(execution, before=before)

    def _record(
        self, session: Session, execution: Execution, code: str, replaced: str | None
    ) -> None:
        """Count the run and add it to the session's notebook (after the answer)."""
        session.runs += 1
        session.last_used = time.monotonic()
        self.notebooks.append_later(
            session.notebook,
            execution,
            code,
            agent=session.agent,
            started=session.started,
            new_kernel=replaced,
        )

    async def reset(self, caller: Caller, key: str) -> types.CallToolResult:
        """Restart the session's kernel (its state is gone; its notebook goes on)."""
        session = self._sessions.get(key)
        kernel = session.kernel if session is not None else None
        if session is None or session.username != caller.username or kernel is None:
            text = "There is no kernel to reset: the next run_python starts a fresh one."
        elif kernel.ended is not None:
            text = (
                f"The kernel had stopped already ({kernel.ended}); the next run starts a fresh one."
            )
        else:
            await self.kernels.reset(kernel)
            text = "The kernel was restarted: every variable, import and function is gone."
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    # -- sessions ---------------------------------------------------------------------

    def _session(self, caller: Caller, key: str) -> Session:
        session = self._sessions.get(key)
        if session is not None and session.username == caller.username:
            return session
        agent = _agent_of(caller)
        started = now_local()
        notebook = self.notebooks.new_path(agent, started)
        session = Session(key, caller.username, agent, notebook, started)
        self._sessions[key] = session
        if len(self._sessions) > MAX_SESSIONS:
            self._forget_oldest()
        return session

    def _forget_oldest(self) -> None:
        resting = [s for s in self._sessions.values() if s.kernel is None or s.kernel.ended]
        surplus = len(self._sessions) - MAX_SESSIONS
        for session in sorted(resting, key=lambda s: s.last_used)[:surplus]:
            self._sessions.pop(session.key, None)

    async def _kernel(self, session: Session) -> tuple[AgentKernel, str | None]:
        """The session's running kernel, and why it is a new one (None: it is not)."""
        async with session.lock:
            kernel = session.kernel
            if kernel is not None and kernel.ended is None:
                return kernel, None
            who = session.agent.get("client") or session.agent.get("token_label") or "agent"
            label = f"Code mode: {who} ({session.notebook.rsplit('/', 1)[-1]})"
            session.kernel = await self.kernels.start(session.username, label)
            return session.kernel, kernel.ended if kernel is not None else None

    def end_session(self, mcp_session_id: str) -> None:
        """The MCP session ``mcp_session_id`` ended: shut its kernel down."""
        session = self._sessions.pop(session_key_of_id(mcp_session_id), None)
        if session is None or session.kernel is None:
            return
        ending = asyncio.ensure_future(
            self.kernels.shutdown(session.kernel, "its MCP session ended")
        )
        self._endings.add(ending)
        ending.add_done_callback(self._endings.discard)

    def active_notebooks(self) -> set[str]:
        """The notebooks whose session has a running kernel."""
        return {
            s.notebook
            for s in self._sessions.values()
            if s.kernel is not None and not s.kernel.ended
        }

    async def stop(self) -> None:
        """Shut every kernel down (the server stops)."""
        if self._endings:
            await asyncio.gather(*list(self._endings), return_exceptions=True)
        await self.kernels.stop()
        await self.notebooks.flush()

    # -- checks -------------------------------------------------------------------------

    def _timeout(self, value: object) -> float | str:
        """The run's timeout in seconds, or what is wrong with ``value``."""
        if value is None:
            return min(self.run_timeout, self.max_run_timeout)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            return "run_python: 'timeout_s' must be a positive number of seconds."
        return min(float(value), self.max_run_timeout)

    async def _approve(self, caller: Caller, key: str, code: str) -> str | None:
        """None when the run may go ahead; else why not."""
        if self.approval != "always":
            return None
        context = caller.call_context()
        agent = {
            name: value
            for name, value in (
                ("client", context.client),
                ("chat_id", context.chat_id),
                ("persona_id", context.persona_id),
                ("token", context.token_label),
                ("token_id", context.token_id),
                ("path", "code_mode"),
            )
            if value
        }
        verdict = await self.approvals.ask(
            caller.username,
            server_id=APPROVAL_SERVER_ID,
            tool="run_python",
            arguments={"code": code},
            agent=agent,
            session_key=key,
        )
        if verdict == "approved":
            return None
        if verdict == "denied":
            return "run_python: the user denied running this code. Ask them what to do instead."
        if verdict == "timeout":
            return (
                "run_python: this run needs the user's approval (DodoApp.code_mode_approval "
                f"= 'always'), and none came within {self.approvals.timeout:.0f} s."
            )
        return (
            "run_python: this run needs the user's approval in JupyterLab, and no JupyterLab "
            "of theirs is open: ask them to open it and try again."
        )


def session_key_of_id(mcp_session_id: str) -> str:
    """The key of the stateful MCP session ``mcp_session_id`` (:func:`session_key`)."""
    return f"s:{mcp_session_id}"
