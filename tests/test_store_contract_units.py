"""The store contract, part 1: units of work, savepoints, isolation, versions, threads.

One suite over every store (the ``store`` fixture: memory, SQLite, PostgreSQL), written
against :mod:`opcatflow.engine.ports` only; APScheduler's data-store tests are the model.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import pytest
from storekit import T0, definition, due, instance, message, moved, record, setup, started

from opcatflow.engine.errors import InstanceNotFound
from opcatflow.engine.ports import DuplicateKey, Store, UnitOfWork


class Boom(Exception):
    pass


def stored_ids(store: Store) -> set[str]:
    with store.read() as uow:
        return {i.id for i in uow.instances.query(limit=10_000)}


def test_a_unit_of_work_commits_everything_when_its_block_ends(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        new = started(uow, data={"title": "T"})
    with store.read() as uow:
        assert uow.instances.get(new.id) == new
        assert [r.seq for r in uow.audit.records(new.id)] == [1]


def test_an_exception_discards_every_write_of_the_unit_of_work_and_propagates(
    store: Store,
) -> None:
    setup(store)

    def fails() -> None:
        with store.write() as uow:
            new = started(uow)
            uow.timers.arm(new.id, "open", [due("answer", T0)], T0)
            uow.outbox.add([message("m1", new.id)], T0)
            uow.definitions.add(dataclasses.replace(definition(), workflow_id="other"))
            raise Boom

    with pytest.raises(Boom):
        fails()
    with store.read() as uow:
        assert uow.instances.query() == []
        assert list(uow.audit.records()) == []
        assert uow.timers.newest_id() is None
        assert uow.outbox.counts() == {}
        assert uow.definitions.get("other", 1) is None


def failing_savepoint(uow: UnitOfWork) -> None:
    """Store an instance in a savepoint, then raise out of it."""
    with uow.savepoint():
        started(uow)
        raise Boom


def test_a_savepoint_that_raises_discards_only_its_own_writes(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        kept = started(uow)
        with pytest.raises(Boom):
            failing_savepoint(uow)
        after = started(uow)
    assert stored_ids(store) == {kept.id, after.id}


def test_savepoints_nest_and_a_kept_one_goes_with_its_unit_of_work(store: Store) -> None:
    setup(store)
    with store.write() as uow, uow.savepoint():
        outer = started(uow)
        with pytest.raises(Boom):
            failing_savepoint(uow)
    assert stored_ids(store) == {outer.id}

    def fails() -> None:
        with store.write() as uow:
            with uow.savepoint():
                started(uow)
            raise Boom

    with pytest.raises(Boom):
        fails()
    assert stored_ids(store) == {outer.id}


def test_no_other_unit_of_work_sees_writes_before_they_commit(store: Store) -> None:
    setup(store)
    seen: list[tuple[bool, bool]] = []
    committing = threading.Event()
    new = instance()

    def reader() -> None:
        with store.read() as uow:
            try:
                uow.instances.get(new.id)
                found = True
            except InstanceNotFound:
                found = False
        seen.append((found, committing.is_set()))

    with store.write() as uow:
        uow.instances.insert(new)
        uow.audit.append(record(new.id, 1))
        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(timeout=0.25)  # a store may make the reader wait for the commit
        committing.set()
    thread.join()
    assert seen in ([(False, False)], [(False, True)], [(True, True)])


def test_an_update_against_a_stale_version_writes_nothing(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        current = started(uow)
    with store.write() as uow:
        assert uow.instances.update(moved(current, state="closed"), 1)
        assert not uow.instances.update(moved(current, state="reopened"), 1)
        assert not uow.instances.update(moved(current, id="nobody"), 1)
    with store.read() as uow:
        stored = uow.instances.get(current.id)
    assert (stored.state, stored.version) == ("closed", 2)


def test_the_audit_head_advances_only_from_the_seq_before(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        current = started(uow)
        assert uow.instances.advance_audit_head(current.id, 2, "b" * 64)
        assert not uow.instances.advance_audit_head(current.id, 2, "c" * 64)
    with store.read() as uow:
        assert uow.instances.audit_heads()[current.id] == (2, "b" * 64)


def test_of_writers_racing_on_one_version_exactly_one_wins(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        current = started(uow)
    gate = threading.Barrier(4)

    def write(n: int) -> bool:
        gate.wait(timeout=10)
        with store.write() as uow:
            uow.instances.lock(current.id)
            return uow.instances.update(moved(current, data={"by": n}), current.version)

    with ThreadPoolExecutor(4) as pool:
        wins = list(pool.map(write, range(4)))
    assert wins.count(True) == 1
    with store.read() as uow:
        assert uow.instances.get(current.id).data == {"by": wins.index(True)}


def test_threads_writing_at_once_lose_nothing(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        current = started(uow)

    def bump(_: int) -> None:
        for _ in range(5):
            with store.write() as uow:
                now = uow.instances.lock(current.id)
                count = now.data.get("n", 0) + 1
                assert uow.instances.update(moved(now, data={"n": count}), now.version)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(bump, range(4)))
    with store.read() as uow:
        final = uow.instances.get(current.id)
    assert (final.data["n"], final.version) == (20, 21)


def test_a_taken_instance_id_is_a_duplicate_key(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        current = started(uow)
    with pytest.raises(DuplicateKey), store.write() as uow:
        uow.instances.insert(instance(current.id, state="other"))
    with store.read() as uow:
        assert uow.instances.get(current.id).state == "open"


def test_what_a_caller_holds_cannot_change_what_is_stored(store: Store) -> None:
    setup(store)
    names = ["Ana"]
    with store.write() as uow:
        current = started(uow, data={"names": names})
    names.append("Bo")
    with store.read() as uow:
        read = uow.instances.get(current.id)
    read.data["names"].append("Cy")
    with store.read() as uow:
        assert uow.instances.get(current.id).data == {"names": ["Ana"]}


def test_a_view_of_a_dict_the_caller_holds_does_not_tie_the_stored_data_to_it(
    store: Store,
) -> None:
    # The memory store keeps the very instance it is given (flat data), so the instance must
    # own its data: a view passed in is copied, never kept.
    setup(store)
    held: dict[str, Any] = {"name": "Ana"}
    with store.write() as uow:
        current = started(uow, data=MappingProxyType(held))
    held["name"] = "Bo"
    with store.write() as uow:
        assert uow.instances.update(moved(current, data=MappingProxyType(held)), 1)
    held["name"] = "Cy"
    held["extra"] = 1
    with store.read() as uow:
        read = uow.instances.get(current.id)
    assert read.data == {"name": "Bo"}
    with pytest.raises(TypeError):
        read.data["name"] = "Di"  # type: ignore[index]
    with store.read() as uow:
        assert uow.instances.get(current.id).data == {"name": "Bo"}
        assert uow.instances.query(where={"name": "Bo"})[0].id == current.id


def test_query_filters_orders_by_creation_and_pages(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        made = [
            started(
                uow,
                data={"n": i, "urgent": i % 2 == 0, "tag": f"t{i % 3}"},
                created=T0 + timedelta(minutes=i),
            )
            for i in range(6)
        ]
        child = started(uow, parent_id=made[0].id, state="child", created=T0 + timedelta(hours=1))
    with store.read() as uow:
        q = uow.instances.query
        assert [i.id for i in q(limit=3)] == [m.id for m in made[:3]]
        page = q(after=(made[2].created_at, made[2].id), limit=2)
        assert [i.id for i in page] == [m.id for m in made[3:5]]
        assert [i.id for i in q(where={"urgent": True})] == [made[0].id, made[2].id, made[4].id]
        assert [i.id for i in q(where={"n": 4})] == [made[4].id]
        assert [i.id for i in q(where={"tag": "t1"})] == [made[1].id, made[4].id]
        assert [i.id for i in q(state="child")] == [child.id]
        assert [i.id for i in q(parent_id=made[0].id)] == [child.id]
        assert q(workflow="elsewhere") == []


def test_the_secret_is_made_once_and_the_audit_boundary_is_fixed_at_first_call(
    store: Store,
) -> None:
    assert store.secret("k") == store.secret("k")
    assert len(store.secret("k")) == 32
    assert store.secret("k") != store.secret("other")
    setup(store)
    assert store.audit_times_ordered_from() == 0
    with store.write() as uow:
        started(uow)
    assert store.audit_times_ordered_from() == 0
