"""Hosting the gateway's MCP endpoint inside the Jupyter server's own event loop.

The MCP SDK's ``StreamableHTTPSessionManager`` keeps every stateful session in an anyio
task group, and an anyio task group must be entered and left by the same task. The
:class:`EndpointHost` owns that one long-lived task: :meth:`EndpointHost.start` creates it
on the server's loop when the extension starts, and :meth:`EndpointHost.stop` sets the
event the task waits on, so the task group is left by the task that entered it. While the
host stops (and afterwards) :meth:`EndpointHost.endpoint` raises
:class:`~dodo_jupyter.exceptions.Unavailable`: keep-alive connections still deliver
requests after ``stop_extension`` began, and they get a 503 instead of a crash.

This module is light on purpose: the MCP server side of the SDK (``mcp.server``,
starlette) costs about 0.4 s to import, so the task imports
:mod:`dodo_jupyter.gateway.endpoint` on a thread and server start-up stays fast.

:class:`HostedTask` is that task for any MCP endpoint (code mode's is another,
:mod:`dodo_jupyter.codemode.host`); :class:`EndpointHost` hosts the gateway's.

Who a request acts for and the hop count are in :mod:`.caller`; how long a broken event
stream can be resumed is :class:`ResumeLimits` (the event store itself is
:mod:`.event_store`, which needs the SDK and so is imported with the endpoint).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .._imports import import_module
from ..exceptions import Unavailable
from .caller import Caller
from .resume_limits import ResumeLimits
from .tool_gateway import ToolGateway

if TYPE_CHECKING:
    from .endpoint import GatewayEndpoint

__all__ = ["EndpointHost", "HostedEndpoint", "HostedTask", "ResumeLimits"]

log = logging.getLogger("dodo_jupyter.gateway")

_ENDPOINT_MODULE = "dodo_jupyter.gateway.endpoint"


class HostedEndpoint(Protocol):
    """What a hosted MCP endpoint offers its host and the tornado handler."""

    async def run(self, started: Callable[[], None], stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; call ``started`` once requests can be handled."""

    def answers_in_json(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether a POST is served in the SDK's JSON form."""

    async def handle(
        self, scope: Any, receive: Any, send: Any, caller: Caller, *, in_json: bool = False
    ) -> None:
        """Serve one HTTP request (ASGI) for ``caller``."""


E = TypeVar("E", bound=HostedEndpoint)


class HostedTask(Generic[E]):
    """Runs an MCP endpoint in one long-lived task; see the module docstring.

    Subclasses name the endpoint's module (:attr:`module_name`, imported on a thread)
    and build the endpoint from it (:meth:`make`).

    Parameters
    ----------
    stop_timeout:
        Seconds :meth:`stop` waits for the sessions to wind down before cancelling.
    """

    module_name = _ENDPOINT_MODULE
    #: For log lines: which endpoint this is.
    title = "dodo's MCP endpoint"
    #: The name of its asyncio task.
    task_name = "dodo-gateway-endpoint"

    def __init__(self, *, stop_timeout: float = 5.0) -> None:
        self.stop_timeout = stop_timeout
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._running: asyncio.Future[E] | None = None
        self._stopping = False

    def make(self, module: ModuleType) -> E:
        """The endpoint, built from its (imported) module."""
        raise NotImplementedError

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called: requests get 503 from then on."""
        return self._stopping

    def start(self) -> None:
        """Create the endpoint's task on the running event loop (the extension's start)."""
        if self._task is not None or self._stopping:
            return
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._running = loop.create_future()
        self._task = loop.create_task(self._serve(), name=self.task_name)

    async def _serve(self) -> None:
        assert self._stop is not None and self._running is not None
        running = self._running
        try:
            loop = asyncio.get_running_loop()
            module = await loop.run_in_executor(None, import_module, self.module_name)
            endpoint = self.make(module)

            def started() -> None:
                if not running.done():
                    running.set_result(endpoint)

            await endpoint.run(started, self._stop)
        except Exception as e:
            log.error("%s stopped with an error: %s", self.title, e, exc_info=e)
        finally:
            if not running.done():
                running.cancel()  # its waiters answer 503
            if not self._stopping:
                # Ended on its own (a crash): the next request starts a fresh endpoint.
                self._task = self._running = None

    async def endpoint(self) -> E:
        """The running endpoint; :class:`Unavailable` while stopping or when it failed."""
        if self._stopping:
            raise Unavailable("dodo is shutting down; try again once the server is back.")
        if self._running is None:
            self.start()
        assert self._running is not None
        try:
            return await asyncio.shield(self._running)
        except (Exception, asyncio.CancelledError):
            if self._stopping:
                raise Unavailable(
                    "dodo is shutting down; try again once the server is back."
                ) from None
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            raise Unavailable(
                f"{self.title} could not start; the Jupyter server log says why."
            ) from None

    async def stop(self) -> None:
        """Refuse new requests, then end the sessions and the endpoint's task."""
        self._stopping = True
        task, stop = self._task, self._stop
        if task is None or stop is None:
            return
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.stop_timeout)
        except TimeoutError:
            log.warning("%s did not stop within %.0f s", self.title, self.stop_timeout)
            task.cancel()


class EndpointHost(HostedTask["GatewayEndpoint"]):
    """Hosts the gateway's MCP endpoint (``{base_url}dodo/mcp``).

    Parameters
    ----------
    gateway:
        Returns the gateway service (``runtime.gateway``) when a request needs it, so the
        service may be built after the host (the runtime opens on a thread).
    max_request_body_size:
        Largest MCP request body in bytes (``DodoApp.max_request_bytes``).
    session_idle_timeout:
        Seconds after which an idle stateful MCP session is closed.
    stop_timeout:
        Seconds :meth:`stop` waits for the sessions to wind down before cancelling.
    resume:
        How much of each session's event streams is kept for resuming them; None keeps
        nothing (no priming events, no replay).
    on_use:
        Told the caller (with its attribution) of every tool listing and call.
    """

    def __init__(
        self,
        gateway: Callable[[], ToolGateway],
        *,
        max_request_body_size: int = 4 * 1024 * 1024,
        session_idle_timeout: float = 30 * 60,
        stop_timeout: float = 5.0,
        resume: ResumeLimits | None = None,
        on_use: Callable[[Caller], None] | None = None,
    ) -> None:
        super().__init__(stop_timeout=stop_timeout)
        self._gateway = gateway
        self._on_use = on_use
        self.max_request_body_size = max_request_body_size
        self.session_idle_timeout = session_idle_timeout
        self.resume = resume

    def make(self, module: ModuleType) -> GatewayEndpoint:
        endpoint: GatewayEndpoint = module.GatewayEndpoint(
            self._gateway,
            max_request_body_size=self.max_request_body_size,
            session_idle_timeout=self.session_idle_timeout,
            resume=self.resume,
            on_use=self._on_use,
        )
        return endpoint
