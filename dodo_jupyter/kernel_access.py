"""Kernels get the gateway: at start the server mints its owner a server-lifetime gateway
token and puts ``DODO_MCP_URL`` and ``DODO_MCP_TOKEN`` into its own environment, which the
kernels it starts inherit (``DodoApp.kernel_access``); at stop the token is deleted."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from .gateway.caller import KERNEL_TOKEN_KIND

if TYPE_CHECKING:
    from .runtime import DodoRuntime

__all__ = ["MCP_TOKEN_ENV", "MCP_URL_ENV", "export_kernel_access", "revoke_kernel_access"]

log = logging.getLogger("dodo_jupyter")

#: Environment variables kernels read to reach the gateway (see docs/gateway.md).
MCP_URL_ENV = "DODO_MCP_URL"
MCP_TOKEN_ENV = "DODO_MCP_TOKEN"  # noqa: S105 - a variable name


async def export_kernel_access(runtime: DodoRuntime, gateway_url: str) -> None:
    """Mint the owner's kernel token and export the two variables. Kernel tokens left by
    a server that did not stop cleanly are deleted first."""
    await runtime.ready()
    owner = runtime.resolver.owner
    await runtime.tokens.delete_kind(owner, KERNEL_TOKEN_KIND)
    new = await runtime.tokens.create(
        owner,
        "Jupyter kernels (this server's lifetime)",
        kind=KERNEL_TOKEN_KIND,
        expires=False,
    )
    os.environ[MCP_URL_ENV] = gateway_url
    os.environ[MCP_TOKEN_ENV] = new.token
    log.info("dodo: kernels reach the MCP gateway at %s (%s)", gateway_url, MCP_URL_ENV)


async def revoke_kernel_access(runtime: DodoRuntime) -> None:
    """Delete the kernel token and take the variables out of the environment."""
    os.environ.pop(MCP_TOKEN_ENV, None)
    os.environ.pop(MCP_URL_ENV, None)
    if runtime.opened:
        await runtime.tokens.delete_kind(runtime.resolver.owner, KERNEL_TOKEN_KIND)
