"""Which access tokens the token keeper serves from memory
(:mod:`dodo_jupyter.oauth.fresh_tokens`)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from dodo_jupyter.oauth import fresh_tokens
from dodo_jupyter.oauth.fresh_tokens import FreshTokens
from dodo_jupyter.store.models import utcnow

LEEWAY = timedelta(seconds=60)


def test_a_token_is_kept_until_the_leeway_before_its_expiry() -> None:
    fresh = FreshTokens(LEEWAY)
    fresh.put("c1", "a1", utcnow() + timedelta(seconds=120), fresh.mark())
    assert fresh.get("c1") == "a1"
    fresh.put(
        "c2", "a2", utcnow() + timedelta(seconds=59), fresh.mark()
    )  # already due for a refresh
    assert fresh.get("c2") is None


def test_a_token_ends_when_its_time_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = FreshTokens(LEEWAY)
    fresh.put("c1", "a1", utcnow() + timedelta(seconds=70), fresh.mark())  # served for about 10 s
    fresh.put("c2", "a2", None, fresh.mark())  # no expiry: read again after MAX_SECONDS
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 11)
    assert fresh.get("c1") is None and fresh.get("c2") == "a2"
    monkeypatch.setattr(time, "monotonic", lambda: now + fresh_tokens.MAX_SECONDS + 1)
    assert fresh.get("c2") is None


def test_forget_one_or_all() -> None:
    fresh = FreshTokens(LEEWAY)
    for name in ("c1", "c2", "c3"):
        fresh.put(name, f"token-{name}", None, fresh.mark())
    fresh.forget("c1")
    assert (fresh.get("c1"), fresh.get("c2")) == (None, "token-c2")
    fresh.forget()
    assert fresh.get("c2") is None and fresh.get("c3") is None
    fresh.put("c4", "replaced-soon", None, fresh.mark())
    fresh.put(
        "c4", "new", utcnow() + timedelta(seconds=10), fresh.mark()
    )  # a newer token too close
    assert fresh.get("c4") is None  # never the older one


def test_a_token_read_while_its_connection_was_forgotten_is_not_kept() -> None:
    """A disconnect that lands while the keeper reads a token from the database: the
    token read must not be put back afterwards."""
    fresh = FreshTokens(LEEWAY)
    mark = fresh.mark()  # the keeper starts reading c1's token
    fresh.forget("c1")  # meanwhile: disconnected
    fresh.put("c1", "read-before-the-disconnect", None, mark)
    assert fresh.get("c1") is None
    fresh.put("c1", "read-afterwards", None, fresh.mark())
    assert fresh.get("c1") == "read-afterwards"
