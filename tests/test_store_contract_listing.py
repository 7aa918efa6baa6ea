"""The store contract, listing part: id prefixes, counts and keyset pages, on every store
(memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from storekit import T0, definition, started

from opcatflow.engine.errors import AmbiguousId, IdTooShort, InstanceNotFound
from opcatflow.engine.identity import resolve_id
from opcatflow.engine.ports import Store
from opcatflow.engine.rows import ListHolds

A = "abcdef12-0000-4000-8000-000000000001"
B = "abcdef12-0000-4000-8000-000000000002"
C = "abcdef13-1111-4000-8000-000000000003"


@pytest.fixture
def three(store: Store) -> Store:
    with store.write() as uow:
        uow.definitions.add(definition())
        for i, instance_id in enumerate((C, A, B)):
            started(uow, instance_id=instance_id, created=T0 + timedelta(seconds=i))
    return store


def test_ids_starting_with_a_prefix_come_sorted_and_exact(three: Store) -> None:
    with three.read() as uow:
        ids = uow.instances.ids_starting_with
        assert ids("abcdef12", 10) == [A, B]
        assert ids("abcdef12-", 10) == [A, B]  # a prefix ending in a hyphen
        assert ids("abcdef12-0000-4000-8000-000000000002", 10) == [B]
        assert ids("abcdef1", 10) == [A, B, C]
        assert ids("abcdef1", 2) == [A, B]
        assert ids("abcdef14", 10) == []
        assert ids("ABCDEF12", 10) == []  # case-sensitive: the engine lowers it


def test_a_prefix_resolves_to_one_id_or_says_why_not(three: Store) -> None:
    with three.read() as uow:
        assert resolve_id(uow.instances, "abcdef13") == C
        assert resolve_id(uow.instances, "ABCDEF13-1111") == C
        assert resolve_id(uow.instances, A) == A
        with pytest.raises(AmbiguousId) as ambiguous:
            resolve_id(uow.instances, "abcdef12")
        assert ambiguous.value.candidates == (A, B)
        assert f"({A}, {B})" in str(ambiguous.value)
        with pytest.raises(IdTooShort):
            resolve_id(uow.instances, "abcdef1")
        with pytest.raises(InstanceNotFound):
            resolve_id(uow.instances, "abcdef14")


def test_counts_and_pages_are_keyset_exact_while_instances_are_added(three: Store) -> None:
    with three.read() as uow:
        first = uow.instances.query(limit=2)
        assert [i.id for i in first] == [C, A]
        key = (first[-1].created_at, first[-1].id)
        assert uow.instances.count() == 3
        assert uow.instances.count(after=key) == 1
    # started between two pages: one at the same second as the last row shown, sorting
    # after it by id, and one later; neither is skipped, nothing is repeated
    same_second = "abcdef12-9999-4000-8000-000000000009"
    with three.write() as uow:
        started(uow, instance_id=same_second, created=T0 + timedelta(seconds=1))
        started(uow, created=T0 + timedelta(seconds=5))
    with three.read() as uow:
        rest = uow.instances.query(after=key, limit=10)
        assert [i.id for i in rest][:2] == [same_second, B]
        assert len(rest) == 3
        assert uow.instances.count(after=key) == 3
        assert uow.instances.count(state="open", where={"x": 1}) == 0


def test_a_list_filter_finds_the_lists_that_hold_a_value(store: Store) -> None:
    """``ListHolds``: a list field holding the value, compared as text (a place id among a
    recommendation's places); a list without it, a scalar field or no field never match."""
    rows = {
        A: {"places": ["north-prison", "south-station"]},
        B: {"places": ["north-prison"]},
        C: {"places": ["north-prison-annex"]},
    }
    others = [{"places": []}, {"places": "north-prison"}, {"places": [7]}, {}]
    with store.write() as uow:
        uow.definitions.add(definition())
        for i, (instance_id, data) in enumerate(rows.items()):
            started(uow, instance_id=instance_id, data=data, created=T0 + timedelta(seconds=i))
        for data in others:
            started(uow, data=data, created=T0 + timedelta(seconds=9))
    with store.read() as uow:
        north = {"places": ListHolds("north-prison")}
        assert [i.id for i in uow.instances.query(where=north)] == [A, B]
        assert uow.instances.count(where=north) == 2
        both = {**north, "places_too": ListHolds("x")}
        assert uow.instances.count(where=both) == 0
        annex = uow.instances.query(where={"places": ListHolds("north-prison-annex")})
        assert [i.id for i in annex] == [C]
        assert uow.instances.query(where={"places": ListHolds("7")}) == []
