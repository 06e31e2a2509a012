"""Talking to upstream MCP servers: :mod:`.messages` (what dodo's client sends and
raises), :mod:`.wire` (MCP over streamable HTTP, the client side), :mod:`.legacy_sse`
(the deprecated HTTP+SSE transport), :mod:`.session` (one client per server), :mod:`.short`
(short sessions) and :mod:`.auth` (probe, credentials, rejections)."""

from .auth import AuthRejected, ConnectionAuth, ProbeResult, probe
from .session import UpstreamSession
from .short import Upstream

__all__ = ["AuthRejected", "ConnectionAuth", "ProbeResult", "Upstream", "UpstreamSession", "probe"]
