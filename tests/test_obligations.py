"""Obligations walked through their statuses on SQLite and PostgreSQL, with the scheduler and
the outbox: every date below is computed by hand in the comments (Paris: UTC+1 until the
clocks change on Sunday 29 March 2026, UTC+2 after)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import outbox_of
from timerload import open_engine

from opcatflow.engine import Engine, FrozenClock, TransitionRefused
from opcatflow.engine.agenda import agenda
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.settings import Settings
from opcatflow.engine.sql import tables as t
from opcatflow.notifications import OutboxWriter
from opcatflow.notifications.directory import parse_directory

FOLDER = Path(__file__).parent / "definitions" / "obligations"
DIRECTORY = """
people:
  - {id: clerk1, name: Clerk One, email: clerk1@npm.example, roles: [clerk], channel: log}
  - {id: head1, name: Head One, email: head1@npm.example, roles: [head], channel: log}
  - {id: ana, name: Ana, email: ana@npm.example, roles: [], channel: log}
"""
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 2 March, 10:00 in Paris


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def eng(db_url: str) -> Iterator[Engine]:
    settings = Settings.from_text("calendar: {timezone: Europe/Paris, country: FR}\n")
    writer = OutboxWriter(parse_directory(DIRECTORY, "<directory>"))
    with open_engine(db_url, FrozenClock(START), [writer], FOLDER, settings) as engine:
        yield engine


def clock(engine: Engine) -> FrozenClock:
    assert isinstance(engine.clock, FrozenClock)
    return engine.clock


def tick(engine: Engine, when: datetime) -> list[tuple[str, str, str]]:
    clock(engine).set(when)
    return [(f.deadline, f.kind, f.outcome) for f in Scheduler(engine).tick().firings]


def fired_at(engine: Engine, when: datetime) -> list[datetime]:
    """When the alerts a sweep at ``when`` sent were due."""
    clock(engine).set(when)
    return [f.due_at for f in Scheduler(engine).tick().firings if f.outcome == "alerted"]


def owed(engine: Engine, case: str) -> dict[tuple[str, int], tuple[Any, ...]]:
    return {
        (o.deadline, o.occurrence): (str(o.status), o.last_day, o.days_late, o.met_by, o.note)
        for o in engine.obligations(case)
    }


def alerts(engine: Engine, case: str, deadline: str = "answer") -> list[tuple[str, str]]:
    """(recipient, last day the message names) of each overdue alert, in order."""
    rows = [m for m in outbox_of(engine, case) if m.event == f"dossier.overdue.{deadline}"]
    return [(r.recipient, r.payload["context"]["event"]["due_on"]) for r in rows]


def alert_times(engine: Engine, case: str) -> list[tuple[datetime, str]]:
    c = t.timers.c
    query = sa.select(c.due_at, c.status).where(c.instance_id == case, c.kind == "alert")
    with engine.store.connect() as conn:
        return [(r.due_at, r.status) for r in conn.execute(query.order_by(c.id))]


def overdue(engine: Engine, when: datetime) -> list[tuple[str, str, date]]:
    return [(e.deadline, e.status, e.last_day) for e in agenda(engine, now=when, overdue_only=True)]


def start(engine: Engine, **data: Any) -> str:
    return engine.start("dossier", actor="ana", role="clerk", data=data).id


def test_an_overdue_obligation_stays_listed_and_alerts_at_its_offsets_until_met(
    eng: Engine,
) -> None:
    case = start(eng, received_on="2026-03-02")  # 7 days: last day Monday 9 March
    assert owed(eng, case) == {("answer", 1): ("pending", date(2026, 3, 9), None, None, None)}
    assert tick(eng, utc(2026, 3, 9, 22, 59)) == []  # 23:59 in Paris on the last day
    assert tick(eng, utc(2026, 3, 10, 8)) == [
        ("answer", "due", "due"),
        ("answer", "alert", "alerted"),  # 'after: 0 days': at the due instant
    ]
    assert alerts(eng, case) == [("clerk1", "2026-03-09")]
    # still owed, so still listed, days later
    assert overdue(eng, utc(2026, 3, 11, 12)) == [("answer", "due", date(2026, 3, 9))]
    assert tick(eng, utc(2026, 3, 12, 8)) == [("answer", "alert", "alerted")]  # after 2 days
    assert fired_at(eng, utc(2026, 3, 17, 8)) == [utc(2026, 3, 16, 23)]  # every 7 days
    assert fired_at(eng, utc(2026, 3, 24, 8)) == [utc(2026, 3, 23, 23)]
    assert alerts(eng, case) == [
        ("clerk1", "2026-03-09"), ("head1", "2026-03-09"), ("head1", "2026-03-09"),
        ("head1", "2026-03-09"),
    ]  # fmt: skip
    clock(eng).set(utc(2026, 3, 25, 10))
    eng.fire(case, "answer", actor="ana", role="clerk")
    assert owed(eng, case) == {
        ("answer", 1): ("met", date(2026, 3, 9), 16, "trigger:answer", None),  # 25 - 9
    }
    assert tick(eng, utc(2026, 4, 30)) == []
    assert overdue(eng, utc(2026, 4, 30)) == []
    # the alert steps at exactly their offsets: local midnight of 10 and 12 March, and the
    # 'every' step's row, fired on 17 and 24 March, called off before its 31 March round
    assert alert_times(eng, case) == [
        (utc(2026, 3, 9, 23), "fired"),
        (utc(2026, 3, 11, 23), "fired"),
        (utc(2026, 3, 30, 22), "cancelled"),  # summer time: midnight is 22:00 UTC
    ]
    answer = [r.outcome for r in eng.history(case) if r.trigger == "answer"]
    assert answer == [
        "pending",
        "due",
        "overdue",
        "overdue",
        "overdue",
        "overdue",
        "applied",
        "met",
    ]
    assert eng.verify_audit().ok


def test_waiving_takes_a_named_role_and_a_reason_and_stops_the_alerts(eng: Engine) -> None:
    case = start(eng, received_on="2026-03-02")
    tick(eng, utc(2026, 3, 10, 8))
    with pytest.raises(TransitionRefused) as refused:
        eng.waive(case, "answer", actor="ana", role="clerk", reason="no need")
    assert refused.value.kind == "role"
    with pytest.raises(TransitionRefused) as refused:
        eng.waive(case, "answer", actor="hugo", role="head", reason="  ")
    assert (refused.value.kind, refused.value.reason) == (
        "data",
        "to waive 'answer', give a reason",
    )
    waived = eng.waive(case, "answer", actor="hugo", role="head", reason="complaint withdrawn")
    assert (waived.status, waived.note) == ("waived", "waived by head")
    assert tick(eng, utc(2026, 3, 31)) == []
    assert overdue(eng, utc(2026, 3, 31)) == []
    assert alerts(eng, case) == [("clerk1", "2026-03-09")]
    records = [(r.trigger, r.outcome, r.role, r.reason) for r in eng.history(case)][-3:]
    assert records == [
        ("waive:answer", "refused", "clerk", "role 'clerk' may not waive 'answer' (allowed: head)"),
        ("waive:answer", "refused", "head", "to waive 'answer', give a reason"),
        ("answer", "waived", "head", "deadline 'answer' #1 waived: complaint withdrawn"),
    ]


def test_an_extension_moves_the_last_day_and_the_alerts_start_again_after_it(
    eng: Engine,
) -> None:
    case = start(eng, received_on="2026-03-02")
    tick(eng, utc(2026, 3, 10, 8))
    with pytest.raises(TransitionRefused, match="not later than the current one, 2026-03-09"):
        eng.extend(case, "answer", actor="h", role="head", reason="r", last_day=date(2026, 3, 9))
    moved = eng.extend(
        case, "answer", actor="hugo", role="head", reason="lawyer asked", last_day=date(2026, 3, 20)
    )
    assert (moved.status, moved.last_day, moved.due_at) == (
        "extended", date(2026, 3, 20), utc(2026, 3, 20, 23),
    )  # fmt: skip
    assert overdue(eng, utc(2026, 3, 15)) == []
    assert tick(eng, utc(2026, 3, 15)) == []  # the 12 March alert was called off
    assert tick(eng, utc(2026, 3, 21, 8)) == [
        ("answer", "due", "due"),
        ("answer", "alert", "alerted"),
    ]
    assert alerts(eng, case) == [("clerk1", "2026-03-09"), ("clerk1", "2026-03-20")]


def test_met_early_never_alerts_and_closing_cancels_what_is_still_owed(eng: Engine) -> None:
    early = start(eng, received_on="2026-03-02")
    late = start(eng, received_on="2026-03-02")
    clock(eng).set(utc(2026, 3, 5, 9))
    eng.fire(early, "answer", actor="ana", role="clerk")
    assert owed(eng, early)[("answer", 1)] == ("met", date(2026, 3, 9), 0, "trigger:answer", None)
    assert tick(eng, utc(2026, 3, 10, 8)) == [
        ("answer", "due", "due"),
        ("answer", "alert", "alerted"),
    ]  # the late case only
    clock(eng).set(utc(2026, 3, 10, 9))
    eng.fire(late, "close", actor="hugo", role="head")
    assert owed(eng, late)[("answer", 1)] == ("cancelled", date(2026, 3, 9), None, None, "closed")
    assert tick(eng, utc(2026, 4, 30)) == []
    assert alerts(eng, early) == []


def test_a_scope_counts_once_across_its_states_and_anew_after_leaving_it(eng: Engine) -> None:
    case = start(eng, received_on="2026-03-02")
    clock(eng).set(utc(2026, 3, 3, 9))
    # sent 3 March: the reply is due 10 days later, last day Friday 13 March; the documents
    # are public 3 days later, 6 March
    eng.fire(case, "work", actor="ana", role="clerk", data={"sent_on": "2026-03-03"})
    eng.fire(case, "wait", actor="ana", role="clerk")
    eng.fire(case, "resume", actor="ana", role="clerk")
    assert owed(eng, case) == {
        ("answer", 1): ("cancelled", date(2026, 3, 9), None, None, "left by work"),
        ("reply", 1): ("pending", date(2026, 3, 13), None, None, None),
        ("publication", 1): ("pending", date(2026, 3, 6), None, None, None),
    }
    clock(eng).set(utc(2026, 3, 5, 9))
    eng.fire(case, "park", actor="ana", role="clerk")
    clock(eng).set(utc(2026, 3, 6, 9))
    eng.fire(case, "unpark", actor="ana", role="clerk")  # a new stay: new occurrences
    found = owed(eng, case)
    assert found[("reply", 1)] == ("cancelled", date(2026, 3, 13), None, None, "left by park")
    assert found[("reply", 2)] == ("pending", date(2026, 3, 13), None, None, None)
    assert found[("publication", 1)][0] == "met"  # a milestone without met_by: left
    assert tick(eng, utc(2026, 3, 14, 8)) == [
        ("publication", "due", "due"),  # reached: a milestone is never overdue
        ("reply", "due", "due"),
        ("reply", "alert", "alerted"),
    ]
    assert overdue(eng, utc(2026, 3, 15)) == [("reply", "due", date(2026, 3, 13))]
    assert alerts(eng, case, "reply") == [("clerk1", "2026-03-13")]
    clock(eng).set(utc(2026, 3, 17, 9))
    eng.fire(case, "record_reply", actor="ana", role="clerk", data={"reply_on": "2026-03-16"})
    found = owed(eng, case)
    assert found[("reply", 2)] == ("met", date(2026, 3, 13), 3, "field:reply_on", None)
    assert found[("publication", 2)][:4] == ("met", date(2026, 3, 6), 0, "reached")


def test_a_back_dated_entry_is_overdue_at_once_tells_the_caller_and_alerts_in_the_same_change(
    eng: Engine,
) -> None:
    # received 20 February, entered 2 March: the last day was 27 February
    started = eng.start_result(
        "dossier",
        actor="ana",
        role="clerk",
        data={"received_on": "2026-02-20", "assigned_to": ["ana"]},
    )
    case = started.instance.id
    assert started.notices == (
        "deadline 'answer' (Answer the complainant) was already overdue: its last day was "
        "2026-02-27; it is recorded as overdue and its first alert is queued",
    )
    assert owed(eng, case) == {("answer", 1): ("due", date(2026, 2, 27), None, None, None)}
    # the case's assignee, not the role, hears of it, before any sweep
    assert alerts(eng, case) == [("ana", "2026-02-27")]
    assert overdue(eng, START) == [("answer", "due", date(2026, 2, 27))]
    # the second step (2 days after: 1 March) was due too: the next sweep sends it, once
    assert tick(eng, START) == [("answer", "alert", "alerted")]
    assert tick(eng, START) == []
    assert alerts(eng, case) == [("ana", "2026-02-27"), ("ana", "2026-02-27")]
    fired = eng.fire_result(case, "answer", actor="ana", role="clerk")
    assert fired.notices == ()
