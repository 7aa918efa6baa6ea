"""``Engine.fire_soon`` and ``Store.submit_soon``: a fire queued without a thread waiting for it
(the HTTP API's event loop) joins the same group commit as fires that wait, is led by the
store's committing thread, and settles its future only once the commit is durable: with the
result, the refusal (audited), or its own error, on SQLite, PostgreSQL and in memory. (A failed
batch commit and closing, with such callers: tests/test_group_commit.py, "queued".)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from batchhold import MEMBERS, Boom, Hold, new_case, wait_for
from helpers import EXAMPLE_DIR, changes, make_registry

from opcatflow.engine import Engine, FrozenClock, TransitionRefused


@pytest.fixture
def engine(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    with Engine.open(db_url, [EXAMPLE_DIR], make_registry(), clock=clock) as opened:
        yield opened


def test_queued_fires_share_the_batch_of_waiting_ones_and_settle_after_the_commit(
    engine: Engine,
) -> None:
    cases = [new_case(engine) for _ in range(MEMBERS + 2)]
    group = engine.store.group  # type: ignore[attr-defined]
    before = group.stats()
    threads: set[str] = set()
    hold = Hold()

    def boom(*_: object) -> None:
        raise Boom

    def seen(*_: object) -> None:
        threads.add(threading.current_thread().name)

    pool = ThreadPoolExecutor(2)
    first = pool.submit(engine.fire, cases[0], "edit", actor="w", role="clerk", also=hold)
    wait_for(hold.entered.is_set, "the first fire runs")
    queued: list[Future[Any]] = []
    for n in range(1, MEMBERS + 1):
        trigger = "approve" if n == 4 else "edit"  # approve from draft: refused
        also = boom if n == 2 else seen
        queued.append(engine.fire_soon(cases[n], trigger, actor="w", role="reviewer", also=also))
    waiting = pool.submit(engine.fire, cases[-1], "edit", actor="w", role="clerk")
    wait_for(lambda: group.queued() == MEMBERS + 1, "every fire is queued")
    assert not any(f.done() for f in queued)  # nothing settles before its commit
    hold.release.set()

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


def test_in_memory_a_queued_fire_is_settled_before_it_returns(clock: FrozenClock) -> None:
    with Engine.open("memory:", [EXAMPLE_DIR], make_registry(), clock=clock) as engine:
        case = new_case(engine)
        fired = engine.fire_soon(case, "edit", actor="w", role="clerk")
        assert fired.done()
        assert fired.result().instance.version == 2
        refused = engine.fire_soon(case, "approve", actor="w", role="reviewer")
        assert isinstance(refused.exception(), TransitionRefused)
        assert [r.outcome for r in changes(engine, case)][-1] == "refused"
