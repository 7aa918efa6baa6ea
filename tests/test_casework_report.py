"""``opcatflow report complaints``: counts by institution and theme, never personal data."""

from __future__ import annotations

import json
from datetime import date

import pytest
from casework import COMPLAINT, INTAKE, Desk, catalog
from registerkit import HEALTH_CARE, HOSPITAL, PLACE, POLICE, THEME
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import FrozenClock
from opcatflow.workflows.patterns import count_complaints, grouping_problems

DUPLICATE = "crp-duplicate"  # the prison entered twice in the register, then merged
CASES = [
    ("2026-01-10", PLACE, THEME),
    ("2026-02-03", DUPLICATE, THEME),
    ("2026-02-20", PLACE, HEALTH_CARE),
    ("2025-11-30", HOSPITAL, HEALTH_CARE),
    ("2026-02-25", None, None),  # received, not recorded yet
]
CRP = {"id": PLACE, "title": "Central Remand Prison"}
FORCE = {"id": THEME, "title": "Use of force"}
HEALTH = {"id": HEALTH_CARE, "title": "Health care"}
NAMES = ["Ana Pereira", "Rui Costa", "Tomás Varga", "K. Baptiste", "J. Doe"]


@pytest.fixture
def report(db_url: str, clock: FrozenClock) -> str:
    desk = Desk(db_url, clock)
    with desk.engine() as eng:
        data = {"name": "Central remand prison", "place_type": "pre_trial_detention"}
        eng.start("place", actor="registrar", role="head", data=data, instance_id=DUPLICATE)
    for (received, institution, theme), name in zip(CASES, NAMES, strict=True):
        data = {**COMPLAINT, "received_on": received, "persons": [{"ref": "P1", "name": name}]}
        complaint = desk.start("complaint", INTAKE, data)
        if institution is not None:
            record = {"complaint_type": "other", "institution": institution, "theme": theme}
            desk.fire(complaint, "record", INTAKE, record)
    desk.start("visit", ("s.nakamura", "coordinator"), {"kind": "regular", "place": POLICE})
    desk.fire(DUPLICATE, "merge_into", ("r.haddad", "head"), {"merged_into": PLACE})
    return db_url


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        app, ["--db", db_url, "report", "complaints", *args], env={"COLUMNS": "100"}
    )


def test_counts_by_institution_and_theme_most_frequent_first(report: str) -> None:
    result = run(report, "--by", "institution,theme", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "by": ["institution", "theme"],
        "since": None,
        "total": 5,
        "groups": [
            # counted by entry: the duplicate's complaint under the entry it was merged into
            {"institution": CRP, "theme": FORCE, "count": 2},
            {"institution": CRP, "theme": HEALTH, "count": 1},
            {
                "institution": {"id": HOSPITAL, "title": "St Anne Psychiatric Hospital"},
                "theme": HEALTH,
                "count": 1,
            },
            {"institution": None, "theme": None, "count": 1},
        ],
    }


def test_the_table_names_no_person(report: str) -> None:
    result = run(report)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "institution                   theme           complaints",
        "Central Remand Prison         Use of force    2",
        "Central Remand Prison         Health care     1",
        "St Anne Psychiatric Hospital  Health care     1",
        "(not recorded)                (not recorded)  1",
        "5 complaints",
    ]
    for name in NAMES:
        assert name not in result.output


def test_since_counts_complaints_received_on_or_after_the_date(report: str) -> None:
    result = run(report, "--by", "institution", "--since", "2026-02-03", "--json")
    counts = json.loads(result.stdout)
    assert (counts["total"], counts["since"]) == (3, "2026-02-03")
    assert counts["groups"] == [
        {"institution": CRP, "count": 2},
        {"institution": None, "count": 1},
    ]


@pytest.mark.parametrize(
    ("by", "message"),
    [
        ("persons", "'persons' is records: count by plain values only"),
        ("institution,summary", "'summary' is personal data: counts never group by it"),
        ("outcome", "'outcome' is text: count by plain values only"),
        ("instituton", "complaint has no field 'instituton' (did you mean 'institution'?)"),
    ],
)
def test_grouping_by_personal_data_free_text_or_unknown_fields_is_refused(
    report: str, by: str, message: str
) -> None:
    result = run(report, "--by", by)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert message in line


def test_a_malformed_date_is_a_usage_error(report: str) -> None:
    result = run(report, "--since", "last week")
    assert result.exit_code == 2
    assert "expected a date (YYYY-MM-DD), got 'last week'" in result.stderr


def test_grouping_needs_at_least_one_field_named_once() -> None:
    wf = catalog().get("complaint")
    assert grouping_problems(wf, []) == ["name at least one field to count by"]
    assert grouping_problems(wf, ["theme", "theme"]) == ["a field is named twice"]
    assert grouping_problems(wf, ["channel", "source", "seriousness"]) == []


def test_no_complaints_counts_to_zero() -> None:
    counts = count_complaints([], ("institution",), date(2026, 1, 1))
    assert counts.as_json() == {
        "by": ["institution"],
        "since": "2026-01-01",
        "total": 0,
        "groups": [],
    }
