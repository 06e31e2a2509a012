"""Talking to upstream MCP servers: :mod:`.wire` (MCP over streamable HTTP, the client
side), :mod:`.session` (one client per server, short sessions), :mod:`.auth` (probe,
credentials, rejections) and :mod:`.legacy_sse` (the deprecated HTTP+SSE transport)."""

from .auth import AuthRejected, ConnectionAuth, ProbeResult, probe
from .session import Upstream, UpstreamSession

__all__ = ["AuthRejected", "ConnectionAuth", "ProbeResult", "Upstream", "UpstreamSession", "probe"]
