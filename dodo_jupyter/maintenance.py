"""The runtime's background round, every :data:`MAINTENANCE_INTERVAL_S` seconds until the
server stops: the hub hygiene check (at start, then every ``hygiene_interval``), the hub
catalog copy brought up to date (so agents see changes without anyone opening the
catalog), the tool-call history pruned and forwarded to the hub catalog service, the
connection gauge counted, and idle upstream sessions closed. Each step that fails is
logged and tried again in the next round; none stops the others."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from .exceptions import DodoError

if TYPE_CHECKING:
    from .runtime import DodoRuntime

__all__ = [
    "MAINTENANCE_INTERVAL_S",
    "count_connections",
    "forward_history",
    "maintain",
    "refresh_hub_catalog",
]

log = logging.getLogger("dodo_jupyter")

#: Seconds between two rounds.
MAINTENANCE_INTERVAL_S = 60.0
#: The states the ``dodo_upstream_connections`` gauge reports.
CONNECTION_STATES = ("connected", "needs_auth", "error", "authenticating")


async def maintain(runtime: DodoRuntime, interval: float = MAINTENANCE_INTERVAL_S) -> None:
    """Run the rounds until cancelled (see the module docstring)."""
    every = runtime.settings.hygiene_interval
    next_hygiene = time.monotonic()
    while True:
        await refresh_hub_catalog(runtime)
        if every > 0 and time.monotonic() >= next_hygiene:
            next_hygiene = time.monotonic() + every
            try:
                await runtime.checked_hygiene()
            except Exception:  # a failed check changes nothing; the next one retries
                log.exception("dodo: the hub hygiene check failed")
        await asyncio.sleep(min(interval, every) if every > 0 else interval)
        if hasattr(runtime, "history"):
            await runtime.history.maintain()
            await count_connections(runtime)
            await forward_history(runtime)
        if hasattr(runtime, "gateway"):
            try:
                gateway = runtime.gateway
                closed = await gateway.pool.reap(keep=gateway.directory.keeps)
            except Exception:  # keep maintaining; the next round may do better
                log.exception("dodo: closing idle upstream sessions failed")
                continue
            if closed:
                log.debug("dodo: closed %d idle upstream session(s)", closed)


async def refresh_hub_catalog(runtime: DodoRuntime) -> None:
    """Hub-catalog mode: bring the store's copy of the hub catalog up to date."""
    if not runtime.settings.hub_catalog_url:
        return
    try:
        await runtime.ready()
        if runtime.hub_mirror is not None and await runtime.hub_mirror.refresh():
            runtime.catalog.cache.invalidate()
    except Exception:  # the copy stays as it is; the next round tries again
        log.exception("dodo: refreshing the hub catalog copy failed")


async def forward_history(runtime: DodoRuntime) -> int:
    """Hub-catalog mode: send the tool-call records the hub service lacks; how many went.
    While the service is unreachable they wait in the store."""
    if runtime.hub_client is None or not hasattr(runtime, "history"):
        return 0
    try:
        return await runtime.history.forward(runtime.hub_client.send_calls)
    except DodoError as e:
        log.warning("dodo: tool-call records wait for the hub service: %s", e.message)
        return 0


async def count_connections(runtime: DodoRuntime) -> None:
    """Set the ``dodo_upstream_connections`` gauge from the store."""
    from .governance.metrics import UPSTREAM_CONNECTIONS

    try:
        counts = await runtime.connections.rows.count_by_state()
    except Exception:  # the gauge keeps its last value; the next round tries again
        log.exception("dodo: counting connections for the metrics failed")
        return
    for state in CONNECTION_STATES:
        UPSTREAM_CONNECTIONS.labels(state).set(counts.get(state, 0))
