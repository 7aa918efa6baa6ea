"""``Engine.fire_soon`` and ``Store.submit_soon``: a fire queued without a thread waiting for it
(the HTTP API's event loop) joins the same group commit as fires that wait, is led by the
store's committing thread, and settles its future only once the commit is durable: with the
result, the refusal (audited), or its own error, on SQLite, PostgreSQL and in memory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from batchhold import HOLD, MEMBERS, Boom, wait_for
from helpers import EXAMPLE_DIR, changes, make_registry
from storekit import record, setup, started

from opcatflow.engine import Engine, FrozenClock, TransitionRefused
from opcatflow.engine.errors import StoreError
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import DuplicateKey, UnitOfWork
from opcatflow.engine.sql import SQLAlchemyStore


@pytest.fixture(autouse=True)
def _fresh_hold() -> None:
    HOLD.reset()


@pytest.fixture
def engine(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    with Engine.open(db_url, [EXAMPLE_DIR], make_registry(), clock=clock) as opened:
        yield opened


def new_case(engine: Engine) -> str:
    return engine.start("example", actor="ana", role="clerk", data={"title": "t"}).id


def test_queued_fires_share_the_batch_of_waiting_ones_and_settle_after_the_commit(
    engine: Engine,
) -> None:
    cases = [new_case(engine) for _ in range(MEMBERS + 2)]
    group = engine.store.group  # type: ignore[attr-defined]
    before = group.stats()
    threads: set[str] = set()

    def boom(*_: object) -> None:
        raise Boom

    def seen(*_: object) -> None:
        threads.add(threading.current_thread().name)

    pool = ThreadPoolExecutor(2)
    first = pool.submit(engine.fire, cases[0], "edit", actor="w", role="clerk", also=HOLD)
    wait_for(HOLD.entered.is_set, "the first fire runs")
    queued: list[Future[Any]] = []
    for n in range(1, MEMBERS + 1):
        trigger = "approve" if n == 4 else "edit"  # approve from draft: refused
        also = boom if n == 2 else seen
        queued.append(engine.fire_soon(cases[n], trigger, actor="w", role="reviewer", also=also))
    waiting = pool.submit(engine.fire, cases[-1], "edit", actor="w", role="clerk")
    wait_for(lambda: group.queued() == MEMBERS + 1, "every fire is queued")
    assert not any(f.done() for f in queued)  # nothing settles before its commit
    HOLD.release.set()

    assert first.result(20).version == 2
    assert waiting.result(20).version == 2
    with pytest.raises(Boom):
        queued[1].result(20)
    with pytest.raises(TransitionRefused):
        queued[3].result(20)
    assert [queued[i].result(20).instance.version for i in (0, 2, 4, 5)] == [2] * 4
    assert engine.get(cases[2]).version == 1  # the failing one kept nothing
    assert [r.outcome for r in changes(engine, cases[4])] == ["started", "refused"]
    # the queued fires ran in the store's committing thread, none in a caller's
    assert threads == {t for t in threads if t.startswith("opcatflow-commit")} != set()
    after = group.stats()
    assert after.batches - before.batches == 2
    assert after.largest == MEMBERS + 1
    pool.shutdown()
    assert engine.verify_audit().ok


def test_a_lone_queued_fire_is_led_by_the_committing_thread(engine: Engine) -> None:
    case = new_case(engine)
    where: list[str] = []
    fired = engine.fire_soon(
        case, "edit", actor="w", role="clerk",
        also=lambda *_: where.append(threading.current_thread().name),
    )  # fmt: skip
    assert fired.result(20).instance.version == 2
    assert where[0].startswith("opcatflow-commit")
    assert engine.get(case).version == 2


def test_input_is_checked_before_anything_is_queued(engine: Engine) -> None:
    case = new_case(engine)
    with pytest.raises(ValueError, match="role"):
        engine.fire_soon(case, "edit", actor="w")
    assert engine.store.group.queued() == 0  # type: ignore[attr-defined]
    assert engine.get(case).version == 1


def test_a_failed_batch_commit_retries_queued_work_alone(db_url: str) -> None:
    store = SQLAlchemyStore(db_url)
    try:
        store.ensure_schema()
        setup(store)
        taken = store.submit(started)

        def forge(uow: UnitOfWork) -> None:
            uow.audit.append(record(taken.id, 1)._replace(actor="mallory"))

        def hold(uow: UnitOfWork) -> Instance:
            HOLD()
            return started(uow)

        pool = ThreadPoolExecutor(1)
        first = pool.submit(store.submit, hold)
        wait_for(HOLD.entered.is_set, "the first unit of work runs")
        queued = [store.submit_soon(started) for _ in range(MEMBERS - 1)]
        forged = store.submit_soon(forge)
        wait_for(lambda: store.group.queued() == MEMBERS, "the others are queued")
        HOLD.release.set()
        with pytest.raises(DuplicateKey):
            forged.result(20)
        assert isinstance(forged.exception(), StoreError)
        kept = {taken.id, first.result(20).id} | {f.result(20).id for f in queued}
        assert store.group.stats().retried_alone == MEMBERS  # the forged one too
        with store.read() as uow:
            assert {i.id for i in uow.instances.query(limit=100)} == kept
        pool.shutdown()
    finally:
        HOLD.release.set()
        store.close()


def test_closing_settles_every_queued_fire_and_refuses_new_ones(db_url: str) -> None:
    store = SQLAlchemyStore(db_url)
    closer = threading.Thread(target=store.close)
    try:
        store.ensure_schema()
        setup(store)

        def hold(uow: UnitOfWork) -> Instance:
            HOLD()
            return started(uow)

        leading = store.submit_soon(hold)
        wait_for(HOLD.entered.is_set, "the first unit of work runs")
        queued = [store.submit_soon(started) for _ in range(3)]
        closer.start()
        wait_for(lambda: store.group._closed, "the store is closing")
        with pytest.raises(StoreError, match="closed"):
            store.submit_soon(started)
        HOLD.release.set()
        closer.join(timeout=20)
        assert not closer.is_alive()
        assert len({f.result(0).id for f in [leading, *queued]}) == 4
    finally:
        HOLD.release.set()
        if closer.ident is None:
            store.close()


def test_in_memory_a_queued_fire_is_settled_before_it_returns(clock: FrozenClock) -> None:
    with Engine.open("memory:", [EXAMPLE_DIR], make_registry(), clock=clock) as engine:
        case = new_case(engine)
        fired = engine.fire_soon(case, "edit", actor="w", role="clerk")
        assert fired.done()
        assert fired.result().instance.version == 2
        refused = engine.fire_soon(case, "approve", actor="w", role="reviewer")
        assert isinstance(refused.exception(), TransitionRefused)
        assert [r.outcome for r in changes(engine, case)][-1] == "refused"
