"""The gateway's listing cache (dodo_jupyter.gateway.listing): when an entry is served."""

from __future__ import annotations

import pytest

from dodo_jupyter.gateway import listing
from dodo_jupyter.gateway.listing import ListingCache


def test_an_entry_is_served_while_generation_and_stamps_hold() -> None:
    cache: ListingCache[str] = ListingCache(60)
    stamps = {"a": 1, "b": 7}
    cache.put("ann", "tools", 3, stamps)
    assert cache.get("ann", 3, stamps.get) == "tools"
    assert cache.get("bob", 3, stamps.get) is None


@pytest.mark.parametrize(
    ("generation", "now_stamps"),
    [
        (4, {"a": 1, "b": 7}),  # a connection changed in this process
        (3, {"a": 2, "b": 7}),  # a server's tools were fetched again
        (3, {"a": 1}),  # a session closed or its list was dropped (list_changed)
    ],
)
def test_a_change_ends_the_entry(generation: int, now_stamps: dict[str, int]) -> None:
    cache: ListingCache[str] = ListingCache(60)
    cache.put("ann", "tools", 3, {"a": 1, "b": 7})
    assert cache.get("ann", generation, now_stamps.get) is None
    # ...for good: the entry is gone even if things look as before again
    assert cache.get("ann", 3, {"a": 1, "b": 7}.get) is None


def test_entries_expire_and_can_be_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(listing.time, "monotonic", lambda: now[0])
    cache: ListingCache[str] = ListingCache(60)
    stamps = {"a": 1}
    cache.put("ann", "x", 0, stamps)
    now[0] += 59
    assert cache.get("ann", 0, stamps.get) == "x"
    now[0] += 1
    assert cache.get("ann", 0, stamps.get) is None

    cache.put("ann", "x", 0, stamps)
    cache.put("bob", "y", 0, {"b": 1})
    cache.drop_connection("a")
    assert cache.get("ann", 0, stamps.get) is None
    assert cache.get("bob", 0, {"b": 1}.get) == "y"
    cache.drop("bob")
    assert cache.get("bob", 0, {"b": 1}.get) is None


def test_max_age_zero_turns_the_cache_off() -> None:
    cache: ListingCache[str] = ListingCache(0)
    cache.put("ann", "x", 0, {})
    assert cache.get("ann", 0, {}.get) is None
