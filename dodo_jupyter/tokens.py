"""User-scoped gateway tokens: ``dodo_<id>_<secret>``.

A token is shown once, when it is created. The store keeps its id and the SHA-256 of its
secret (the secret is 256 random bits, so a plain hash is as strong as a slow one and
lets authentication stay fast). Authentication looks the row up by id and compares the
hash in constant time; an expired token never authenticates. Listings show the public
prefix (``dodo_<id>``) only. A user can see and delete only their own tokens; another
user's token id answers "not found", exactly like an unknown one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .exceptions import NotFound, ValidationFailed
from .store import Store
from .store.models import UserMCPToken, utcnow

if TYPE_CHECKING:
    from .gateway.attribution import Attribution

__all__ = [
    "TOKEN_PREFIX",
    "CheckedToken",
    "MintedToken",
    "NewToken",
    "TokenService",
    "mint_token",
    "parse_token",
]

log = logging.getLogger("dodo_jupyter.tokens")

TOKEN_PREFIX = "dodo_"  # noqa: S105 - a public prefix, not a secret
_TOKEN_RE = re.compile(r"^dodo_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_MAX_LABEL = 100
_MAX_LIFETIME_DAYS = 3650
#: Only record a new ``last_used_at`` when the stored one is older than this.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """Split a token into (id, secret); None when it is not a dodo token."""
    match = _TOKEN_RE.match(token)
    return (match.group(1), match.group(2)) if match else None


def mint_token(
    username: str,
    label: object = None,
    *,
    kind: str = "user",
    days: int | None = None,
    lifetime: timedelta | None = None,
) -> MintedToken:
    """A new token (expiring in ``lifetime`` or ``days``, or never) known only in memory
    until :meth:`TokenService.save` stores it: for a token that must be handed out before
    the database can be written (the Jupyter AI built-in entry is configured while the
    server starts)."""
    clean_label = _valid_label(label)
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    row = UserMCPToken(
        id=token_id,
        username=username,
        secret_hash=_hash(secret),
        label=clean_label,
        kind=kind,
        created_at=now,
        expires_at=now + (lifetime or timedelta(days=days or 0)) if lifetime or days else None,
    )
    return MintedToken(f"{TOKEN_PREFIX}{token_id}_{secret}", row)


@dataclass(frozen=True)
class MintedToken:
    """A token made in memory and not stored yet (:meth:`TokenService.mint`)."""

    token: str
    row: UserMCPToken

    @property
    def token_id(self) -> str:
        return self.row.id


@dataclass(frozen=True)
class NewToken:
    """A just-created token: ``token`` is the only time the secret is available."""

    token: str
    info: dict[str, Any]


def _used_by(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _info(row: UserMCPToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "prefix": f"{TOKEN_PREFIX}{row.id}",
        "label": row.label,
        "kind": row.kind,
        "created_at": row.created_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "last_used_by": _used_by(row.last_used_by),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }


def _valid_label(label: object) -> str:
    if label is None:
        return ""
    if not isinstance(label, str):
        raise ValidationFailed("'label' must be a string.", fields={"label": "must be a string"})
    label = label.strip()
    if len(label) > _MAX_LABEL or any(ord(c) < 0x20 for c in label):
        raise ValidationFailed(
            f"'label' must be at most {_MAX_LABEL} printable characters.",
            fields={"label": f"at most {_MAX_LABEL} printable characters"},
        )
    return label


def _valid_lifetime(days: object, default_days: int) -> int | None:
    """Days until expiry, or None for a token that does not expire."""
    if days is None:
        return default_days or None
    if isinstance(days, float) and days.is_integer():
        days = int(days)  # JSON does not tell 30 from 30.0 (JSON Schema's "integer" neither)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= _MAX_LIFETIME_DAYS:
        raise ValidationFailed(
            f"'expires_in_days' must be a whole number from 1 to {_MAX_LIFETIME_DAYS}.",
            fields={"expires_in_days": f"integer 1-{_MAX_LIFETIME_DAYS}"},
        )
    return days


class TokenService:
    """Creates, lists, deletes and checks gateway tokens.

    Parameters
    ----------
    store:
        The opened store.
    default_lifetime_days:
        Lifetime of a token created without ``expires_in_days``; 0 for no expiry.
    cache_max_age:
        Seconds a checked token is trusted without a database read. Deletions through
        this service take effect at once; those by another process (``jupyter dodo
        tokens revoke``) within this time.
    """

    def __init__(
        self, store: Store, *, default_lifetime_days: int = 90, cache_max_age: float = 5.0
    ) -> None:
        self._store = store
        self.default_lifetime_days = default_lifetime_days
        self.cache = TokenCache(cache_max_age)
        #: token id -> (the agent last recorded as its user, monotonic time of that write)
        self._used_by: dict[str, tuple[Attribution, float]] = {}
        self._writes: set[asyncio.Future[None]] = set()

    async def create(
        self,
        username: str,
        label: object = None,
        expires_in_days: object = None,
        *,
        kind: str = "user",
        expires: bool = True,
        lifetime: timedelta | None = None,
    ) -> NewToken:
        """Make a token for ``username``; the result holds the secret, once.

        ``expires=False`` (for the server's own kernel token, which is deleted when the
        server stops) makes a token without an expiry date; ``lifetime`` one that expires
        sooner than a day (a code-mode kernel's)."""
        return await self.save(
            self.mint(
                username, label, expires_in_days, kind=kind, expires=expires, lifetime=lifetime
            )
        )

    def mint(
        self,
        username: str,
        label: object = None,
        expires_in_days: object = None,
        *,
        kind: str = "user",
        expires: bool = True,
        lifetime: timedelta | None = None,
    ) -> MintedToken:
        """A new token known only in memory: it authenticates once :meth:`save` stored it."""
        if lifetime is not None:
            return mint_token(username, label, kind=kind, lifetime=lifetime)
        days = _valid_lifetime(expires_in_days, self.default_lifetime_days) if expires else None
        return mint_token(username, label, kind=kind, days=days)

    async def save(self, minted: MintedToken) -> NewToken:
        """Store a token made by :meth:`mint`; from now on it authenticates."""
        row = minted.row

        def insert(session: Session) -> dict[str, Any]:
            session.add(row)
            audit.record(
                session, row.username, "token.create", row.id, label=row.label, kind=row.kind
            )
            return _info(row)

        info = await self._store.db.write(insert)
        return NewToken(minted.token, info)

    async def list(self, username: str) -> list[dict[str, Any]]:
        """``username``'s tokens, newest first, without secrets."""

        def query(session: Session) -> list[dict[str, Any]]:
            stmt = (
                select(UserMCPToken)
                .where(UserMCPToken.username == username)
                .order_by(UserMCPToken.created_at.desc(), UserMCPToken.id)
            )
            return [_info(row) for row in session.scalars(stmt)]

        return await self._store.db.read(query)

    async def delete(self, username: str, token_id: str) -> None:
        """Delete one of ``username``'s tokens; :class:`NotFound` for any other id."""

        def remove(session: Session) -> None:
            row = session.get(UserMCPToken, token_id) if len(token_id) <= 32 else None
            if row is None or row.username != username:
                raise NotFound(f"No token with id {token_id!r}.")
            session.delete(row)
            audit.record(session, username, "token.delete", token_id, label=row.label)

        await self._store.db.write(remove)
        self.cache.forget(token_id)

    async def delete_kind(self, username: str, kind: str) -> int:
        """Delete every token of ``kind`` that ``username`` holds; returns how many."""

        def remove(session: Session) -> int:
            rows = session.scalars(
                select(UserMCPToken).where(
                    UserMCPToken.username == username, UserMCPToken.kind == kind
                )
            ).all()
            for row in rows:
                session.delete(row)
                audit.record(session, username, "token.delete", row.id, kind=kind)
            return len(rows)

        count = await self._store.db.write(remove)
        self.cache.clear()
        return count

    async def authenticate(self, token: str) -> str | None:
        """The username a valid, unexpired token belongs to; None otherwise."""
        checked = await self.check(token)
        return checked.username if checked is not None else None

    async def check(self, token: str) -> CheckedToken | None:
        """The owner, id, kind and label of a valid, unexpired token; None otherwise.

        A token that checked out is remembered in :class:`TokenCache` for
        ``cache_max_age`` seconds (this process's deletions forget it at once), so an
        agent's calls do not each cost a database read."""
        parts = parse_token(token)
        if parts is None:
            return None
        token_id, secret = parts
        presented = _hash(secret)
        now = utcnow()
        cached = self.cache.get(token_id)
        if cached is not None and hmac.compare_digest(cached.secret_hash, presented):
            if cached.expires_at is not None and cached.expires_at <= now:
                return None
            if now - cached.touched_at <= LAST_USED_RESOLUTION:
                return cached.token

        def check(session: Session) -> UserMCPToken | None:
            row = session.get(UserMCPToken, token_id)
            if row is None or not hmac.compare_digest(row.secret_hash, presented):
                return None
            if row.expires_at is not None and row.expires_at <= now:
                return None
            return row

        row = await self._store.db.read(check)
        if row is None:
            self.cache.forget(token_id)
            return None
        touched = row.last_used_at
        if touched is None or now - touched > LAST_USED_RESOLUTION:
            await self._store.db.write(_touch, token_id)
            touched = now
        checked = CheckedToken(row.username, token_id, row.kind, row.label)
        self.cache.put(token_id, _Checked(checked, row.secret_hash, row.expires_at, touched))
        return checked

    def note_use(self, agent: Attribution) -> None:
        """Record that the token ``agent.token_id`` was just used by ``agent`` (its
        "last used by"). Cheap on the hot path: the row is written, off the caller's
        way, only when the agent differs from the one recorded or the record is older
        than :data:`LAST_USED_RESOLUTION`."""
        if agent.token_id is None:
            return
        recorded = self._used_by.get(agent.token_id)
        now = time.monotonic()
        if recorded is not None and recorded[0] == agent:  # a frozen dataclass: compares fields
            if now - recorded[1] <= LAST_USED_RESOLUTION.total_seconds():
                return
        if len(self._used_by) > 10_000:
            self._used_by.clear()
        self._used_by[agent.token_id] = (agent, now)
        value = json.dumps({**agent.as_json(), "at": utcnow().isoformat()})
        write = asyncio.ensure_future(self._store.db.write(_record_use, agent.token_id, value))
        self._writes.add(write)
        write.add_done_callback(self._written)

    def _written(self, write: asyncio.Future[None]) -> None:
        self._writes.discard(write)
        if not write.cancelled() and write.exception() is not None:
            log.warning("dodo: could not record a token's last use: %s", write.exception())

    async def flush(self) -> None:
        """Wait for the "last used by" records still being written."""
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)


@dataclass(frozen=True)
class CheckedToken:
    """A gateway token that authenticated: whose, which, of what kind."""

    username: str
    token_id: str
    kind: str
    label: str


@dataclass(frozen=True)
class _Checked:
    token: CheckedToken
    secret_hash: str
    expires_at: datetime | None
    touched_at: datetime


class TokenCache:
    """A named cache of recently checked tokens (by id), trusted for ``max_age`` seconds."""

    name = "gateway-tokens"

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._entries: dict[str, tuple[float, _Checked]] = {}

    def get(self, token_id: str) -> _Checked | None:
        entry = self._entries.get(token_id)
        if entry is None or time.monotonic() - entry[0] > self.max_age:
            return None
        return entry[1]

    def put(self, token_id: str, checked: _Checked) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[token_id] = (time.monotonic(), checked)

    def forget(self, token_id: str) -> None:
        self._entries.pop(token_id, None)

    def clear(self) -> None:
        self._entries.clear()


def _touch(session: Session, token_id: str) -> None:
    row = session.get(UserMCPToken, token_id)
    if row is not None:
        row.last_used_at = utcnow()


def _record_use(session: Session, token_id: str, used_by: str) -> None:
    row = session.get(UserMCPToken, token_id)
    if row is not None:
        row.last_used_at = utcnow()
        row.last_used_by = used_by
