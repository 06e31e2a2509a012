"""The plain values the runtime is built from (:class:`RuntimeSettings`): one field per
setting the runtime reads, filled from the traits of
:class:`~dodo_jupyter.settings.DodoSettings` (by name) or by tests and embedders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RuntimeSettings"]


@dataclass
class RuntimeSettings:
    """Plain values the runtime needs. A field named like a trait of
    :class:`~dodo_jupyter.settings.DodoSettings` takes that trait's value (defaults here
    are for tests and embedders); ``settings.NOT_TRAITS`` lists the others."""

    db_url: str
    key_file: Path
    catalog: list[dict[str, Any]] = field(default_factory=list)
    catalog_file: str = ""
    default_catalog: bool = True
    allow_insecure_loopback: bool = False
    token_lifetime_days: int = 90
    catalog_cache_ttl: float = 5.0
    max_request_bytes: int = 1024 * 1024
    allowed_hosts: list[str] = field(default_factory=list)
    public_url: str = ""
    base_url: str = "/"
    #: The shared token service callers may present to the gateway (empty: off).
    service_token: str = ""
    #: dodo's Client ID Metadata Document URL when it is served somewhere other than
    #: ``<public_url><base_url>dodo/oauth/client-metadata.json`` (https only; empty: derive).
    client_metadata_url: str = ""
    outbound_timeout: float = 10.0
    upstream_idle_timeout: float = 600.0
    gateway_listing_ttl: float = 60.0
    upstream_list_timeout: float = 10.0
    upstream_call_timeout: float = 120.0
    #: How much of the gateway's event streams is kept for resuming them (SEP-1699).
    resume_events_per_session: int = 1000
    resume_bytes_per_session: int = 4 * 1024 * 1024
    resume_max_bytes: int = 16 * 1024 * 1024
    resume_event_max_age: float = 300.0
    resume_retry_interval: float = 1.0
    approval_timeout: float = 120.0
    tool_call_retention_days: int = 90
    capture_tool_arguments: bool = False
    #: Hub mode: seconds between hygiene checks at the hub (0: off), and the server's token.
    hygiene_interval: float = 3600.0
    hub_api_token: str = ""
    #: Hub-catalog mode: the hub catalog service's URL (empty: this store's own catalog),
    #: and the seconds a request to it may take.
    hub_catalog_url: str = ""
    hub_catalog_timeout: float = 5.0
    #: Code mode (:mod:`dodo_jupyter.codemode.settings` has each one's meaning).
    code_mode: bool = False
    code_mode_approval: str = "never"
    code_mode_idle_timeout: float = 900.0
    code_mode_max_kernels: int = 3
    code_mode_run_timeout: float = 60.0
    code_mode_max_run_timeout: float = 600.0
    code_mode_max_output_bytes: int = 100_000
    code_mode_memory_limit_mb: int = 4096
    code_mode_notebook_dir: str = "dodo-agent-runs"
    code_mode_env_keep: list[str] = field(default_factory=list)
    code_mode_filesystem_isolation: str = "best_effort"
    code_mode_hidden_paths: list[str] = field(default_factory=list)
    code_mode_read_only_paths: list[str] = field(default_factory=list)
    #: A :class:`~dodo_jupyter.net.policy.Resolver`; None for the system's DNS.
    resolver: Any = None
    environ: dict[str, str] | None = None
