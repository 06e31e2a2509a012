"""Every setting of dodo's server extension, on a light ``Configurable``.

:class:`DodoSettings` holds the traits; ``DodoApp`` (the ``ExtensionApp``) inherits them,
so ``c.DodoApp.*`` in ``jupyter_server_config.py`` configures the server as before. The
CLI (``jupyter dodo``) builds a :class:`DodoSettings` from the same configuration without
importing ``jupyter_server.serverapp`` (seconds of start-up), so both read one definition
of every setting, its default and its help.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from traitlets import (
    Bool,
    CaselessStrEnum,
    Dict,
    Float,
    Integer,
    List,
    Set,
    TraitError,
    Unicode,
    default,
    validate,
)

from .codemode.settings import CodeModeSettings
from .exceptions import ValidationFailed
from .identity import make_resolver
from .net.hosts import parse_host_rules
from .paths import default_db_path, default_key_file, sqlite_url_for
from .runtime import DodoRuntime
from .runtime_settings import RuntimeSettings

__all__ = ["NOT_TRAITS", "DodoSettings"]

#: RuntimeSettings fields that are not traits: the hub's token (from the environment),
#: the server's base URL (from the server), and what only tests and embedders pass (a
#: DNS resolver, an environment).
NOT_TRAITS = frozenset({"hub_api_token", "base_url", "resolver", "environ"})


class DodoSettings(CodeModeSettings):
    """dodo's settings (configure them as ``c.DodoApp.<name>``); code mode's come from
    :class:`~dodo_jupyter.codemode.settings.CodeModeSettings`."""

    identity_mode = CaselessStrEnum(
        ["auto", "local", "hub"],
        default_value="auto",
        config=True,
        help="""Who owns this server. 'local': the OS user running it (owner and admin).
        'hub': JUPYTERHUB_USER at JUPYTERHUB_API_URL; other hub users reaching it through
        sharing are visitors. 'auto' (default) picks 'hub' when both variables are set.""",
    )

    db_url = Unicode(
        config=True,
        help="""SQLAlchemy URL of dodo's database. Default: the DODO_DB_URL environment
        variable, else SQLite (WAL mode) at <jupyter data dir>/dodo/dodo.sqlite.
        PostgreSQL works too: 'postgresql+psycopg://user@host/db' (pip install
        'dodo-jupyter[postgres]'). Migrations run at start.""",
    )

    @default("db_url")
    def _default_db_url(self) -> str:
        return os.environ.get("DODO_DB_URL") or sqlite_url_for(default_db_path(jupyter_data_dir()))

    key_file = Unicode(
        config=True,
        help="""Key file used when DODO_CRYPT_KEY is not set; created (mode 0600) on the
        first start of an empty store. Default: <jupyter data dir>/dodo/crypt.key.
        Security: whoever reads this file and the database can read the stored secrets.""",
    )

    @default("key_file")
    def _default_key_file(self) -> str:
        return str(default_key_file(jupyter_data_dir()))

    catalog = List(
        Dict(),
        config=True,
        help="""Approved MCP servers managed by configuration: a list of entries
        ({id, url, display_name, description, transport, auth_type, headers, oauth, ...}).
        They are added or updated at every start and removed when dropped from here;
        entries created by admins through the API or CLI are left alone.""",
    )

    catalog_file = Unicode(
        "",
        config=True,
        help="""A JSON file of approved servers managed by configuration: dodo entries
        ({"entries": [...]}) or MCP Registry server.json documents (each remote becomes an
        entry). Read at start; same rules as DodoApp.catalog, which wins on equal ids.""",
    )

    default_catalog = Bool(
        True,
        config=True,
        help="""Seed the catalog with the public MCP servers shipped with dodo (see
        docs/catalog.md for which are enabled and why). Set False to approve only what you
        list yourself.""",
    )

    allowed_hosts = List(
        Unicode(),
        config=True,
        help="""Extra hosts outbound requests may reach besides catalog hosts and their
        known_hosts (e.g. an authorization server on another domain), and the hosts whose
        MCP servers users may connect without a catalog entry. Each entry is a host name
        ('auth.example.com', any port), a wildcard for its subdomains ('*.example.com'),
        a literal IP ('127.0.0.1', '::1'), any of them with a port ('127.0.0.1:8080',
        '[::1]:8080'); names are compared case-insensitively, IDNA-encoded and without a
        trailing dot. Default: empty. Security: every outbound request and every connect
        is checked against this list and the catalog, by one matcher.""",
    )

    @validate("allowed_hosts")
    def _valid_allowed_hosts(self, proposal: dict[str, list[str]]) -> list[str]:
        try:
            return parse_host_rules(proposal["value"])
        except ValidationFailed as e:
            raise TraitError(f"DodoApp.allowed_hosts: {e.message}") from None

    admin_users = Set(
        Unicode(),
        config=True,
        help="""Hub mode: usernames that administer the catalog, besides hub admins and
        holders of the custom:dodo:admin scope. (In local mode the owner is the admin.)""",
    )

    admin_groups = Set(
        Unicode(),
        config=True,
        help="Hub mode: JupyterHub groups whose members administer the catalog.",
    )

    allow_insecure_loopback = Bool(
        False,
        config=True,
        help="""Accept plain http:// MCP and OAuth URLs on loopback hosts (127.0.0.0/8,
        ::1, localhost). For development and tests only: NOT RECOMMENDED in production.""",
    )

    token_lifetime_days = Integer(
        90,
        config=True,
        help="""Lifetime in days of a gateway token created without expires_in_days;
        0 makes such tokens never expire (NOT RECOMMENDED).""",
    )

    service_token = Unicode(
        config=True,
        help="""A shared token service callers may present to the gateway; it acts as the
        admin identity and every use is logged. Default: DODO_SERVICE_TOKEN; empty turns
        it off. Security: anyone holding it can use every connected tool.""",
    )

    @default("service_token")
    def _default_service_token(self) -> str:
        return os.environ.get("DODO_SERVICE_TOKEN", "")

    hygiene_interval = Float(
        3600.0,
        config=True,
        help="""Hub mode: seconds between checks that the owner still exists at the hub with
        the same identity; connections are cleared when not. 0 turns the check off.""",
    )

    public_url = Unicode(
        "",
        config=True,
        help="""Public origin of this server (e.g. https://hub.example.org) used to build the
        OAuth redirect URI; default: the origin the browser used.""",
    )

    catalog_cache_ttl = Float(
        5.0,
        config=True,
        help="""Seconds the enabled catalog is served from memory before it is read again;
        this server's own edits show at once, other processes' within this time. In
        hub-catalog mode also the seconds between two (conditional) requests to the hub
        catalog service.""",
    )

    hub_catalog_url = Unicode(
        config=True,
        help="""Hub mode: the URL of the dodo hub catalog service (e.g.
        'http://proxy-public/services/dodo/'); the catalog then comes from there instead of
        this server's own configuration (DodoApp.catalog, catalog_file and default_catalog
        are not used) and admin edits are forwarded to it with this server's hub token.
        The last good copy is kept in this server's store and served, marked stale, while
        the service is unreachable. Default: the DODO_HUB_CATALOG_URL environment variable
        (set it with c.Spawner.environment, see docs/jupyterhub.md); empty: off.
        Security: the server's JUPYTERHUB_API_TOKEN is sent to this URL.""",
    )

    @default("hub_catalog_url")
    def _default_hub_catalog_url(self) -> str:
        return os.environ.get("DODO_HUB_CATALOG_URL", "")

    hub_catalog_timeout = Float(
        5.0,
        config=True,
        help="""Seconds a request to the hub catalog service may take (connect and each
        read) before the last good copy is served instead. The service is asked again at
        most every DodoApp.catalog_cache_ttl seconds (at least 5 s after a failure).""",
    )

    max_request_bytes = Integer(
        1024 * 1024,
        config=True,
        help="Largest request body dodo's REST API accepts; larger ones get 413.",
    )

    outbound_timeout = Float(
        10.0,
        config=True,
        help="""Seconds one whole exchange with an OAuth server may take, answer head and
        body together: the protected resource metadata, the authorization server
        metadata, dynamic client registration, each token request (code exchange and
        refresh), each revocation, and the MCP server's first answer when dodo checks
        whether it needs a sign-in. Each step on the way (connecting, sending, each read)
        has the same limit. Past it the exchange fails with a message naming the host and
        the step, e.g. "auth.example.com did not send its authorization server metadata
        within 10 s". Default: 10. Security: bounds how long a slow or hostile server can
        hold a request such as POST mcp/start-auth open (a server trickling one byte at a
        time never trips a per-read timeout). MCP sessions and tool calls use
        upstream_call_timeout instead.""",
    )

    client_metadata_url = Unicode(
        config=True,
        help="""Where dodo's OAuth Client ID Metadata Document is served, when not at
        <public_url><base_url>dodo/oauth/client-metadata.json (https only; empty: derive
        it from public_url, or use dynamic registration).""",
    )

    upstream_idle_timeout = Float(
        600.0,
        config=True,
        help="""Seconds an upstream MCP session may sit unused before it is closed (it
        reopens on the next call).""",
    )

    upstream_list_timeout = Float(
        10.0,
        config=True,
        help="""Seconds one MCP server may take to list its tools for the gateway; a slower
        server is marked as failing and left out of that listing (the others are not
        held up). Also the total deadline of each request of the checks dodo makes of a
        connection (after a sign-in, on refresh-state, for step-up): initialize and
        tools/list; past it the connection shows an error naming the host and the step.""",
    )

    upstream_call_timeout = Float(
        120.0,
        config=True,
        help="""Seconds a tool call may take upstream, answer head and body together,
        before the agent gets a tool error naming the host and the step ("mcp.example.com
        did not answer within 120 s (tools/call)"; the server is told the call was
        cancelled). The gateway's MCP sessions give each of their other requests
        (initialize, tools/list...) the same total deadline; a tool listing for the
        gateway is also cut at upstream_list_timeout. Default: 120.""",
    )

    gateway_listing_ttl = Float(
        60.0,
        config=True,
        help="""Seconds a user's finished gateway tool listing may be served from memory.
        It is dropped at once when a connection, a tool switch or a server's tool list
        changes; this bounds how long anything else could go unnoticed.""",
    )

    resume_events_per_session = Integer(
        1000,
        min=0,
        config=True,
        help="""Most events of one MCP session the gateway keeps so that a client whose
        event stream broke can resume it (GET with Last-Event-ID, MCP 2025-11-25, SEP-1699):
        each stream starts with a priming event, and the progress notifications and the
        result sent after it are kept, the session's oldest dropped first. Default 1000.
        0 turns resuming off (no priming events, nothing kept). Applies to 2025-11-25
        sessions; 2026-07-28 requests have no session. Memory: bounded by
        resume_bytes_per_session and resume_max_bytes.""",
    )

    resume_bytes_per_session = Integer(
        4 * 1024 * 1024,
        min=0,
        config=True,
        help="""Most bytes of events (their JSON, plus 400 bytes each) one MCP session
        keeps for resuming, its oldest dropped first; a single larger event (a big tool
        result) is not kept, and neither is anything of that session before it. Default
        4 MiB; at most resume_max_bytes is used; 0 turns resuming off.""",
    )

    resume_max_bytes = Integer(
        16 * 1024 * 1024,
        min=0,
        config=True,
        help="""Most bytes of events all MCP sessions together keep for resuming; beyond
        it the oldest events of any session are dropped. This is what resumable streams
        can cost in memory at most, whatever clients do. Default 16 MiB; 0 turns resuming
        off.""",
    )

    resume_event_max_age = Float(
        300.0,
        min=0.0,
        config=True,
        help="""Seconds an event is kept for resuming; a client that comes back later gets
        an event stream that ends at once (the rest of that call is lost to it). Tool
        results stay in the server's memory up to this long (less when the byte limits
        push them out or their session ends), so keep it short where results are
        sensitive. Default 300; 0 turns resuming off.""",
    )

    resume_retry_interval = Float(
        1.0,
        min=0.0,
        config=True,
        help="""Seconds an MCP client should wait before reconnecting a broken event stream:
        the SSE 'retry' field of each stream's priming event. Default 1; 0 sends no
        'retry' field (clients use their own delay). Must stay well below
        resume_event_max_age.""",
    )

    approval_timeout = Float(
        120.0,
        config=True,
        help="""Seconds a tool call that needs approval (a catalog entry's
        tool_policy.approval) is held while JupyterLab asks its owner; then it is refused
        as timed out. A call is refused at once when no JupyterLab of the owner is open.""",
    )

    tool_call_retention_days = Integer(
        90,
        config=True,
        help="""Days the tool-call history keeps a record (older ones are pruned hourly);
        0 keeps them forever.""",
    )

    capture_tool_arguments = Bool(
        False,
        config=True,
        help="""Keep each tool call's arguments in the tool-call history, encrypted like
        every other secret. Off: only their size and a keyed hash are kept. Results are
        never kept. Privacy: arguments may hold personal data; turn this on only where a
        policy requires it.""",
    )

    kernel_access = Bool(
        True,
        config=True,
        help="""Give kernels started by this server the gateway: at start, mint a
        server-lifetime gateway token for the owner and export DODO_MCP_URL and
        DODO_MCP_TOKEN into the environment kernels inherit; the token is deleted when
        the server stops. Security: code in the owner's kernels can call every tool the
        owner exposed to agents.""",
    )

    jupyter_ai_builtin = Bool(
        True,
        config=True,
        help="""Offer the MCP gateway to every Jupyter AI persona (Jupyternaut and the ACP
        agents) without any setup: when jupyter-ai-persona-manager runs in this server,
        dodo adds itself to PersonaManager.builtin_mcp_servers (keeping the servers listed
        there) with a gateway token it creates at start ("Jupyter AI (built in)") and
        deletes at stop. On JupyterHub only messages the server's owner sends are served.
        False: no entry, and the token is deleted. Security: the personas can call every
        tool the owner exposed to agents.""",
    )

    def runtime_settings(self) -> RuntimeSettings:
        """The values DodoRuntime needs: every :class:`RuntimeSettings` field named like a
        trait takes the trait's value (one definition per setting, no copy by hand); the
        others are found here (:data:`NOT_TRAITS`)."""
        values = {
            f.name: getattr(self, f.name) for f in fields(RuntimeSettings) if self.has_trait(f.name)
        }
        values["key_file"] = Path(self.key_file)
        values["hub_api_token"] = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        values["base_url"] = self.base_url_for_runtime()
        return RuntimeSettings(**values)

    def make_runtime(self) -> DodoRuntime:
        resolver = make_resolver(
            self.identity_mode, admin_users=self.admin_users, admin_groups=self.admin_groups
        )
        if self.hub_catalog_url and resolver.mode != "hub":
            raise ValueError(
                "DodoApp.hub_catalog_url (env DODO_HUB_CATALOG_URL) needs hub mode: the "
                "server authenticates to the catalog service with its JupyterHub token. "
                "Unset it, or run the server under JupyterHub."
            )
        return DodoRuntime(self.runtime_settings(), resolver)

    def base_url_for_runtime(self) -> str:
        """The Jupyter server's base URL ("/" outside a server)."""
        return "/"
