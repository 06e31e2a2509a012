"""DodoApp: the Jupyter server extension and every setting it has.

Configure it like any Jupyter server setting, e.g. in ``jupyter_server_config.py``::

    c.DodoApp.db_url = "postgresql+psycopg://dodo@db/dodo"
    c.DodoApp.catalog = [{"id": "weather", "url": "https://weather.example/mcp"}]

Every trait below has help text; ``jupyter server --help-all`` lists them too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp

from ._version import __version__
from .agents_service import gateway_url_of
from .codemode.host import CodeModeHost, server_runtime_dirs
from .handlers import routes
from .jupyter_ai import JupyterAIBuiltin
from .kernel_access import export_kernel_access, revoke_kernel_access
from .logs import join_app_log, leave_app_log
from .maintenance import maintain
from .server_info import remove_info, write_info
from .settings import DodoSettings

__all__ = ["DodoApp"]


class DodoApp(ExtensionApp, DodoSettings):
    """Connect Jupyter users and their agents to remote MCP servers."""

    name = "dodo"
    version = __version__
    description = __doc__
    load_other_extensions = True

    def base_url_for_runtime(self) -> str:
        return self.serverapp.base_url if self.serverapp is not None else "/"

    def _app_log(self) -> Any:
        """Jupyter's own logger (ServerApp's), whose handlers and level dodo's lines use."""
        return self.serverapp.log if self.serverapp is not None else self.log

    def initialize_settings(self) -> None:
        join_app_log(self._app_log())  # dodo_jupyter.* lines in Jupyter's format, INFO on
        self.runtime = self.make_runtime()
        self.settings["dodo"] = self.runtime
        serverapp = self.serverapp
        self.runtime.code_mode = CodeModeHost(
            self.runtime,
            root_dir=Path(serverapp.root_dir if serverapp is not None else "."),
            gateway_url=lambda: gateway_url_of(serverapp),
            runtime_dirs=lambda: server_runtime_dirs(serverapp),
        )
        self.log.info(
            "dodo %s: %s mode, owner %r, catalog from %s",
            __version__,
            self.runtime.resolver.mode,
            self.runtime.resolver.owner,
            self.hub_catalog_url or "this server's store",
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(routes())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        self.runtime.start()  # the gateway endpoint starts with its first request
        self._maintenance = asyncio.ensure_future(maintain(self.runtime))
        url = gateway_url_of(serverapp)
        try:  # so that `jupyter dodo` uses this server's store
            write_info(self.db_url, self.key_file, url)
        except OSError as e:
            self.log.warning("dodo: jupyter dodo will not find this server's store: %s", e)
        if self.kernel_access:
            self._kernel_access = asyncio.ensure_future(export_kernel_access(self.runtime, url))
            self._kernel_access.add_done_callback(self._kernel_access_done)
        self.runtime.jupyter_ai = JupyterAIBuiltin(
            self.runtime, serverapp, url, enabled=self.jupyter_ai_builtin
        )
        self.runtime.jupyter_ai.start().add_done_callback(self._jupyter_ai_done)

    def _kernel_access_done(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.error("dodo: kernels get no gateway token: %s", task.exception())

    def _jupyter_ai_done(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.error("dodo: Jupyter AI's built-in entry has no token: %s", task.exception())

    async def stop_extension(self) -> None:
        remove_info()
        maintenance = getattr(self, "_maintenance", None)
        if maintenance is not None:
            maintenance.cancel()
        if self.kernel_access:
            try:
                await revoke_kernel_access(self.runtime)
            except Exception as e:  # the store may be down; the token dies with its expiry
                self.log.warning("dodo: could not delete the kernel token: %s", e)
        if self.runtime.jupyter_ai is not None:
            try:
                await self.runtime.jupyter_ai.stop()
            except Exception as e:  # the store may be down; the next start deletes it
                self.log.warning("dodo: could not delete Jupyter AI's built-in token: %s", e)
        await self.runtime.stop()
        leave_app_log(self._app_log())
