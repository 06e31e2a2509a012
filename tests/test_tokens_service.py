"""Gateway tokens on SQLite and PostgreSQL: only hashes stored, isolation, expiry."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from dodo_jupyter.exceptions import NotFound, ValidationFailed
from dodo_jupyter.runtime import DodoRuntime
from dodo_jupyter.store.models import AuditLog, UserMCPToken, utcnow
from dodo_jupyter.tokens import parse_token

pytestmark = pytest.mark.asyncio


async def test_token_shape_and_only_hash_stored(runtime: DodoRuntime) -> None:
    new = await runtime.tokens.create("ada", "laptop", 7)
    token_id, secret = parse_token(new.token) or ("", "")
    assert new.token == f"dodo_{token_id}_{secret}" and len(secret) >= 43  # >= 256 bits
    assert new.info["prefix"] == f"dodo_{token_id}" and secret not in str(new.info)

    rows = runtime.store.db.read_sync(lambda s: s.scalars(select(UserMCPToken)).all())
    assert len(rows) == 1
    stored = " ".join(str(v) for v in vars(rows[0]).values())
    assert secret not in stored
    assert rows[0].secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    expires = rows[0].expires_at
    assert expires is not None and abs(expires - (utcnow() + timedelta(days=7))) < timedelta(
        minutes=1
    )


async def test_authenticate_and_last_used(runtime: DodoRuntime) -> None:
    new = await runtime.tokens.create("ada", "x")
    assert await runtime.tokens.authenticate(new.token) == "ada"
    (listed,) = await runtime.tokens.list("ada")
    assert listed["last_used_at"] is not None
    token_id, secret = parse_token(new.token) or ("", "")
    wrong = f"dodo_{token_id}_{'A' * len(secret)}"
    assert await runtime.tokens.authenticate(wrong) is None
    assert await runtime.tokens.authenticate("dodo_nothing") is None
    assert await runtime.tokens.authenticate("") is None


async def test_expired_token_does_not_authenticate(runtime: DodoRuntime) -> None:
    new = await runtime.tokens.create("ada", "x", 1)

    def expire(session) -> None:  # type: ignore[no-untyped-def]
        session.get(UserMCPToken, new.info["id"]).expires_at = utcnow() - timedelta(seconds=1)

    await runtime.store.db.write(expire)
    assert await runtime.tokens.authenticate(new.token) is None


async def test_users_see_and_delete_only_their_own(runtime: DodoRuntime) -> None:
    ada = await runtime.tokens.create("ada", "a")
    bob = await runtime.tokens.create("bob", "b")
    assert [t["id"] for t in await runtime.tokens.list("ada")] == [ada.info["id"]]
    with pytest.raises(NotFound):
        await runtime.tokens.delete("ada", bob.info["id"])
    assert await runtime.tokens.authenticate(bob.token) == "bob"
    await runtime.tokens.delete("ada", ada.info["id"])
    assert await runtime.tokens.authenticate(ada.token) is None
    with pytest.raises(NotFound):
        await runtime.tokens.delete("ada", ada.info["id"])
    actions = runtime.store.db.read_sync(
        lambda s: [(r.actor, r.action) for r in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    )
    assert actions == [
        ("ada", "token.create"),
        ("bob", "token.create"),
        ("ada", "token.delete"),
    ]


async def test_default_lifetime_and_no_expiry(runtime: DodoRuntime) -> None:
    runtime.tokens.default_lifetime_days = 0
    forever = await runtime.tokens.create("ada", "x")
    assert forever.info["expires_at"] is None


@pytest.mark.parametrize(
    ("label", "days", "field"),
    [
        (5, None, "label"),
        ("x" * 101, None, "label"),
        ("bad\nlabel", None, "label"),
        ("ok", 0, "expires_in_days"),
        ("ok", "7", "expires_in_days"),
        ("ok", 3651, "expires_in_days"),
        ("ok", True, "expires_in_days"),
        ("ok", 1.5, "expires_in_days"),
    ],
)
async def test_invalid_input(runtime: DodoRuntime, label: object, days: object, field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        await runtime.tokens.create("ada", label, days)
    assert field in info.value.details["fields"]
    assert await runtime.tokens.list("ada") == []


async def test_delete_kind(runtime: DodoRuntime) -> None:
    await runtime.tokens.create("ada", "kernel", kind="kernel")
    keep = await runtime.tokens.create("ada", "mine")
    assert await runtime.tokens.delete_kind("ada", "kernel") == 1
    assert [t["id"] for t in await runtime.tokens.list("ada")] == [keep.info["id"]]


async def test_cached_token_stops_working_once_deleted(runtime: DodoRuntime) -> None:
    new = await runtime.tokens.create("ada", "x")
    assert await runtime.tokens.authenticate(new.token) == "ada"
    assert runtime.tokens.cache.get(new.info["id"]) is not None  # served from memory now
    await runtime.tokens.delete("ada", new.info["id"])
    assert await runtime.tokens.authenticate(new.token) is None
    kernel = await runtime.tokens.create("ada", "k", kind="kernel", expires=False)
    assert await runtime.tokens.authenticate(kernel.token) == "ada"
    await runtime.tokens.delete_kind("ada", "kernel")
    assert await runtime.tokens.authenticate(kernel.token) is None
