"""What `deadlines` and its calendar feed say about a case besides its id: the declared
`summary_field` (never a personal field), one event per obligation with its own UID, and a
title that tells two cases apart. An id `waive` takes whole or as a prefix."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import icalendar
from conftest import DEFINITIONS
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock, Registry

SUMMARY = DEFINITIONS / "summary"
ENV = {"OPCATFLOW_DB": None, "OPCATFLOW_SETTINGS": None, "COLUMNS": "200"}


def run(db: str, *args: str) -> Result:
    base = ["--db", db, "--no-bundled", "--workflows", str(SUMMARY)]
    return CliRunner().invoke(app, [*base, *args], env=ENV)


def test_deadlines_and_ical_show_the_summary_and_tell_cases_apart(
    db_url: str, tmp_path: Path
) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    with Engine.open(db_url, [SUMMARY], Registry(), clock=clock) as engine:
        ids = [
            engine.start(
                "dossier", actor="ana", role="clerk",
                data={"reference": ref, "person": "Tomás Varga", "kind": "complaint"},
            ).id
            for ref in ("R-1", "R-2")
        ]  # fmt: skip
    now = ["--now", "2026-03-03T00:00+00:00"]
    listed = json.loads(run(db_url, "deadlines", "--json", *now).output)["items"]
    assert sorted((e["instance_id"], e["summary"]) for e in listed) == sorted(
        zip(ids, ("R-1", "R-2"), strict=True)
    )
    table = run(db_url, "deadlines", *now).output
    assert "SUMMARY" in table.splitlines()[0]
    assert "R-1" in table
    assert "Tomás" not in table
    ics = tmp_path / "d.ics"
    assert run(db_url, "deadlines", "--ical", str(ics), *now).exit_code == 0
    events = icalendar.Calendar.from_ical(ics.read_bytes()).walk("VEVENT")
    assert sorted(str(e["summary"]) for e in events) == [
        "Due: Answer the dossier (dossier R-1)",
        "Due: Answer the dossier (dossier R-2)",
    ]
    assert len({str(e["uid"]) for e in events}) == 2
    assert b"Tom" not in ics.read_bytes()


def test_validate_warns_about_a_workflow_level_deadline_without_a_label(tmp_path: Path) -> None:
    text = (SUMMARY / "dossier.yaml").read_text() + (
        "deadlines:\n  - id: whole_case\n    scope: instance\n    due: 1 year\n"
    )
    path = tmp_path / "dossier.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["--workflows", str(path), "validate", str(path)], env=ENV)
    assert result.exit_code == 0, result.output
    assert f"{path}:36:5: warning: deadline 'whole_case' has no label" in result.stdout
