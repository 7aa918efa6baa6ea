"""The store contract, part 5: obligations (one row per deadline occurrence) and the timers
that point to them, on the memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from storekit import T0, setup, started

from opcatflow.engine.deadlines import DUE, REMINDER, PlannedTimer
from opcatflow.engine.errors import StoreError
from opcatflow.engine.ports import DuplicateKey, Store
from opcatflow.engine.rows import NewObligation, ObligationStatus, TimerStatus

HOUR = timedelta(hours=1)
S = ObligationStatus


def owed(instance_id: str, deadline: str, occurrence: int = 1, **kw: object) -> NewObligation:
    values: dict[str, object] = {
        "instance_id": instance_id,
        "deadline": deadline,
        "occurrence": occurrence,
        "scope": "open",
        "anchor": T0.isoformat(),
        "due_at": T0 + HOUR,
        "last_day": date(2026, 3, 2),
        "status": S.PENDING,
    }
    return NewObligation(**{**values, **kw})  # type: ignore[arg-type]


def test_an_obligation_reads_back_with_its_instance_and_identity(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        new = started(uow)
        first = uow.obligations.add(owed(new.id, "reply"), T0)
        second = uow.obligations.add(owed(new.id, "reply", 2, due_at=T0 + 2 * HOUR), T0)
        uow.obligations.add(owed(new.id, "ack"), T0)
    with store.read() as uow:
        row = uow.obligations.get(first)
        assert row is not None
        assert (row.workflow_id, row.state, row.key) == (
            "contract",
            new.state,
            (new.id, "reply", 1),
        )
        assert (row.status, row.last_day, row.anchor) == (
            S.PENDING,
            date(2026, 3, 2),
            T0.isoformat(),
        )
        assert [o.key[1:] for o in uow.obligations.of_instance(new.id)] == [
            ("ack", 1), ("reply", 1), ("reply", 2),
        ]  # fmt: skip
        assert [o.id for o in uow.obligations.of_instance(new.id, deadline="reply")] == [
            first,
            second,
        ]
        assert uow.obligations.get(999_999) is None


def test_an_occurrence_is_stored_once(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        new = started(uow)
        uow.obligations.add(owed(new.id, "reply"), T0)
    with pytest.raises(DuplicateKey), store.write() as uow:
        uow.obligations.add(owed(new.id, "reply"), T0)
    with pytest.raises(StoreError), store.write() as uow:
        uow.obligations.add(owed("no-such-instance", "reply"), T0)


def test_update_writes_status_dates_and_identity_back(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        new = started(uow)
        oid = uow.obligations.add(owed(new.id, "reply"), T0)
        other = uow.obligations.add(owed(new.id, "ack"), T0)
    with store.write() as uow:
        row = uow.obligations.get(oid)
        assert row is not None
        met = dataclasses.replace(
            row, status=S.MET, met_at=T0 + 3 * HOUR, met_by="trigger:answer", days_late=1
        )
        uow.obligations.update(met, T0 + 3 * HOUR)
    with store.read() as uow:
        back = uow.obligations.get(oid)
    assert back is not None
    assert (back.status, back.met_by, back.days_late, back.updated_at) == (
        S.MET, "trigger:answer", 1, T0 + 3 * HOUR,
    )  # fmt: skip
    assert back.created_at == T0
    # a definition migration may rename an obligation's deadline (its identity moves too)
    with store.write() as uow:
        uow.obligations.update(dataclasses.replace(back, deadline="answer"), T0)
    with store.read() as uow:
        assert [o.deadline for o in uow.obligations.of_instance(new.id)] == ["ack", "answer"]
    with store.read() as uow:
        moved = uow.obligations.get(other)
    assert moved is not None
    with pytest.raises(DuplicateKey), store.write() as uow:
        uow.obligations.update(dataclasses.replace(moved, deadline="answer"), T0)


def test_listing_reads_each_status_in_due_order(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        a = started(uow)
        b = started(uow, state="elsewhere")
        ids = [
            uow.obligations.add(owed(a.id, "d1", due_at=T0 + 3 * HOUR, status=S.DUE), T0),
            uow.obligations.add(owed(b.id, "d2", due_at=T0 + 1 * HOUR, status=S.PENDING), T0),
            uow.obligations.add(owed(a.id, "d3", due_at=T0 + 2 * HOUR, status=S.DUE), T0),
            uow.obligations.add(owed(a.id, "d4", due_at=T0, status=S.MET), T0),
        ]
    with store.read() as uow:
        listing = uow.obligations.listing
        assert [o.id for o in listing([S.DUE])] == [ids[2], ids[0]]
        assert [o.id for o in listing([S.DUE, S.PENDING])] == [ids[1], ids[2], ids[0]]
        assert [o.id for o in listing([S.DUE, S.PENDING], limit=2)] == [ids[1], ids[2]]
        assert [o.id for o in listing([S.DUE], due_before=T0 + 2 * HOUR)] == [ids[2]]
        assert [o.id for o in listing([S.DUE, S.PENDING], workflow="other")] == []
        assert [o.id for o in listing([S.DUE, S.PENDING], workflow="contract")] == [
            ids[1],
            ids[2],
            ids[0],
        ]
        assert [o.id for o in listing([S.PENDING, S.DUE], state="elsewhere")] == [ids[1]]
        assert [o.id for o in listing([S.DUE], state=a.state)] == [ids[2], ids[0]]


def test_timers_of_obligations_close_pause_and_resume_together(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        new = started(uow)
        first = uow.obligations.add(owed(new.id, "d1"), T0)
        second = uow.obligations.add(owed(new.id, "d2"), T0)
        uow.timers.arm(
            new.id,
            "open",
            [
                PlannedTimer(
                    "d1", REMINDER, T0, offset="1 hour", deadline_due=T0 + HOUR, obligation_id=first
                ),
                PlannedTimer("d1", DUE, T0 + HOUR, obligation_id=first),
                PlannedTimer("d2", DUE, T0 + 2 * HOUR, obligation_id=second),
            ],
            T0,
        )
    with store.write() as uow:
        uow.timers.pause_open({second}, T0)
        uow.timers.close_open({first}, at=T0, note="met")
    with store.read() as uow:
        d1 = uow.timers.of_deadline(new.id, "open", "d1")
        [d2] = uow.timers.of_deadline(new.id, "open", "d2")
    assert [(x.status, x.note, x.obligation_id) for x in d1] == [
        (TimerStatus.CANCELLED, "met", first), (TimerStatus.CANCELLED, "met", first),
    ]  # fmt: skip
    assert d2.status == TimerStatus.PAUSED
    with store.write() as uow:
        uow.timers.resume_open({second}, T0 + 3 * HOUR)
    with store.read() as uow:
        [d2] = uow.timers.of_deadline(new.id, "open", "d2")
    assert (d2.status, d2.due_at) == (TimerStatus.PENDING, T0 + 5 * HOUR)


def test_a_rolled_back_unit_of_work_leaves_no_obligation(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        new = started(uow)

    def fail() -> None:
        with store.write() as uow:
            uow.obligations.add(owed(new.id, "reply"), T0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    with store.read() as uow:
        assert uow.obligations.of_instance(new.id) == []
