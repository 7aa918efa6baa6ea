"""Retention (`retention: 5 years after closed`): the scheduler erases a closed case the day
after its last day kept, in the NPM's calendar, lists it ahead of time, audits each erasure,
and leaves alone a case under a legal hold (set and lifted with a reason, audited)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from privacy_helpers import PRIVACY, complaint, privacy_engine
from typer.testing import CliRunner

from opcatflow.adapters.cli import app as cli
from opcatflow.engine import FrozenClock, TransitionRefused
from opcatflow.engine.audit import ERASED, HELD, RELEASED
from opcatflow.engine.erasure import is_erased
from opcatflow.engine.retention import due, hold, release
from opcatflow.engine.scheduler import Scheduler

CLOSED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday; the NPM's calendar is UTC
LAST_DAY = date(2031, 3, 2)  # 5 years after closed


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_the_scheduler_erases_a_closed_case_the_day_after_its_last_day_kept(
    db_url: str, clock: FrozenClock
) -> None:
    with privacy_engine(db_url, clock) as engine:
        closed = complaint(engine)
        still_open = complaint(engine, "Bruno Lima")
        engine.fire(closed, "close", actor="h", role="head")
        listed = due(engine, through=LAST_DAY + timedelta(days=30))
        clock.set(at(LAST_DAY, 23))
        on_last_day = Scheduler(engine).tick()
        clock.set(at(LAST_DAY + timedelta(days=1), 0))
        next_day = Scheduler(engine).tick()
        erased_record = engine.history(closed)[-1]
        assert engine.get(closed).data["complainant"] == "[erased]"
        assert engine.get(still_open).data["complainant"] == "Bruno Lima"
        assert due(engine, through=LAST_DAY + timedelta(days=30)) == []
        assert engine.verify_audit().ok
    assert [(d.instance_id, d.closed_on, d.kept_until, d.held) for d in listed] == [
        (closed, CLOSED.date(), LAST_DAY, False)
    ]
    assert on_last_day.erased == []
    assert next_day.erased == [closed]
    assert (erased_record.outcome, erased_record.actor, erased_record.role) == (
        ERASED, "scheduler", "retention",
    )  # fmt: skip
    assert erased_record.reason == "retention: 5 years after closed, kept until 2031-03-02"


def test_a_legal_hold_suspends_retention_until_it_is_lifted(
    db_url: str, clock: FrozenClock
) -> None:
    with privacy_engine(db_url, clock) as engine:
        case = complaint(engine)
        engine.fire(case, "close", actor="h", role="head")
        with pytest.raises(TransitionRefused):
            hold(engine, case, actor="c", role="clerk", reason="litigation")
        assert hold(engine, case, actor="h", role="head", reason="litigation 2031/7")
        assert not hold(engine, case, actor="h", role="head", reason="again")
        clock.set(at(LAST_DAY + timedelta(days=2)))
        scheduler = Scheduler(engine)
        held_tick = scheduler.tick()
        listed = due(engine, through=LAST_DAY)
        assert not is_erased(engine, case)
        assert release(engine, case, actor="h", role="admin", reason="litigation over")
        clock.set(at(LAST_DAY + timedelta(days=3)))
        released_tick = scheduler.tick()
        outcomes = [(r.outcome, r.reason) for r in engine.history(case)[-3:]]
        assert engine.verify_audit().ok
    assert held_tick.erased == []
    assert [d.held for d in listed] == [True]
    assert released_tick.erased == [case]
    assert outcomes == [
        (HELD, "[erased]"),  # sealed under the erased key
        (RELEASED, "[erased]"),
        (ERASED, "retention: 5 years after closed, kept until 2031-03-02"),
    ]


def test_the_cli_lists_retention_ahead_and_sets_and_lifts_a_hold(db_url: str) -> None:
    runner = CliRunner()
    base = ["--db", db_url, "--no-bundled", "--workflows", str(PRIVACY)]
    with privacy_engine(db_url, FrozenClock(datetime.now(UTC))) as engine:
        case = complaint(engine)
        engine.fire(case, "close", actor="h", role="head")
    env = {"OPCATFLOW_DB": None}

    def listed(*options: str) -> list[dict[str, object]]:
        result = runner.invoke(cli, [*base, "retention", "--due", *options, "--json"], env=env)
        assert result.exit_code == 0, result.output
        found: list[dict[str, object]] = json.loads(result.stdout)["due"]
        return found

    soon, later = listed(), listed("--within", "2000")
    held = runner.invoke(cli, [*base, "hold", "set", case[:8], "--actor", "dpo", "--reason", "r"])
    while_held = listed("--within", "2000")
    refused = runner.invoke(
        cli, [*base, "hold", "clear", case, "--actor", "c", "--role", "clerk", "--reason", "r"]
    )
    cleared = runner.invoke(cli, [*base, "hold", "clear", case, "--actor", "dpo", "--reason", "r"])
    applied = runner.invoke(cli, [*base, "retention", "--apply", "--json"], env=env)
    assert soon == []
    assert [(d["instance_id"], d["held"]) for d in later] == [(case, False)]
    assert held.exit_code == 0, held.output
    assert [d["held"] for d in while_held] == [True]
    assert refused.exit_code == 3
    assert cleared.exit_code == 0
    assert json.loads(applied.stdout) == {"erased": []}  # not due for five years
