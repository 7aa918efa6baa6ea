"""The store contract, part 3: deadline timers and the outbox, armed with a change and claimed
by workers that never get the same row (see tests/test_store_contract_units.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from storekit import T0, due, message, setup, started

from opcatflow.engine.ports import DuplicateKey, Store, UnitOfWork
from opcatflow.engine.rows import OutboxStatus, SendOutcome, TimerStatus

HOUR = timedelta(hours=1)


def armed(store: Store, count: int = 3) -> str:
    """An instance with ``count`` due timers of deadline ``d<i>``, due one hour apart."""
    setup(store)
    with store.write() as uow:
        new = started(uow)
        planned = [due(f"d{i}", T0 + i * HOUR) for i in range(count)]
        uow.timers.arm(new.id, "open", planned, T0)
    return new.id


def test_armed_timers_are_pending_and_carry_their_instance_and_workflow(store: Store) -> None:
    instance_id = armed(store, 1)
    with store.write() as uow:
        uow.timers.arm(instance_id, "open", [due("d0", T0 + HOUR, reminder=True)], T0)
    with store.read() as uow:
        [deadline, reminder] = uow.timers.of_deadline(instance_id, "open", "d0")
    assert (deadline.status, deadline.kind, deadline.workflow_id) == ("pending", "due", "contract")
    assert (deadline.due_at, deadline.occurrence, deadline.attempts) == (T0, 1, 0)
    assert reminder.deadline_due == T0 + HOUR + timedelta(1)
    assert deadline.id < reminder.id


def test_cancel_closes_the_open_timers_of_a_state(store: Store) -> None:
    instance_id = armed(store)
    with store.write() as uow:
        uow.timers.cancel(instance_id, "open", at=T0, note="left by go", deadline="d1")
    with store.write() as uow:
        uow.timers.cancel(instance_id, "open", at=T0 + HOUR, note="left by close")
        uow.timers.cancel(instance_id, "elsewhere", at=T0, note="nothing")
    with store.read() as uow:
        rows = [uow.timers.of_deadline(instance_id, "open", f"d{i}")[0] for i in range(3)]
        assert uow.timers.next_due() is None
    assert [(t.status, t.closed_at, t.note) for t in rows] == [
        (TimerStatus.CANCELLED, T0 + HOUR, "left by close"),
        (TimerStatus.CANCELLED, T0, "left by go"),
        (TimerStatus.CANCELLED, T0 + HOUR, "left by close"),
    ]


def test_a_paused_timer_resumes_due_later_by_the_time_it_was_paused(store: Store) -> None:
    instance_id = armed(store, 2)
    with store.write() as uow:
        uow.timers.pause(instance_id, "open", {"d1"}, T0)
    with store.read() as uow:
        assert uow.timers.of_deadline(instance_id, "open", "d1")[0].status == "paused"
        assert uow.timers.due_count(T0 + 5 * HOUR) == 1
    with store.write() as uow:
        uow.timers.resume(instance_id, "open", {"d1"}, T0 + 2 * HOUR)
    with store.read() as uow:
        resumed = uow.timers.of_deadline(instance_id, "open", "d1")[0]
    assert (resumed.status, resumed.due_at, resumed.paused_at) == ("pending", T0 + 3 * HOUR, None)


def test_next_due_due_count_and_the_open_list_read_what_is_armed(store: Store) -> None:
    instance_id = armed(store)
    with store.write() as uow:
        uow.timers.arm(instance_id, "open", [due("d0", T0 - HOUR, reminder=True)], T0)
        uow.timers.close(1, TimerStatus.FIRED, attempts=1, at=T0, note=None)
    with store.read() as uow:
        assert uow.timers.next_due() == T0 - HOUR
        assert uow.timers.due_count(T0 + HOUR) == 2  # the reminder and d1
        assert uow.timers.newest_id() == 4
        assert uow.timers.status(1) == TimerStatus.FIRED
        assert uow.timers.status(99) is None
        assert [t.deadline for t in uow.timers.open_timers()] == ["d1", "d2"]
        with_reminders = uow.timers.open_timers(reminders=True, due_before=T0 + HOUR)
        assert [(t.deadline, t.kind) for t in with_reminders] == [("d0", "reminder"), ("d1", "due")]
        assert uow.timers.open_timers(workflow="other") == []


def test_a_claim_takes_pending_due_timers_in_due_order_within_its_bounds(store: Store) -> None:
    instance_id = armed(store, 4)
    with store.write() as uow:
        ids = [t.id for i in range(4) for t in uow.timers.of_deadline(instance_id, "open", f"d{i}")]
        assert [t.id for t in uow.timers.claim(T0 + 2 * HOUR, 10)] == ids[:3]
        assert [t.id for t in uow.timers.claim(T0 + 9 * HOUR, 2)] == ids[:2]
        assert [t.id for t in uow.timers.claim(T0 + 9 * HOUR, 10, up_to=ids[1])] == ids[:2]
        assert [t.id for t in uow.timers.claim(T0 + 9 * HOUR, 10, exclude={ids[0]})] == ids[1:]


def test_workers_claiming_at_once_take_each_due_timer_once(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        for _ in range(4):
            new = started(uow)
            uow.timers.arm(new.id, "open", [due(f"d{i}", T0) for i in range(5)], T0)
    gate = threading.Barrier(3)

    def worker(_: int) -> list[int]:
        gate.wait(timeout=10)
        taken: list[int] = []
        while True:
            with store.write() as uow:
                batch = uow.timers.claim(T0, 3)
                for timer in batch:
                    uow.timers.close(timer.id, TimerStatus.FIRED, attempts=1, at=T0, note=None)
            if not batch:
                return taken
            taken += [t.id for t in batch]

    with ThreadPoolExecutor(3) as pool:
        claims = list(pool.map(worker, range(3)))
    every = [timer_id for taken in claims for timer_id in taken]
    assert sorted(every) == list(range(1, 21))  # all of them, none twice


def test_a_message_key_is_unique_in_the_outbox(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        uow.outbox.add([message("k1"), message("k2")], T0)
    with pytest.raises(DuplicateKey), store.write() as uow:
        uow.outbox.add([message("k3"), message("k1")], T0)
    with store.read() as uow:
        assert uow.outbox.counts() == {OutboxStatus.PENDING: 2}


def test_a_claim_leases_due_messages_and_only_its_token_finishes_them(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        uow.outbox.add([message("k1", detail={"nested": [1]})], T0)
        uow.outbox.add([message("k2")], T0 + HOUR)
    with store.write() as uow:
        [first] = uow.outbox.claim(now=T0, lease=HOUR, limit=10)
    assert (first.status, first.attempts, first.next_attempt_at) == ("sending", 1, T0 + HOUR)
    assert first.payload == {"detail": {"nested": [1]}}
    with store.write() as uow:
        assert uow.outbox.claim(now=T0 + HOUR / 2, lease=HOUR, limit=10) == []
        [again, second] = uow.outbox.claim(now=T0 + HOUR, lease=HOUR, limit=10)  # lease lapsed
    assert (again.id, again.attempts) == (first.id, 2)
    assert again.claim_token != first.claim_token
    with store.write() as uow:
        stale = SendOutcome(first, OutboxStatus.SENT)
        assert uow.outbox.finish([stale], T0 + HOUR) == 0
        fresh = SendOutcome(second, OutboxStatus.FAILED, T0 + 3 * HOUR, "timeout")
        assert uow.outbox.finish([SendOutcome(again, OutboxStatus.SENT), fresh], T0 + HOUR) == 2
    with store.read() as uow:
        sent, failed = uow.outbox.get(first.id), uow.outbox.get(second.id)
        assert uow.outbox.get(999) is None
        assert uow.outbox.counts() == {OutboxStatus.SENT: 1, OutboxStatus.FAILED: 1}
        assert [m.id for m in uow.outbox.listing({OutboxStatus.FAILED})] == [second.id]
        assert uow.outbox.listing({OutboxStatus.SENT}, after=first.id) == []
    assert sent is not None
    assert (sent.status, sent.sent_at, sent.claim_token) == (
        "sent",
        T0 + HOUR,
        None,
    )
    assert failed is not None
    assert (failed.last_error, failed.next_attempt_at) == (
        "timeout",
        T0 + 3 * HOUR,
    )


def test_retry_makes_a_dead_message_due_now_with_no_attempts_and_leaves_a_sent_one(
    store: Store,
) -> None:
    setup(store)
    with store.write() as uow:
        uow.outbox.add([message("k1")], T0)
        [claimed] = uow.outbox.claim(now=T0, lease=HOUR, limit=1)
        uow.outbox.finish([SendOutcome(claimed, OutboxStatus.DEAD, None, "refused")], T0)
    with store.write() as uow:
        before = uow.outbox.retry(claimed.id, T0 + HOUR)
        assert uow.outbox.retry(999, T0) is None
        uow.outbox.add([message("k2")], T0)
        [sending] = uow.outbox.claim(now=T0, lease=HOUR, limit=1)
        uow.outbox.finish([SendOutcome(sending, OutboxStatus.SENT)], T0)
        sent = uow.outbox.get(sending.id)
        assert uow.outbox.retry(sending.id, T0 + HOUR) == sent  # a sent message stays sent
        assert uow.outbox.get(sending.id) == sent
    with store.read() as uow:
        after = uow.outbox.get(claimed.id)
    assert before is not None
    assert before.status == "dead"
    assert after is not None
    assert (after.status, after.attempts, after.next_attempt_at) == (
        "pending",
        0,
        T0 + HOUR,
    )


def test_dispatchers_claiming_at_once_never_share_a_message(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        uow.outbox.add([message(f"k{i}") for i in range(12)], T0)
    gate = threading.Barrier(3)

    def dispatcher(_: int) -> list[int]:
        gate.wait(timeout=10)
        taken: list[int] = []
        while True:
            with store.write() as uow:
                batch = uow.outbox.claim(now=T0, lease=HOUR, limit=2)
            if not batch:
                return taken
            taken += [m.id for m in batch]

    with ThreadPoolExecutor(3) as pool:
        claims = list(pool.map(dispatcher, range(3)))
    every = sorted(m for taken in claims for m in taken)
    assert len(every) == 12
    assert len(set(every)) == 12


def hold_and_claim_beside(
    store: Store, claim: Callable[[UnitOfWork], list[int]]
) -> tuple[list[int], list[int]]:
    """Claim in one unit of work and, while it is still open, claim in another thread;
    returns (held, taken beside). A store may make the second wait for the first to commit."""
    taken: list[int] = []
    claimed = threading.Event()

    def beside() -> None:
        claimed.wait(timeout=10)
        with store.write() as uow:
            taken.extend(claim(uow))

    thread = threading.Thread(target=beside)
    thread.start()
    with store.write() as uow:
        held = claim(uow)
        claimed.set()
        thread.join(timeout=0.25)  # PostgreSQL's second claim skips the held rows and returns
    thread.join()
    return held, taken


def test_a_timer_claim_skips_the_timers_another_open_claim_holds(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        for i in range(6):  # one instance each: a claim holds the instances of its timers too
            uow.timers.arm(started(uow).id, "open", [due("d", T0 + i * HOUR)], T0)

    def claim(uow: UnitOfWork) -> list[int]:
        batch = uow.timers.claim(T0 + 9 * HOUR, 2 if not claimed_first else 10)
        for timer in batch:
            uow.timers.close(timer.id, TimerStatus.FIRED, attempts=1, at=T0, note=None)
        claimed_first.append(True)
        return [t.id for t in batch]

    claimed_first: list[bool] = []
    held, taken = hold_and_claim_beside(store, claim)
    assert (held, sorted(taken)) == ([1, 2], [3, 4, 5, 6])


def test_an_outbox_claim_skips_the_messages_another_open_claim_holds(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        uow.outbox.add([message(f"k{i}") for i in range(6)], T0)
    first: list[bool] = []

    def claim(uow: UnitOfWork) -> list[int]:
        batch = uow.outbox.claim(now=T0, lease=HOUR, limit=10 if first else 2)
        first.append(True)
        return [m.id for m in batch]

    held, taken = hold_and_claim_beside(store, claim)
    assert (held, sorted(taken)) == ([1, 2], [3, 4, 5, 6])
