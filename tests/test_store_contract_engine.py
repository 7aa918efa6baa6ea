"""The store contract, part 4: the engine on every store. What a caller of ``Engine`` relies
on from the store (one fire, one transaction; conflicts; rollbacks; threads; each deadline
processed once) holds in memory, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from helpers import EXAMPLE_DIR, changes, make_registry

from opcatflow.engine import (
    ConcurrentUpdate,
    DeadlineEvent,
    Engine,
    FrozenClock,
    TransitionEvent,
    TransitionRefused,
    load_catalog,
)
from opcatflow.engine.ports import Store, UnitOfWork
from opcatflow.engine.scheduler import Scheduler

WRITERS = 4
EDITS = 10


class Breaks:
    """A hook that fails on ``submit``, after the engine wrote the change."""

    def on_change(self, uow: UnitOfWork, event: TransitionEvent) -> None:
        if event.trigger == "submit":
            raise RuntimeError("disk full")

    def on_deadline(self, uow: UnitOfWork, event: DeadlineEvent) -> None:
        pass


def engine_on(store: Store, clock: FrozenClock, *hooks: Breaks) -> Engine:
    registry = make_registry()
    catalog = load_catalog([EXAMPLE_DIR], registry)
    return Engine(store, catalog, registry, clock=clock, hooks=hooks)


@pytest.fixture
def example(store: Store, clock: FrozenClock) -> Iterator[Engine]:
    with engine_on(store, clock) as eng:
        yield eng


def start(eng: Engine, **data: object) -> str:
    return eng.start("example", actor="cleo", role="clerk", data={"title": "T", **data}).id


def test_each_change_is_stored_with_its_record_and_the_chains_verify(example: Engine) -> None:
    case = start(example, score=3)
    with pytest.raises(TransitionRefused, match="cannot be fired in state 'draft'"):
        example.fire(case, "approve", actor="cleo", role="clerk")
    example.fire(case, "submit", actor="cleo", role="clerk")
    assert (example.get(case).state, example.get(case).version) == ("review", 2)
    assert [r.outcome for r in changes(example, case)] == ["started", "refused", "applied"]
    # and the records of the obligation the start armed and the submission met (by leaving)
    assert [r.outcome for r in example.history(case)] == [
        "started", "pending", "refused", "applied", "met",
    ]  # fmt: skip
    assert example.verify_audit().ok


def test_a_failing_hook_rolls_back_the_transition_its_record_and_its_timers(
    store: Store, clock: FrozenClock
) -> None:
    with engine_on(store, clock, Breaks()) as eng:
        case = start(eng, score=3)
        with store.read() as uow:
            armed = uow.timers.open_timers(reminders=True)
        with pytest.raises(RuntimeError, match="disk full"):
            eng.fire(case, "submit", actor="cleo", role="clerk")
        assert (eng.get(case).state, len(changes(eng, case))) == ("draft", 1)
        with store.read() as uow:
            assert uow.timers.open_timers(reminders=True) == armed  # not cancelled


def test_a_stale_expected_version_is_a_conflict_and_stores_nothing(example: Engine) -> None:
    case = start(example)
    example.fire(case, "edit", actor="cleo", role="clerk", data={"score": 1})
    with pytest.raises(ConcurrentUpdate) as caught:
        example.fire(case, "submit", actor="cleo", role="clerk", expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert example.get(case).state == "draft"
    assert len(changes(example, case)) == 2


def edit_many(eng: Engine, case: str, use_versions: bool) -> tuple[int, int]:
    applied = conflicts = 0
    for _ in range(EDITS):
        expected = eng.get(case).version if use_versions else None
        try:
            eng.fire(case, "edit", actor="w", role="clerk", expected_version=expected)
            applied += 1
        except ConcurrentUpdate:
            conflicts += 1
    return applied, conflicts


@pytest.mark.parametrize("use_versions", [False, True], ids=["serialised", "versions"])
def test_threads_firing_on_one_instance_lose_no_update(example: Engine, use_versions: bool) -> None:
    case = start(example)
    gate = threading.Barrier(WRITERS)

    def writer(_: int) -> tuple[int, int]:
        gate.wait(timeout=10)
        return edit_many(example, case, use_versions)

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(writer, range(WRITERS)))
    applied = sum(a for a, _ in results)
    assert applied + sum(c for _, c in results) == WRITERS * EDITS
    if not use_versions:
        assert applied == WRITERS * EDITS
    instance = example.get(case)
    assert (instance.version, instance.data.get("edits", 0)) == (1 + applied, applied)
    assert len(changes(example, case)) == 1 + applied  # one record per change
    assert example.verify_audit().ok


def test_schedulers_ticking_at_once_process_each_due_timer_once(
    example: Engine, clock: FrozenClock
) -> None:
    cases = [start(example) for _ in range(6)]
    later = clock.now() + timedelta(days=30)
    gate = threading.Barrier(3)

    def tick(_: int) -> list[int]:
        gate.wait(timeout=10)
        return [f.timer_id for f in Scheduler(example, batch_size=2).tick(later).firings]

    with ThreadPoolExecutor(3) as pool:
        ticks = list(pool.map(tick, range(3)))
    fired = sorted(t for timer_ids in ticks for t in timer_ids)
    assert len(fired) == len(set(fired)) == 12  # a reminder and a due date per case
    assert all(
        [r.outcome for r in example.history(case)] == ["started", "pending", "reminder", "due"]
        for case in cases
    )
