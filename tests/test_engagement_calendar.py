"""`opcatflow calendar`: engagement deadlines across cycles, in date order, with their rule."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from casework import MEMBER, Desk
from icalendar import Calendar
from typer.testing import CliRunner

from opcatflow.adapters.cli.app import app
from opcatflow.adapters.cli.calendar import engagement_calendar
from opcatflow.engine import FrozenClock


def plan(desk: Desk) -> tuple[str, str]:
    desk.clock.set(datetime(2026, 3, 2, 9, tzinfo=UTC))
    upr = desk.start(
        "upr_cycle", MEMBER, {"cycle": 5, "session_number": 54, "session_start": "2027-01-25"}
    )
    autumn = desk.start(
        "upr_cycle", MEMBER, {"cycle": 6, "session_number": 56, "session_start": "2027-11-01"}
    )
    return upr, autumn


def test_the_calendar_lists_every_cycle_deadline_in_order_with_its_rule(
    db_url: str, clock: FrozenClock
) -> None:
    desk = Desk(db_url, clock)
    first, second = plan(desk)
    with desk.engine() as eng:
        entries = engagement_calendar(eng, start=None, end=None, now=clock.now())
    due_days = [eng.settings.calendar.last_day(e.due_at) for e, _ in entries]
    assert due_days == sorted(due_days)
    rules = {(e.instance_id, e.deadline): r.text for e, r in entries}
    assert rules[(first, "stakeholder_submission")].startswith("6 months")
    assert "before the " in rules[(first, "stakeholder_submission")]
    assert rules[(first, "stakeholder_submission")].endswith("of 2027-01-25")
    assert any(instance == second for instance, _ in rules)  # the October session too


def test_the_calendar_filters_by_dates_and_prints_json_and_ical(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    desk = Desk(db_url, clock)
    first, _ = plan(desk)
    runner = CliRunner()
    base = ["--db", db_url, "calendar", "--from", "2026-07-01", "--to", "2026-08-31"]
    result = runner.invoke(app, [*base, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["instance_id"], r["deadline"]) for r in rows] == [(first, "stakeholder_submission")]
    assert rows[0]["rule"].endswith("of 2027-01-25")
    assert date.fromisoformat(rows[0]["due_at"][:10]) == date(2026, 7, 26)  # end of 25 July
    ical = tmp_path / "engagement.ics"
    assert runner.invoke(app, [*base, "--ical", str(ical)]).exit_code == 0
    [event] = Calendar.from_ical(ical.read_bytes()).walk("VEVENT")
    assert event.decoded("dtstart") == date(2026, 7, 25)
    bad = runner.invoke(app, ["--db", db_url, "calendar", "--from", "July"])
    assert bad.exit_code == 2
