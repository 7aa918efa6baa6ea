"""Group commit on SQLite and PostgreSQL: concurrent fires of one process share a transaction
and a commit, each in its own savepoint; a failing member fails alone, a refusal in a batch
is audited, a failed commit retries each member alone, closing drains the batch, a process
killed mid-batch loses nothing that returned, and audit positions stay gap-free and in
commit order with writers in several processes."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from batchhold import HOLD, MEMBERS, Boom, new_case, wait_for
from batchload import fire_in_threads, fire_until_killed
from helpers import EXAMPLE_DIR, changes, make_registry
from storekit import record, setup, started
from structlog.testing import CapturingLogger

from opcatflow.engine import Engine, FrozenClock, TransitionRefused
from opcatflow.engine.errors import StoreError
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import DuplicateKey, UnitOfWork
from opcatflow.engine.sql import SQLAlchemyStore
from opcatflow.engine.sql import tables as t


def held_batch(
    group: Any, first: Callable[[], Any], others: list[Callable[[], Any]]
) -> list[Future[Any]]:
    """Run ``first`` (whose work must call ``hold``) so that it leads a batch of one and
    keeps it open until every one of ``others`` is queued; they then share the next batch."""
    pool = ThreadPoolExecutor(1 + len(others))
    futures = [pool.submit(first)]
    wait_for(HOLD.entered.is_set, "the first unit of work runs")
    futures += [pool.submit(call) for call in others]
    wait_for(lambda: group.queued() == len(others), "the others are queued")
    HOLD.release.set()
    pool.shutdown(wait=True)
    return futures


@pytest.fixture(autouse=True)
def _fresh_hold() -> None:
    HOLD.reset()


@pytest.fixture
def engine(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    with Engine.open(db_url, [EXAMPLE_DIR], make_registry(), clock=clock) as opened:
        yield opened


def capturing() -> tuple[Any, CapturingLogger]:
    sink = CapturingLogger()
    logger = structlog.wrap_logger(
        sink, processors=[], wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG)
    )
    return logger, sink


def test_one_failing_fire_of_a_batch_fails_alone_and_a_refusal_in_it_is_audited(
    engine: Engine,
) -> None:
    cases = [new_case(engine) for _ in range(MEMBERS + 1)]
    group = engine.store.group  # type: ignore[attr-defined]
    before = group.stats()

    def boom(*_: object) -> None:
        raise Boom

    def edit(n: int) -> Callable[[], Instance]:
        also = boom if n == 2 else None
        trigger = "approve" if n == 4 else "edit"  # approve from draft: refused
        return lambda: engine.fire(cases[n], trigger, actor="w", role="reviewer", also=also)

    first = lambda: engine.fire(cases[0], "edit", actor="w", role="clerk", also=HOLD)  # noqa: E731
    futures = held_batch(group, first, [edit(n) for n in range(1, MEMBERS + 1)])

    with pytest.raises(Boom):
        futures[2].result()
    with pytest.raises(TransitionRefused):
        futures[4].result()
    applied = [n for n in range(MEMBERS + 1) if n not in (2, 4)]
    assert [futures[n].result().version for n in applied] == [2] * len(applied)
    assert engine.get(cases[2]).version == 1
    assert [r.outcome for r in changes(engine, cases[2])] == ["started"]  # nothing of it kept
    assert [r.outcome for r in changes(engine, cases[4])] == ["started", "refused"]
    after = group.stats()
    assert after.largest == MEMBERS  # the six queued behind the first shared one commit
    assert after.batches - before.batches == 2
    assert engine.verify_audit().ok


def submitting(store: SQLAlchemyStore, queued: bool) -> Callable[[Callable[..., Any]], Any]:
    """``store.submit``, or (``queued``) ``submit_soon`` waited on: the same work led by the
    store's committing thread instead of a caller's."""
    if not queued:
        return store.submit
    return lambda work: store.submit_soon(work).result(20)


@pytest.mark.parametrize("queued", [False, True], ids=["waiting", "queued"])
def test_a_failed_batch_commit_retries_each_member_alone(db_url: str, queued: bool) -> None:
    # One member appends a record whose seq is taken: the batch's commit fails on it (audit
    # records are inserted at the commit), each member runs again alone, and only that one
    # fails again, with a StoreError.
    logger, sink = capturing()
    store = SQLAlchemyStore(db_url, logger=logger)
    try:
        store.ensure_schema()
        setup(store)
        taken = store.submit(started)

        def forge(uow: UnitOfWork) -> None:
            uow.audit.append(record(taken.id, 1)._replace(actor="mallory"))

        def hold(uow: UnitOfWork) -> Instance:
            HOLD()
            return started(uow)

        submit = submitting(store, queued)
        others = [lambda: submit(started) for _ in range(MEMBERS - 1)]
        futures = held_batch(
            store.group, lambda: store.submit(hold), [*others, lambda: submit(forge)]
        )
        with pytest.raises(DuplicateKey):
            futures[-1].result()
        assert isinstance(futures[-1].exception(), StoreError)
        kept = {taken.id} | {f.result().id for f in futures[:-1]}
        stats = store.group.stats()
        assert stats.retried_alone == MEMBERS
        with store.read() as uow:
            assert {i.id for i in uow.instances.query(limit=100)} == kept
            records = uow.audit.after(0)
        assert [r.position for r in records] == list(range(1, len(kept) + 1))
        assert [r.actor for r in records if r.instance_id == taken.id] == ["a"]
        batches = [c.kwargs for c in sink.calls if c.kwargs["event"] == "group_commit"]
        assert {"batch": MEMBERS, "deferred": 0}.items() <= batches[-1].items()
        assert batches[-1]["wait_ms"] >= 0
        assert [c.method_name for c in sink.calls if c.kwargs["event"] == "group_commit"] == [
            "debug"
        ] * len(batches)
        assert any(c.kwargs["event"] == "group_commit_failed" for c in sink.calls)
    finally:
        store.close()


@pytest.mark.parametrize("queued", [False, True], ids=["waiting", "queued"])
def test_closing_drains_the_batch_in_flight_and_refuses_new_work(db_url: str, queued: bool) -> None:
    store = SQLAlchemyStore(db_url)
    closer = threading.Thread(target=store.close)
    try:
        store.ensure_schema()
        setup(store)

        def hold(uow: UnitOfWork) -> Instance:
            HOLD()
            return started(uow)

        submit = submitting(store, queued)
        pool = ThreadPoolExecutor(4)
        futures = [pool.submit(submit, hold)]
        wait_for(HOLD.entered.is_set, "the first unit of work runs")
        futures += [pool.submit(submit, started) for _ in range(3)]
        wait_for(lambda: store.group.queued() == 3, "the others are queued")
        closer.start()
        wait_for(lambda: store.group._closed, "the store is closing")
        with pytest.raises(StoreError, match="closed"):
            submit(started)
        assert closer.is_alive()  # still draining
        HOLD.release.set()
        closer.join(timeout=20)
        assert not closer.is_alive()
        assert len({f.result().id for f in futures}) == 4
        pool.shutdown()
    finally:
        HOLD.release.set()
        if not closer.is_alive() and closer.ident is None:
            store.close()
    reopened = SQLAlchemyStore(db_url)
    with reopened.read() as uow:
        assert len(uow.audit.after(0)) == 4
    reopened.close()


def test_a_member_that_would_wait_for_a_row_lock_runs_in_a_later_batch(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's (SQLite's writers hold the whole file)")
    store = SQLAlchemyStore(db_url)
    holder = sa.create_engine(store.url)
    try:
        store.ensure_schema()
        setup(store)
        busy = store.submit(started)

        def hold(uow: UnitOfWork) -> Instance:
            HOLD()
            return started(uow)

        def touch_busy(uow: UnitOfWork) -> int:
            return uow.instances.lock(busy.id).version

        with holder.begin() as conn:  # another transaction holds the case's row
            conn.execute(
                sa.text("SELECT 1 FROM instances WHERE id = :id FOR UPDATE"), {"id": busy.id}
            )
            pool = ThreadPoolExecutor(3)
            first = pool.submit(store.submit, hold)
            wait_for(HOLD.entered.is_set, "the first unit of work runs")
            free = pool.submit(store.submit, started)
            wait_for(lambda: store.group.queued() == 1, "the second is queued")
            waiting = pool.submit(store.submit, touch_busy)  # second of the next batch
            wait_for(lambda: store.group.queued() == 2, "the third is queued")
            HOLD.release.set()
            first.result(timeout=20)
            free.result(timeout=20)  # its batch committed without waiting for the lock
            assert store.group.stats().deferred == 1
            time.sleep(0.1)
            assert not waiting.done()  # now first of its batch: it waits for the lock
        assert waiting.result(timeout=20) == 1
        pool.shutdown()
    finally:
        HOLD.release.set()
        holder.dispose()
        store.close()


def test_positions_stay_gap_free_and_in_order_with_writers_in_several_processes(
    db_url: str,
) -> None:
    processes, threads, fires = 3, 3, 8
    Engine.open(db_url, [EXAMPLE_DIR], make_registry()).close()
    store = SQLAlchemyStore(db_url)
    spawn = multiprocessing.get_context("spawn")
    pages: list[list[int]] = []
    try:
        with spawn.Pool(processes) as pool:
            barrier = spawn.Manager().Barrier(processes)
            result = pool.starmap_async(
                fire_in_threads, [(db_url, threads, fires, barrier)] * processes
            )
            last = 0
            while True:
                finished = result.ready()
                with store.read() as uow:
                    page = [r.position or 0 for r in uow.audit.after(last)]
                if page:
                    pages.append(page)
                    last = page[-1]
                elif finished:
                    break
                time.sleep(0.002)
            written = sum(result.get(timeout=120))
        seen = [p for page in pages for p in page]
        with store.read() as uow:  # starts, fires and the obligation records they wrote
            stored = sum(1 for _ in uow.audit.records())
        assert all(page[0] == prev[-1] + 1 for prev, page in itertools.pairwise(pages))
        assert seen == list(range(1, stored + 1))
        assert stored >= written
    finally:
        store.close()
    with Engine.open(db_url, [EXAMPLE_DIR], make_registry()) as engine:
        assert engine.verify_audit().ok


def test_a_process_killed_during_batches_loses_nothing_that_returned(
    db_url: str, tmp_path: Path
) -> None:
    Engine.open(db_url, [EXAMPLE_DIR], make_registry()).close()
    returned = tmp_path / "returned.txt"
    victim = multiprocessing.get_context("spawn").Process(
        target=fire_until_killed, args=(db_url, str(returned), 6)
    )
    victim.start()
    try:
        wait_for(
            lambda: returned.exists() and returned.read_text().count("\n") >= 300,
            "fires returned",
            timeout=120,
        )
    finally:
        os.kill(victim.pid or 0, signal.SIGKILL)
        victim.join()
    assert victim.exitcode == -signal.SIGKILL
    latest: dict[str, int] = {}
    for line in returned.read_text().splitlines():
        case, version = line.split()
        latest[case] = max(latest.get(case, 0), int(version))
    with Engine.open(db_url, [EXAMPLE_DIR], make_registry()) as engine:
        for case, version in latest.items():
            assert engine.get(case).version >= version  # every fire that returned is stored
        assert engine.verify_audit().ok
        with engine.store.read() as uow:
            positions = [r.position for r in uow.audit.after(0, limit=100_000)]
        with engine.store.connect() as conn:  # type: ignore[attr-defined]
            count = conn.execute(sa.select(sa.func.count()).select_from(t.audit)).scalar()
    assert positions == list(range(1, count + 1))


def test_a_pool_larger_than_postgresql_allows_is_named_at_opening(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no connection limit")
    logger, sink = capturing()
    for pool_size in (5, 100_000):
        store = SQLAlchemyStore(db_url, pool_size=pool_size, logger=logger)
        store.ensure_schema()
        store.close()
    warnings = [c.kwargs for c in sink.calls if c.kwargs["event"] == "pool_exceeds_max_connections"]
    assert [w["pool_size"] for w in warnings] == [100_000]
    assert warnings[0]["server_allows"] < 200_000
