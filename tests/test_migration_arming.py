"""A deadline only the target version declares is armed by the migration from the facts the
case already holds, never from the day of the migration: its date field, the entry into its
state, into its group of states (read from the audit trail), or the start of the case. With
the fact absent it is not armed, and the dry run says why. Dates computed by hand (the
default calendar: UTC, calendar days; a period of days ends on its last day)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.migration import Migrator
from opcatflow.workflows import registry

V1 = """\
id: errand
version: 1
title: Errand
roles:
  clerk: Runs errands
start: {writes: [hearing_on]}
fields:
  hearing_on: {type: date}
states:
  open: {initial: true}
  working: {}
  waiting: {}
  done: {final: true}
transitions:
  - {trigger: work, source: open, dest: working, roles: [clerk]}
  - {trigger: wait, source: working, dest: waiting, roles: [clerk]}
  - {trigger: close, source: '*', dest: done, roles: [clerk]}
"""
V2 = (
    V1.replace("version: 1", "version: 2").replace(
        "  waiting: {}\n",
        """\
  waiting:
    deadlines:
      - {id: chase, due: 10 days after entered, owed_by: npm,
         overdue_alerts: [{after: 0 days, to: [clerk], template: deadline_overdue}]}
""",
    )
    + """\
deadlines:
  - {id: answer, scope: [working, waiting], due: 30 days after entered}
  - {id: prepare, scope: instance, due: 5 days before hearing_on}
  - {id: close_out, scope: instance, due: 60 days after entered}
"""
)
PLAN = (
    "workflow: errand\nfrom: 1\nto: 2\nstates: {open: open, working: working, waiting: waiting}\n"
)
CLERK = {"actor": "c", "role": "clerk"}


def at(day: int, month: int = 2) -> datetime:
    return datetime(2026, month, day, 9, 0, tzinfo=UTC)


@pytest.fixture
def errands(db_url: str, tmp_path: Path) -> Iterator[tuple[Engine, FrozenClock]]:
    (tmp_path / "errand_v1.yaml").write_text(V1, "utf-8")
    (tmp_path / "errand_v2.yaml").write_text(V2, "utf-8")
    clock = FrozenClock(at(1))
    with Engine.open(db_url, [tmp_path], registry, clock=clock) as engine:
        yield engine, clock


def test_new_deadlines_count_from_the_facts_the_case_holds(
    errands: tuple[Engine, FrozenClock],
) -> None:
    engine, clock = errands
    # Started on 1 February (v1: no deadline at all), working from the 5th, waiting from
    # the 10th; one case has a hearing on 20 March, the other none yet.
    heard = engine.start("errand", version=1, data={"hearing_on": "2026-03-20"}, **CLERK).id
    unheard = engine.start("errand", version=1, **CLERK).id
    clock.set(at(5))
    for case in (heard, unheard):
        engine.fire(case, "work", **CLERK)
    clock.set(at(10))
    engine.fire(heard, "wait", **CLERK)
    clock.set(at(2, month=3))  # the migration: 2 March
    migrator = Migrator(engine)
    plan = migrator.load(PLAN, "plan.yaml")

    dry = {o.instance_id: o for o in migrator.run(plan, dry_run=True).outcomes}
    moves = {m.deadline: m for m in dry[heard].timers}
    assert {n: (m.action, m.last_day, m.status) for n, m in moves.items()} == {
        "chase": ("armed", date(2026, 2, 20), "due"),  # 10 days after entering waiting
        "answer": ("armed", date(2026, 3, 7), "pending"),  # 30 after entering working
        "prepare": ("armed", date(2026, 3, 15), "pending"),  # 5 days before the hearing
        "close_out": ("armed", date(2026, 4, 2), "pending"),  # 60 after the start
    }
    lacking = {m.deadline: m for m in dry[unheard].timers}
    assert lacking["prepare"].action == "not armed"
    assert lacking["prepare"].reason == "not armed: no date to count from: hearing_on is empty"
    assert lacking["prepare"].as_json()["reason"] == lacking["prepare"].reason
    assert engine.obligations(heard) == []  # the dry run wrote nothing

    done = migrator.run(plan, dry_run=False)
    assert done.counts() == {"migrated": 2}
    owed = {o.deadline: (o.last_day, str(o.status), o.anchor) for o in engine.obligations(heard)}
    assert owed == {
        "chase": (date(2026, 2, 20), "due", at(10).isoformat()),
        "answer": (date(2026, 3, 7), "pending", at(5).isoformat()),
        "prepare": (date(2026, 3, 15), "pending", "2026-03-20"),
        "close_out": (date(2026, 4, 2), "pending", at(1).isoformat()),
    }
    assert {o.deadline for o in engine.obligations(unheard)} == {"answer", "close_out"}
    # Audited: the migrated record lists what it armed; each obligation has its own record
    # after it, and the overdue one its first alert.
    history = engine.history(heard)
    migrated = next(r for r in history if r.outcome == "migrated")
    armed = json.loads(migrated.changes)["armed"]
    assert {(a["deadline"], a["last_day"]) for a in armed} == {
        ("chase", "2026-02-20"),
        ("answer", "2026-03-07"),
        ("prepare", "2026-03-15"),
        ("close_out", "2026-04-02"),
    }
    after = [(r.trigger, r.outcome) for r in history[history.index(migrated) + 1 :]]
    assert sorted(after) == sorted(
        [
            ("answer", "pending"),
            ("chase", "due"),
            ("chase", "overdue"),
            ("close_out", "pending"),
            ("prepare", "pending"),
        ]
    )
    assert engine.verify_audit().ok
