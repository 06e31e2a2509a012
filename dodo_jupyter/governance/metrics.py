"""dodo's Prometheus metrics, in prometheus_client's default registry, which jupyter_server
serves at ``{base_url}metrics`` with its own (the hub catalog service serves the same
registry at its ``/metrics``).

Label values are bounded: ``server`` is a catalog id (or ``custom`` for a server a user
added outside the catalog), never a URL; ``outcome``, ``state`` and ``decision`` come
from fixed sets.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "APPROVALS",
    "OAUTH_REFRESHES",
    "TOOL_CALLS",
    "TOOL_CALL_SECONDS",
    "UPSTREAM_CONNECTIONS",
    "server_label",
]

TOOL_CALLS = Counter(
    "dodo_gateway_tool_calls",
    "Tool calls through dodo (any path), by server and outcome.",
    ["server", "outcome"],
)
TOOL_CALL_SECONDS = Histogram(
    "dodo_gateway_tool_call_duration_seconds",
    "How long tool calls took, approval waits included, by server.",
    ["server"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
UPSTREAM_CONNECTIONS = Gauge(
    "dodo_upstream_connections",
    "Users' connections to MCP servers, by state (connected, needs_auth, error, authenticating).",
    ["state"],
)
OAUTH_REFRESHES = Counter(
    "dodo_oauth_refresh",
    "Access-token refreshes, by outcome (ok, needs_auth, error).",
    ["outcome"],
)
APPROVALS = Counter(
    "dodo_approvals",
    "Calls that waited for approval, by how they ended (approved, denied, timeout, no_lab).",
    ["decision"],
)

#: The label of servers outside the catalog.
CUSTOM = "custom"


def server_label(catalog_id: str | None) -> str:
    """The ``server`` label of a connection: its catalog id, or ``custom``."""
    return catalog_id or CUSTOM
