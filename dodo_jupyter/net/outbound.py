"""Guarded HTTP clients for one purpose: the base policy plus the hosts a flow may reach."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2

from .guard import GuardedTransport2, guarded_client, guarded_client2
from .policy import OutboundPolicy

__all__ = ["Outbound"]


@dataclass(frozen=True)
class Outbound:
    """Builds guarded clients: ``policy`` (the administrator's allowlist and settings)
    widened by the hosts of the server at hand (its URL host and ``known_hosts``)."""

    policy: OutboundPolicy

    @property
    def timeout(self) -> float:
        return self.policy.timeout

    def for_hosts(self, hosts: Iterable[str]) -> OutboundPolicy:
        return self.policy.with_hosts(*hosts)

    def client(self, hosts: Iterable[str], **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx`` client (discovery, registration, probes)."""
        return guarded_client(self.for_hosts(hosts), **kwargs)

    def client2(self, hosts: Iterable[str], **kwargs: Any) -> httpx2.AsyncClient:
        """An ``httpx2`` client (the MCP SDK's client sessions)."""
        return guarded_client2(self.for_hosts(hosts), **kwargs)

    def transport(self, hosts: Iterable[str]) -> httpx2.AsyncBaseTransport:
        """An ``httpx2`` transport (authlib's token, refresh and revocation requests)."""
        return GuardedTransport2(self.for_hosts(hosts))
