"""Guarded HTTP clients for one purpose: the base policy plus the hosts a flow may reach."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx2

from .guard import default_tls, guarded_client
from .policy import OutboundPolicy
from .transport import PooledTransport

__all__ = ["Outbound", "trusted_client"]


@dataclass(frozen=True)
class Outbound:
    """Builds guarded clients: ``policy`` (the administrator's allowlist and settings)
    widened by the hosts of the server at hand (its URL host and ``known_hosts``)."""

    policy: OutboundPolicy

    def for_hosts(self, hosts: Iterable[str]) -> OutboundPolicy:
        return self.policy.with_hosts(*hosts)

    def client(self, hosts: Iterable[str], **kwargs: Any) -> httpx2.AsyncClient:
        """A guarded client (discovery, registration, token requests, MCP sessions)."""
        return guarded_client(self.for_hosts(hosts), **kwargs)


def trusted_client(timeout: float, **kwargs: Any) -> httpx2.AsyncClient:
    """A client on dodo's HTTP stack without the SSRF guard, for the one service dodo is
    told to trust by its deployment: the JupyterHub API and the hub catalog service
    (internal addresses, plain http). Never for a URL a user or a catalog gave."""
    return httpx2.AsyncClient(
        transport=PooledTransport(default_tls()), timeout=timeout, trust_env=False, **kwargs
    )
