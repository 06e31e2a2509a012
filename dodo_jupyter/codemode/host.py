"""Code mode inside one Jupyter server (:class:`CodeModeHost`): its MCP endpoint's task,
its service (built on first use), its notebooks, and their end when the server stops.

``DodoApp`` makes one at start, whether code mode is on or not (the list of agent
notebooks answers either way), and puts it in the runtime as ``runtime.code_mode``.
Light to build: the endpoint (the MCP SDK's server side) is imported on a thread with
the first request, and the kernels' machinery with the first kernel, which is when the
paths to hide from kernels and to make read-only to them are found
(:func:`~.isolation.hidden_paths`, :func:`~.isolation.read_only_paths`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..gateway.host import HostedTask
from .notebooks import RunNotebooks

if TYPE_CHECKING:
    from ..runtime import DodoRuntime
    from .endpoint import CodeModeEndpoint
    from .service import CodeMode

__all__ = ["CodeModeHost", "server_runtime_dirs"]

log = logging.getLogger("dodo_jupyter.codemode")


def server_runtime_dirs(serverapp: Any) -> list[str]:
    """Where a Jupyter server keeps its credentials: the Jupyter runtime directory, the
    server's own (``ServerApp.runtime_dir``) and its kernels' connection files' folder,
    when they are elsewhere."""
    from jupyter_core.paths import jupyter_runtime_dir

    found: list[Any] = [jupyter_runtime_dir()]
    if serverapp is not None:
        found.append(getattr(serverapp, "runtime_dir", None))
        found.append(getattr(getattr(serverapp, "kernel_manager", None), "connection_dir", None))
    return list(dict.fromkeys(str(d) for d in found if d))


class _EndpointTask(HostedTask["CodeModeEndpoint"]):
    module_name = "dodo_jupyter.codemode.endpoint"
    title = "dodo's code-mode endpoint"
    task_name = "dodo-code-mode-endpoint"

    def __init__(self, host: CodeModeHost) -> None:
        super().__init__()
        self._host = host

    def make(self, module: ModuleType) -> CodeModeEndpoint:
        from .definitions import code_mode_tools

        settings = self._host.runtime.settings
        tools = code_mode_tools(
            run_timeout=settings.code_mode_run_timeout,
            max_run_timeout=settings.code_mode_max_run_timeout,
            max_output_bytes=settings.code_mode_max_output_bytes,
            memory_limit_mb=settings.code_mode_memory_limit_mb,
            idle_timeout=settings.code_mode_idle_timeout,
        )
        runtime = self._host.runtime
        endpoint: CodeModeEndpoint = module.CodeModeEndpoint(
            self._host.service,
            tools,
            max_request_body_size=settings.max_request_bytes,
            on_use=lambda caller: runtime.tokens.note_use(caller.agent),
        )
        return endpoint


class CodeModeHost:
    """See the module docstring.

    Parameters
    ----------
    runtime:
        The runtime (its settings, tokens, gateway and approvals).
    root_dir:
        The Jupyter server's ``root_dir`` (the notebooks' folder is below it; neither is
        made read-only to kernels).
    gateway_url:
        Returns the gateway URL kernels call tools through (asked when the first kernel
        starts: the server's port is known by then).
    runtime_dirs:
        Returns the server's runtime directories (:func:`server_runtime_dirs`), hidden
        from kernels; asked when the first kernel starts.
    """

    def __init__(
        self,
        runtime: DodoRuntime,
        *,
        root_dir: Path,
        gateway_url: Callable[[], str],
        runtime_dirs: Callable[[], list[str]] = lambda: server_runtime_dirs(None),
    ) -> None:
        self.runtime = runtime
        self.enabled = runtime.settings.code_mode
        self.gateway_url = gateway_url
        self.runtime_dirs = runtime_dirs
        self.root_dir = root_dir
        self.notebooks = RunNotebooks(root_dir, runtime.settings.code_mode_notebook_dir)
        self.endpoint = _EndpointTask(self)
        self._service: asyncio.Future[CodeMode] | None = None

    async def service(self) -> CodeMode:
        """The code-mode service, built once the gateway's services are."""
        if self._service is None:
            self._service = asyncio.ensure_future(self._build())
        try:
            return await asyncio.shield(self._service)
        except Exception:
            self._service = None  # the next request tries again
            raise

    async def _build(self) -> CodeMode:
        from .isolation import hidden_paths, read_only_paths
        from .kernels import AgentKernels, KernelLimits
        from .service import CodeMode

        runtime = self.runtime
        await runtime.mcp_ready()
        settings = runtime.settings
        isolation = settings.code_mode_filesystem_isolation
        hidden: tuple[str, ...] = ()
        read_only: list[str] = []
        if isolation != "off":
            hidden = tuple(
                hidden_paths(
                    db_url=settings.db_url,
                    key_file=settings.key_file,
                    runtime_dirs=self.runtime_dirs(),
                    extra=settings.code_mode_hidden_paths,
                )
            )
            read_only, left = await asyncio.to_thread(
                read_only_paths,
                keep={
                    str(self.root_dir): "the Jupyter server's root_dir",
                    str(self.notebooks.directory): "the agent notebooks' folder",
                },
                extra=settings.code_mode_read_only_paths,
            )
            for remark in left:
                log.warning("dodo code mode: %s", remark)
        kernels = AgentKernels(
            runtime.tokens,
            gateway_url=self.gateway_url(),
            cwd=self.notebooks.directory,
            limits=KernelLimits(
                max_kernels=settings.code_mode_max_kernels,
                idle_timeout=settings.code_mode_idle_timeout,
                memory_limit_mb=settings.code_mode_memory_limit_mb,
                max_output_bytes=settings.code_mode_max_output_bytes,
                env_keep=tuple(settings.code_mode_env_keep),
                isolation=isolation,
                hidden_paths=hidden,
                read_only_paths=tuple(read_only),
            ),
            server_env=settings.environ,
        )
        return CodeMode(
            gateway=runtime.gateway,
            approvals=runtime.approvals,
            kernels=kernels,
            notebooks=self.notebooks,
            approval=settings.code_mode_approval,
            run_timeout=settings.code_mode_run_timeout,
            max_run_timeout=settings.code_mode_max_run_timeout,
        )

    async def notebook_list(self) -> list[dict[str, Any]]:
        """The agent notebooks, each with whether its session has a running kernel."""
        found = await self.notebooks.listing()
        active: set[str] = set()
        if self._service is not None and self._service.done() and not self._service.exception():
            active = self._service.result().active_notebooks()
        return [{**record, "active": record["path"] in active} for record in found]

    async def stop(self) -> None:
        """End the endpoint, then every kernel (their tokens are deleted)."""
        await self.endpoint.stop()
        service = self._service
        if service is not None and service.done() and not service.cancelled():
            if service.exception() is None:
                await service.result().stop()
        elif service is not None:
            service.cancel()
