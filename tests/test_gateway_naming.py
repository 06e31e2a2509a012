"""Aggregated tool names: valid, stable, collision-free, never silently dropped."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from dodo_jupyter.gateway.naming import NAME_PATTERN, aggregate_names


def test_plain_names() -> None:
    names = aggregate_names([("github", "create_issue"), ("demo", "echo")])
    assert names == {
        ("github", "create_issue"): "github__create_issue",
        ("demo", "echo"): "demo__echo",
    }


def test_long_names_keep_a_readable_head_and_a_hash() -> None:
    tool = "list_all_repository_collaborators_including_outside_and_pending_ones"
    name = aggregate_names([("github", tool)])[("github", tool)]
    assert len(name) <= 64 and NAME_PATTERN.match(name)
    assert name.startswith("github__list_all_repository_collaborators")
    assert name[-9] == "_" and all(c in "0123456789abcdef" for c in name[-8:])


def test_names_differing_only_after_64_characters_stay_apart() -> None:
    base = "x" * 70
    pairs = [("s", base + "a"), ("s", base + "b")]
    names = aggregate_names(pairs)
    assert len(set(names.values())) == 2


def test_bad_characters_are_replaced_and_hashed() -> None:
    pairs = [("demo", "get.weather"), ("demo", "get weather"), ("demo", "get_weather")]
    names = aggregate_names(pairs)
    assert names[("demo", "get_weather")] == "demo__get_weather"
    assert names[("demo", "get.weather")].startswith("demo__get_weather_")
    assert len(set(names.values())) == 3


def test_collisions_hash_every_party_independent_of_order() -> None:
    # "a__b" + "c" and "a" + "b__c" both give "a__b__c".
    pairs = [("a__b", "c"), ("a", "b__c")]
    first = aggregate_names(pairs)
    second = aggregate_names(list(reversed(pairs)))
    assert first == second
    assert "a__b__c" not in first.values() and len(set(first.values())) == 2


pair = st.tuples(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=32),
    st.text(min_size=1, max_size=120),
)


@given(st.lists(pair, max_size=40))
def test_every_tool_gets_a_valid_unique_stable_name(pairs: list[tuple[str, str]]) -> None:
    names = aggregate_names(pairs)
    assert set(names) == set(pairs)
    assert all(NAME_PATTERN.match(n) for n in names.values())
    assert len(set(names.values())) == len(names)
    shuffled = list(pairs)
    random.Random(7).shuffle(shuffled)
    assert aggregate_names(shuffled) == names
