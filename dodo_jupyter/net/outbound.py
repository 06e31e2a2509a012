"""Guarded HTTP clients for one purpose: the base policy plus the hosts a flow may reach;
and the trusted client for the one service the deployment vouches for (the hub)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx2

from .deadline import DeadlineTransport
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
    """A client on dodo's HTTP stack without the SSRF guard, for the services dodo is
    told to trust by its deployment: the JupyterHub API and the hub catalog service
    (internal addresses, plain http), and, from a kernel, the user's own dodo gateway
    (:mod:`dodo_jupyter.client`). Never for a URL a user or a catalog gave.

    Like a guarded client it ignores proxy environment variables and has a total
    deadline on each answer's head (:class:`~.deadline.DeadlineTransport`): ``timeout``
    applies to each step, so the head must arrive within three times ``timeout``. Read
    bodies with :func:`~.guard.read_limited`, which bounds their size and time."""
    transport = DeadlineTransport(PooledTransport(default_tls()))
    return httpx2.AsyncClient(transport=transport, timeout=timeout, trust_env=False, **kwargs)
