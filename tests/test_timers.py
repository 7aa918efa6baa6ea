"""Timers in the database and the scheduler that fires them, on SQLite and PostgreSQL.

The clock is a FrozenClock moved by the tests: nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from timerload import open_engine

from opcatflow.engine import DeadlineEvent, Engine, FrozenClock, TransitionEvent
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.settings import Settings
from opcatflow.engine.sql import tables as t
from opcatflow.engine.worker import PeriodicJob, Worker

DEADLINES = Path(__file__).parent / "definitions" / "deadlines"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
REPLY_DUE = datetime(2026, 3, 16, 23, 0, tzinfo=UTC)  # end of the 10th working day, Paris


class Recorder:
    """A hook that records deadline events (the notifications layer's place)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, datetime]] = []
        self.explode_on: str | None = None

    def on_change(self, uow: UnitOfWork, event: TransitionEvent) -> None:
        pass

    def on_deadline(self, uow: UnitOfWork, event: DeadlineEvent) -> None:
        if event.deadline == self.explode_on:
            raise RuntimeError("outbox unavailable")
        self.events.append((event.deadline, event.kind, event.due_at))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def eng(db_url: str, recorder: Recorder) -> Iterator[Engine]:
    settings = Settings.from_text("calendar: {timezone: Europe/Paris, country: FR}\n")
    with open_engine(db_url, FrozenClock(START), [recorder], DEADLINES, settings) as engine:
        yield engine


def clock_of(engine: Engine) -> FrozenClock:
    assert isinstance(engine.clock, FrozenClock)
    return engine.clock


def timers(engine: Engine, instance_id: str | None = None) -> list[tuple[Any, ...]]:
    c = t.timers.c
    query = sa.select(c.state, c.deadline, c.kind, c.occurrence, c.due_at, c.status).order_by(c.id)
    if instance_id is not None:
        query = query.where(c.instance_id == instance_id)
    with engine.store.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def pending(engine: Engine, instance_id: str) -> list[tuple[str, str, datetime]]:
    return [
        (d, k, due)
        for _, d, k, _, due, status in timers(engine, instance_id)
        if status == "pending"
    ]


def start(engine: Engine, **data: Any) -> str:
    return engine.start("casefile", actor="ana", role="clerk", data=data).id


def at(engine: Engine, when: datetime) -> Scheduler:
    clock_of(engine).set(when)
    return Scheduler(engine, batch_size=3)


def test_entering_a_state_arms_its_deadlines_in_the_same_transaction(eng: Engine) -> None:
    case = start(eng, session_start="2026-12-01")
    assert pending(eng, case) == [
        ("reply", "reminder", datetime(2026, 3, 12, 23, 0, tzinfo=UTC)),
        ("reply", "reminder", datetime(2026, 3, 15, 23, 0, tzinfo=UTC)),
        ("reply", "due", REPLY_DUE),
        ("check", "due", datetime(2026, 4, 1, 22, 0, tzinfo=UTC)),
        ("submission", "reminder", datetime(2026, 4, 24, 22, 0, tzinfo=UTC)),
        ("submission", "due", datetime(2026, 5, 1, 22, 0, tzinfo=UTC)),
    ]


def test_leaving_cancels_and_an_internal_transition_keeps(eng: Engine) -> None:
    case = start(eng)
    eng.fire(case, "edit", actor="ana", role="clerk", data={"title": "x"})
    assert len(pending(eng, case)) == 4  # reply x3, check; submission has no date yet
    eng.fire(case, "close", actor="ana", role="clerk")
    statuses = {status for *_, status in timers(eng, case)}
    assert statuses == {"cancelled"}


def test_a_refused_transition_arms_and_cancels_nothing(eng: Engine) -> None:
    case = start(eng)
    before = timers(eng, case)
    with pytest.raises(Exception, match="role"):
        eng.fire(case, "close", actor="x", role="visitor")
    assert timers(eng, case) == before


def test_reminders_then_escalation_fire_once_as_the_scheduler(
    eng: Engine, recorder: Recorder
) -> None:
    case = start(eng)
    report = at(eng, datetime(2026, 3, 13, 8, 0, tzinfo=UTC)).tick()
    assert [(f.deadline, f.kind, f.outcome) for f in report.firings] == [
        ("reply", "reminder", "reminded")
    ]
    assert at(eng, datetime(2026, 3, 13, 9, 0, tzinfo=UTC)).tick().firings == []
    report = at(eng, REPLY_DUE).tick()
    assert [(f.deadline, f.kind, f.outcome, f.trigger) for f in report.firings] == [
        ("reply", "reminder", "reminded", None),
        ("reply", "due", "applied", "escalate"),
    ]
    instance = eng.get(case)
    assert instance.state == "escalated"
    history = eng.history(case)
    # every obligation change is a record of the case's chain: armed, due, ended
    assert [(r.actor, r.role, r.trigger, r.outcome, r.to_state) for r in history] == [
        ("ana", "clerk", "start", "started", "open"),
        ("ana", "clerk", "reply", "pending", None),
        ("ana", "clerk", "check", "pending", None),
        ("scheduler", "scheduler", "reply", "reminder", None),
        ("scheduler", "scheduler", "reply", "reminder", None),
        ("scheduler", "scheduler", "reply", "due", None),
        ("scheduler", "scheduler", "escalate", "applied", "escalated"),
        ("scheduler", "scheduler", "reply", "cancelled", None),  # escalated by its trigger
        ("scheduler", "scheduler", "check", "cancelled", None),  # left before its date
        ("scheduler", "scheduler", "chase", "pending", None),
    ]
    assert recorder.events == [
        ("reply", "reminder", REPLY_DUE),
        ("reply", "reminder", REPLY_DUE),
        ("reply", "due", REPLY_DUE),
    ]
    # the escalation armed the new state's deadline; the old state's were cancelled
    assert pending(eng, case) == [
        ("chase", "reminder", REPLY_DUE + timedelta(hours=22)),
        ("chase", "due", REPLY_DUE + timedelta(hours=24)),
    ]
    assert eng.verify_audit().ok


def test_a_clock_that_jumps_backwards_never_refires(eng: Engine) -> None:
    case = start(eng)
    assert len(at(eng, REPLY_DUE).tick()) == 3
    assert len(at(eng, START).tick()) == 0
    assert len(at(eng, REPLY_DUE).tick()) == 0
    assert [r.outcome for r in eng.history(case)].count("applied") == 1


def test_catch_up_fires_each_missed_timer_once_in_due_order(eng: Engine) -> None:
    first, second = start(eng, blocked=True), start(eng, blocked=True)
    eng.fire(second, "close", actor="ana", role="clerk")
    report = at(eng, datetime(2026, 6, 10, 9, 0, tzinfo=UTC)).tick()  # 100 days of downtime
    assert {f.instance_id for f in report.firings} == {first}
    due_order = [f.due_at for f in report.firings]
    assert due_order == sorted(due_order)
    assert [(f.deadline, f.kind, f.outcome) for f in report.firings] == [
        ("reply", "reminder", "reminded"),
        ("reply", "reminder", "reminded"),
        ("reply", "due", "refused"),  # guard 'not blocked': refused, recorded, not retried
        ("check", "due", "due"),  # missed three times: fires once
    ]
    assert report.late == report.firings
    assert report.summary()["outcomes"] == {"reminded": 2, "refused": 1, "due": 1}
    # the repeating check stays overdue until it is met: its next round counts from then
    assert [d for d, _, _ in pending(eng, first)] == []
    assert len(at(eng, datetime(2026, 6, 10, 9, 0, tzinfo=UTC)).tick()) == 0
    refusal = eng.history(first)[-2]
    assert (refusal.trigger, refusal.outcome, refusal.actor) == ("escalate", "refused", "scheduler")


def test_pause_keeps_the_remaining_time(eng: Engine) -> None:
    case = start(eng)
    clock = clock_of(eng)
    clock.set(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))  # 6 days 14 hours before the due date
    eng.fire(case, "wait_for_party", actor="ana", role="clerk", reason="extension granted")
    assert [k for d, k, _ in pending(eng, case) if d == "reply"] == []
    assert len(at(eng, datetime(2026, 4, 30, tzinfo=UTC)).tick().firings) == 1  # only the check
    clock.set(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    eng.fire(case, "party_answered", actor="ana", role="clerk")
    reply = [(k, due) for d, k, due in pending(eng, case) if d == "reply"]
    stopped = datetime(2026, 5, 4, 9, 0, tzinfo=UTC) - datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert reply[-1] == ("due", REPLY_DUE + stopped)
    assert len(reply) == 3  # the reminders moved with it


def test_setting_the_anchor_later_arms_and_a_published_date_rearms(eng: Engine) -> None:
    case = start(eng)
    assert [d for d, _, _ in pending(eng, case)].count("submission") == 0
    eng.fire(case, "edit", actor="ana", role="clerk", data={"session_start": "2026-12-01"})
    assert ("submission", "due", datetime(2026, 5, 1, 22, 0, tzinfo=UTC)) in pending(eng, case)
    eng.fire(case, "edit", actor="ana", role="clerk", data={"published_due": "2026-05-12"})
    submission = [(k, due) for d, k, due in pending(eng, case) if d == "submission"]
    assert submission == [
        ("reminder", datetime(2026, 5, 5, 22, 0, tzinfo=UTC)),
        ("due", datetime(2026, 5, 12, 22, 0, tzinfo=UTC)),
    ]


def test_a_failing_hook_rolls_back_its_timer_only_and_gives_up_after_max_attempts(
    eng: Engine, recorder: Recorder
) -> None:
    case = start(eng, blocked=True)
    recorder.explode_on = "check"
    scheduler = at(eng, datetime(2026, 4, 2, tzinfo=UTC))
    scheduler.max_attempts = 2
    outcomes = [(f.deadline, f.kind, f.outcome) for f in scheduler.tick().firings]
    assert outcomes == [
        ("reply", "reminder", "reminded"),
        ("reply", "reminder", "reminded"),
        ("reply", "due", "refused"),
        ("check", "due", "error"),  # rolled back alone, and not retried within the same tick
    ]
    assert [(f.deadline, f.outcome) for f in scheduler.tick().firings] == [("check", "failed")]
    assert scheduler.tick().firings == []
    check = [row for row in timers(eng, case) if row[1] == "check"]
    assert [row[-1] for row in check] == ["failed"]
    assert [r.outcome for r in eng.history(case)] == [
        "started", "pending", "pending", "reminder", "reminder", "due", "refused",
    ]  # fmt: skip


def test_worker_catches_up_then_plans_its_wake_up_at_the_next_due_time(db_url: str) -> None:
    calls: list[str] = []
    now = datetime.now(UTC).replace(microsecond=0)
    with open_engine(db_url, FrozenClock(now), (), DEADLINES) as engine:
        case = engine.start("casefile", actor="ana", role="clerk", data={}).id
        worker = Worker(
            Scheduler(engine),
            sweep_seconds=3600,
            jobs=[PeriodicJob("outbox", lambda: calls.append("outbox"), 3600)],
        )
        report = worker.start()
        try:
            assert report.firings == []
            first = min(due for _, _, due in pending(engine, case))
            assert worker.next_wake() == first
            assert {job.id for job in worker.aps.get_jobs()} >= {"opcatflow-sweep", "outbox"}
        finally:
            worker.stop()
        assert not worker.aps.running
