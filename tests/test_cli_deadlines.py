"""The deadline commands: deadlines (--json, --ical), tick --now, simulate, worker; both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import icalendar
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock, Registry
from opcatflow.engine.settings import Settings

DEADLINES = Path(__file__).parent / "definitions" / "deadlines"
CLEAN_ENV = {"OPCATFLOW_DB": None, "OPCATFLOW_SETTINGS": None, "COLUMNS": "120"}
PARIS = "calendar: {timezone: Europe/Paris, country: FR}\n"


def run(db: str, settings: Path, *args: str) -> Result:
    base = ["--db", db, "--no-bundled", "--workflows", str(DEADLINES), "--settings", str(settings)]
    return CliRunner().invoke(app, [*base, *args], env=CLEAN_ENV)


def started(db_url: str, tmp_path: Path) -> tuple[Path, str]:
    settings = tmp_path / "npm.yaml"
    settings.write_text(PARIS)
    result = run(db_url, settings, "tick", "--now", "2026-03-02T09:00+00:00")  # creates the db
    assert result.exit_code == 0, result.output
    return settings, db_url


def start_case(db: str, settings: Path, **data: Any) -> str:
    """Start a case on Monday 2 March 2026, 09:00 UTC (the CLI's start uses the real clock)."""
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    npm = Settings.load(settings)
    with Engine.open(db, [DEADLINES], Registry(), clock=clock, settings=npm) as engine:
        return engine.start("casefile", actor="ana", role="clerk", data=data).id


def test_deadlines_lists_upcoming_and_overdue_as_json(db_url: str, tmp_path: Path) -> None:
    settings, db = started(db_url, tmp_path)
    case = start_case(db, settings, session_start="2025-12-01")  # submission long overdue
    result = run(db, settings, "deadlines", "--json", "--now", "2026-03-03T00:00+00:00")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["items"]
    assert [(e["deadline"], e["overdue"], e["instance_id"]) for e in listed][:1] == [
        ("submission", True, case)
    ]
    assert {e["deadline"] for e in listed} == {"submission", "reply", "check"}
    assert all(e["roles"] == ["clerk"] for e in listed)
    only = json.loads(
        run(db, settings, "deadlines", "--json", "--overdue", "--now", "2026-03-03").output
    )["items"]
    assert [e["deadline"] for e in only] == ["submission"]
    unknown = run(db, settings, "deadlines", "--json", "--role", "auditor")
    assert unknown.exit_code == 2  # a role no workflow has: an error, not an empty list
    assert "no role 'auditor'" in unknown.output
    escalated = run(db, settings, "deadlines", "--json", "--state", "escalated").output
    assert json.loads(escalated)["items"] == []
    within = json.loads(
        run(
            db, settings, "deadlines", "--json", "--within", "20 days", "--now", "2026-03-03"
        ).output
    )["items"]
    assert [e["deadline"] for e in within] == ["submission", "reply"]
    table = run(db, settings, "deadlines", "--now", "2026-03-03").output
    assert "OVERDUE" in table
    assert "submission" in table


def test_tick_processes_what_is_due_at_that_instant_and_exits(db_url: str, tmp_path: Path) -> None:
    settings, db = started(db_url, tmp_path)
    start_case(db, settings)
    result = run(db, settings, "tick", "--now", "2026-03-17T00:00+01:00", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["outcomes"] == {"reminded": 2, "applied": 1}
    assert [f["outcome"] for f in report["firings"]] == ["reminded", "reminded", "applied"]
    again = json.loads(
        run(db, settings, "tick", "--now", "2026-03-17T00:00+01:00", "--json").output
    )
    assert again["processed"] == 0
    text = run(db, settings, "tick", "--now", "2026-03-18T00:00+00:00").output
    assert "processed 2 timer(s)" in text  # the escalated state's reminder and due date


def test_ical_export_parses_back(db_url: str, tmp_path: Path) -> None:
    settings, db = started(db_url, tmp_path)
    case = start_case(db, settings, session_start="2026-12-01")
    out = tmp_path / "deadlines.ics"
    result = run(
        db,
        settings,
        "deadlines",
        "--reminders",
        "--now",
        "2026-03-02T10:00+00:00",
        "--ical",
        str(out),
    )
    assert result.exit_code == 0, result.output
    cal = icalendar.Calendar.from_ical(out.read_bytes())
    events = {str(e["summary"]): e for e in cal.walk("VEVENT")}
    short = case[:8]  # the case, as no summary_field is declared: two cases never look alike
    assert sorted(events) == [
        f"Due: check (casefile {short})",
        f"Due: reply (casefile {short})",
        f"Due: submission (casefile {short})",
    ]
    reply = events[f"Due: reply (casefile {short})"]
    assert reply.decoded("dtstart").isoformat() == "2026-03-16"  # the last day, all day
    alarms = [a.decoded("trigger").isoformat() for a in reply.walk("VALARM")]
    assert alarms == ["2026-03-12T23:00:00+00:00", "2026-03-15T23:00:00+00:00"]
    assert len({str(e["uid"]) for e in events.values()}) == 3


def test_simulate_shows_the_timeline_without_a_database(tmp_path: Path) -> None:
    settings = tmp_path / "npm.yaml"
    settings.write_text(PARIS)
    db = tmp_path / "never.db"
    result = run(
        str(db),
        settings,
        "simulate",
        "casefile",
        "--start",
        "2026-03-02T09:00+00:00",
        "--until",
        "2026-03-18",
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "2026-03-02 10:00 CET  enter open",
        "2026-03-13 00:00 CET  reminder  reply (2 working days before)",
        "2026-03-16 00:00 CET  reminder  reply (1 day before)",
        "2026-03-17 00:00 CET  escalate  reply (last day 2026-03-16) -> fires escalate",
        "2026-03-17 00:00 CET  enter escalated",
        "2026-03-17 22:00 CET  reminder  chase (2 hours before)",
        "2026-03-18 00:00 CET  due       chase (last day 2026-03-17)",
    ]
    assert not db.exists()
    as_json = run(
        str(db),
        settings,
        "simulate",
        "casefile",
        "--start",
        "2026-03-02",
        "--until",
        "2026-03-10",
        "--json",
    )
    assert [e["kind"] for e in json.loads(as_json.output)] == ["enter"]


def test_bad_settings_file_is_one_located_line(tmp_path: Path) -> None:
    settings = tmp_path / "npm.yaml"
    settings.write_text("calendar: {timezone: Europe/Pariss}\n")
    db = str(tmp_path / "x.db")
    assert CliRunner().invoke(app, ["--db", db, "db", "upgrade"], env=CLEAN_ENV).exit_code == 0
    result = run(db, settings, "deadlines")
    assert result.exit_code == 6
    assert "npm.yaml:1:22: unknown time zone 'Europe/Pariss'" in result.output


def test_worker_catches_up_on_start_and_stops_on_sigterm(db_url: str, tmp_path: Path) -> None:
    settings, db = started(db_url, tmp_path)
    start_case(db, settings)  # in March 2026: by the real clock, its reply deadline has passed
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    cmd = [
        sys.executable,
        "-m",
        "opcatflow.adapters.cli",
        "--db",
        db,
        "--no-bundled",
        "--workflows",
        str(DEADLINES),
    ]
    cmd += [
        "--settings",
        str(settings),
        "--log-format",
        "json",
        "--log-level",
        "info",
        "worker",
        "--sweep",
        "3600",
    ]
    with subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        events = []
        for line in proc.stderr:
            events.append(json.loads(line))
            if events[-1]["event"] == "worker_started":
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    events += [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert (
        names.index("deadlines_caught_up")
        < names.index("worker_started")
        < names.index("worker_stopped")
    )
    caught_up = next(e for e in events if e["event"] == "deadlines_caught_up")
    assert caught_up["outcomes"] == {"reminded": 2, "applied": 1}
    fired = [e["outcome"] for e in events if e["event"] == "deadline_processed"]
    assert fired == ["reminded", "reminded", "applied"]
    assert proc.returncode == 0


def test_an_overdue_obligation_stays_listed_after_the_tick_in_the_table_json_and_ical(
    db_url: str, tmp_path: Path
) -> None:
    settings, db = started(db_url, tmp_path)
    # 1 December 2026, 7 months before: the submission's last day is Friday 1 May 2026; the
    # case stays open (its escalation is refused while blocked)
    case = start_case(db, settings, session_start="2026-12-01", blocked=True)
    assert run(db, settings, "tick", "--now", "2026-05-02T08:00+00:00").exit_code == 0
    for now in ("2026-05-02T09:00+00:00", "2026-05-20T09:00+00:00"):  # days after the tick
        listed = json.loads(
            run(db, settings, "deadlines", "--overdue", "--json", "--now", now).output
        )["items"]
        submission = [e for e in listed if e["deadline"] == "submission"]
        assert [
            (e["instance_id"], e["status"], e["last_day"], e["overdue"]) for e in submission
        ] == [(case, "due", "2026-05-01", True)]
        table = run(db, settings, "deadlines", "--overdue", "--now", now).output
        assert "2026-05-01" in table
        assert "OVERDUE" in table
    out = tmp_path / "overdue.ics"
    result = run(db, settings, "deadlines", "--now", "2026-05-20T09:00+00:00", "--ical", str(out))
    assert result.exit_code == 0, result.output
    events = {
        str(e["summary"]): e for e in icalendar.Calendar.from_ical(out.read_bytes()).walk("VEVENT")
    }
    overdue = events[f"OVERDUE: submission (casefile {case[:8]})"]
    assert overdue.decoded("dtstart").isoformat() == "2026-05-01"
