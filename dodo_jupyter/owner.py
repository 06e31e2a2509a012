"""Whose secrets these are: the owner record, drift, and the hub hygiene check.

The store records the identity that owns its secrets: in local mode the OS user, in hub
mode the hub API URL and username (and the email, once the hub has shown one, from
JupyterHub 6's ``user_info``, and the hub user's ``created`` time, when the server's token
may read it). When the running owner differs from the record — a renamed hub user, a home
volume reattached to someone else, a changed email, a user deleted and created again
under the same name — every
secret of the previous owner is wiped (OAuth tokens, client registrations, header values,
gateway tokens, pending flows, tool switches), their upstream tokens are revoked as far as
the authorization servers allow, and the event is audited and logged. The catalog stays.

In hub mode a *hygiene* check asks the hub (``GET {JUPYTERHUB_API_URL}/user`` with the
server's own token) whether the owner still exists under the same name, email and
creation time: at the server's start, before its store is ready (a stopped server whose
user was deleted and created again wipes before it serves or mints anything), then
periodically. ``401``/``403``/``404`` or a changed identity clear the secrets the same way; a
network failure or a hub ``5xx`` changes nothing and the check runs again later.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .exceptions import ResponseTooLarge
from .store import Store
from .store.models import OwnerRecord, utcnow

__all__ = ["HubFacts", "HubHygiene", "Owner", "OwnerRegistry", "email_of", "wipe_secrets"]

log = logging.getLogger(__name__)

#: Largest answer accepted from the hub's ``/user`` (a user model is a few kilobytes).
MAX_HUB_ANSWER_BYTES = 1024 * 1024

#: Hub API URLs whose answer lacked the owner's creation time, warned about once.
_WARNED_NO_CREATED: set[str] = set()


@dataclass(frozen=True)
class Owner:
    """An owner identity as compared for drift."""

    mode: str
    username: str
    hub_api_url: str = ""
    email: str = ""
    hub_created: str = ""

    def drift_from(self, recorded: Owner) -> str | None:
        """Why ``recorded`` is not this owner, or None when it is."""
        if (recorded.mode, recorded.hub_api_url) != (self.mode, self.hub_api_url):
            return (
                f"the server moved from {recorded.mode} mode at {recorded.hub_api_url or '-'} "
                f"to {self.mode} mode at {self.hub_api_url or '-'}"
            )
        if recorded.username != self.username:
            return f"the owner changed from {recorded.username!r} to {self.username!r}"
        if recorded.email and self.email and recorded.email != self.email:
            return f"the owner's email changed (user {self.username!r})"
        if recorded.hub_created and self.hub_created and recorded.hub_created != self.hub_created:
            return f"the hub user {self.username!r} was deleted and created again"
        return None


@dataclass(frozen=True)
class HubFacts:
    """What the hub showed about the owner beyond the name ('' when not shown)."""

    email: str = ""
    created: str = ""


def email_of(hub_user: Any) -> str:
    """The email a hub user model carries in ``user_info`` (JupyterHub 6), or ''."""
    info = hub_user.get("user_info") if isinstance(hub_user, dict) else None
    email = info.get("email") if isinstance(info, dict) else None
    return email.strip().lower() if isinstance(email, str) else ""


class OwnerRegistry:
    """Reads and writes the owner record (one row)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.recorded: Owner | None = None

    async def load(self) -> Owner | None:
        def read(session: Session) -> Owner | None:
            row = session.get(OwnerRecord, 1)
            if row is None:
                return None
            return Owner(row.mode, row.username, row.hub_api_url, row.email, row.hub_created)

        self.recorded = await self._store.db.read(read)
        return self.recorded

    async def record(self, owner: Owner) -> None:
        def write(session: Session) -> None:
            row = session.get(OwnerRecord, 1)
            if row is None:
                row = OwnerRecord(id=1)
                session.add(row)
            row.mode = owner.mode
            row.username = owner.username
            row.hub_api_url = owner.hub_api_url
            row.email = owner.email
            row.hub_created = owner.hub_created
            row.recorded_at = utcnow()

        await self._store.db.write(write)
        self.recorded = owner


class HubHygiene:
    """Asks the hub whether the server's owner still exists with the same identity.

    Parameters
    ----------
    api_url:
        ``JUPYTERHUB_API_URL``.
    api_token:
        ``JUPYTERHUB_API_TOKEN``: the server's own token (it resolves to its owner).
    """

    def __init__(self, api_url: str, api_token: str, *, timeout: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_token = api_token
        self.timeout = timeout

    async def check(self, expected: Owner) -> tuple[str | None, HubFacts]:
        """(why the owner's secrets must go — the hub refuses the owner or calls them by
        another name — or None; what the hub showed about them)."""
        import httpx2  # hub mode only: local servers never load it for this

        from .net.guard import read_limited
        from .net.outbound import trusted_client

        try:
            async with trusted_client(self.timeout) as client:
                async with client.stream(
                    "GET",
                    f"{self.api_url}/user",
                    headers={"Authorization": f"token {self.api_token}"},
                ) as response:
                    body = await read_limited(response, MAX_HUB_ANSWER_BYTES)
        except (httpx2.HTTPError, ResponseTooLarge) as e:
            log.info(
                "dodo hygiene: the hub could not be asked (%s); trying later", type(e).__name__
            )
            return None, HubFacts()
        if response.status_code in (401, 403, 404):
            return (
                f"the hub no longer recognises this server's owner {expected.username!r} "
                f"(HTTP {response.status_code})",
                HubFacts(),
            )
        if response.status_code != 200:
            log.info("dodo hygiene: the hub answered HTTP %s; trying later", response.status_code)
            return None, HubFacts()
        try:
            model = json.loads(body)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            return None, HubFacts()
        name = model.get("name") if isinstance(model, dict) else None
        created = model.get("created") if isinstance(model, dict) else None
        facts = HubFacts(email_of(model), created if isinstance(created, str) else "")
        if not facts.created and self.api_url not in _WARNED_NO_CREATED:
            _WARNED_NO_CREATED.add(self.api_url)
            log.warning(
                "dodo hygiene: the hub does not show this server's token when its owner %r "
                "was created, so a user deleted and created again under the same name would "
                'inherit these secrets. Add "read:users!user" to '
                "c.Spawner.server_token_scopes (docs/jupyterhub.md).",
                expected.username,
            )
        if name != expected.username:
            return (
                f"the hub now calls this server's owner {name!r}, not {expected.username!r}",
                facts,
            )
        # A changed email or creation time is the caller's to judge against the record
        # (it wipes, then records the new facts: the new owner's secrets must survive).
        return None, facts


async def wipe_secrets(
    runtime: Any, reason: str, *, revoke_timeout: float = 10.0
) -> dict[str, int]:
    """Remove every secret of the store's previous owner (see the module docstring).

    ``runtime`` is the :class:`~dodo_jupyter.runtime.DodoRuntime` with its MCP services
    built. Upstream revocation is best effort and bounded by ``revoke_timeout`` per
    connection; the wipe itself never depends on it. Returns what was removed.
    """
    import asyncio

    from sqlalchemy import delete

    from . import audit
    from .connection_rows import ConnectionRows
    from .store.models import OAuthClient, PendingAuth, ToolSetting, UserMCPToken

    store = runtime.store
    revoked = 0
    for row in await runtime.connections.rows.signed_in():
        try:
            revoked += bool(
                await asyncio.wait_for(runtime.connections.keeper.revoke(row), revoke_timeout)
            )
        except Exception as e:  # best effort: the wipe goes on
            log.info("dodo: revoking the tokens of %s failed: %s", row.id, type(e).__name__)

    def remove(session: Session) -> dict[str, int]:
        counts = {"mcp_connections": ConnectionRows.delete_all(session)}
        for model in (OAuthClient, PendingAuth, UserMCPToken, ToolSetting):
            result: Any = session.execute(delete(model))
            counts[model.__tablename__] = result.rowcount or 0
        if any(counts.values()) or revoked:  # a drift that persists is audited once
            audit.record(
                session, "dodo", "owner.drift", "", reason=reason, revoked=revoked, **counts
            )
        return counts

    counts = await store.db.write(remove)
    if not any(counts.values()) and not revoked:
        return counts  # already wiped: nothing more to say
    runtime.tokens.cache.clear()
    runtime.connections.keeper.fresh.forget()
    await runtime.gateway.reset()
    log.warning(
        "dodo: %s; every secret of the previous owner was wiped (%d connections, %d gateway "
        "tokens; %d revoked upstream)",
        reason,
        counts["mcp_connections"],
        counts["user_mcp_tokens"],
        revoked,
    )
    return counts
