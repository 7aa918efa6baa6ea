"""`opcatflow import recommendations FILE`: a backlog entered with its historic dates, all or
nothing, on both backends (docs/recommendations.md, "Importing a backlog")."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import registerkit
from casework import catalog
from registerkit import HEALTH
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, SQLAlchemyStore
from opcatflow.engine.filters import typed_where
from opcatflow.workflows import registry

ENV = {"OPCATFLOW_DB": None, "OPCATFLOW_ACTOR": None, "OPCATFLOW_ROLE": None, "COLUMNS": "200"}
COLUMNS = [
    "key", "source", "addressee", "text", "places", "priority", "sent_on", "reply",
    "reply_received_on", "position", "position_on", "assessment_on", "assessment_status",
    "assessment_evidence", "repeats", "closed_on", "closing_reason",
]  # fmt: skip


def backlog(n: int) -> list[dict[str, str]]:
    """``n`` recommendations of 2018-2024 in every stage: issued only, sent, replied with a
    position, assessed, closed; every tenth restates the one before it (by key)."""
    rows = []
    for i in range(n):
        year = 2018 + i % 7
        row = {
            "key": f"R-{i}",
            "source": ("npm_visit", "spt", "cat", "upr")[i % 4],
            "addressee": registerkit.AUTHORITY,
            "text": f"Recommendation {i} of the {year} report.",
            "places": "north-prison;south-station" if i % 2 else "north-prison",
            "priority": "high",
        }
        stage = i % 5
        if stage >= 1:
            row["sent_on"] = f"{year}-02-10"
        if stage >= 2:
            row |= {"reply": "We agree.", "reply_received_on": f"{year}-04-01"}
            row |= {"position": "accepted", "position_on": f"{year}-04-01"}
        if stage >= 3:
            row |= {"assessment_on": f"{year}-11-20", "assessment_status": "partially_implemented"}
            row["assessment_evidence"] = "Seen on a follow-up visit."
        if stage == 4:
            row |= {"closed_on": f"{year + 1}-01-15", "closing_reason": "Implemented enough."}
        if i % 10 == 9:
            row["repeats"] = f"R-{i - 1}"
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", db_url, *args], env=ENV)


@contextmanager
def opened(db_url: str) -> Iterator[Engine]:
    # the bundled catalogue compiled once for the module (compiling is most of an open)
    store = SQLAlchemyStore(db_url)
    store.ensure_schema()  # (an import refused before it opened the database made none)
    with Engine(store, catalog(), registry) as engine:
        yield engine


def count(engine: Engine, **where: str) -> int:
    wf = [engine.workflow("recommendation")]
    return engine.count(workflow="recommendation", where=typed_where(where, wf))


# slow: 500 rows entered twice (refused, then imported); the wheel run skips it
@pytest.mark.slow
def test_a_backlog_of_500_fails_whole_on_one_bad_row_then_imports(
    db_url: str, tmp_path: Path
) -> None:
    with opened(db_url) as engine:
        registerkit.seed_authorities(engine)
        for place_id in ("north-prison", "south-station"):
            data = {"name": place_id.replace("-", " ").title(), "place_type": "prison"}
            engine.start("place", actor="r.haddad", role="head", data=data, instance_id=place_id)
    rows = backlog(500)
    rows[249]["assessment_status"] = "implemnted"  # line 251: the header is line 1
    bad = write_csv(tmp_path / "backlog.csv", rows)
    refused = run(db_url, "import", "recommendations", str(bad))
    assert refused.exit_code == 11, refused.output
    assert f"{bad}:251: assess: assessments: entry #1.status: " in refused.stderr
    assert "'implemnted'" in refused.stderr
    assert "error: nothing imported: 1 problem(s) in 1 of 500 row(s)" in refused.stderr
    with opened(db_url) as engine:
        assert count(engine) == 0

    rows[249]["assessment_status"] = "implemented"
    good = write_csv(tmp_path / "backlog.csv", rows)
    before = datetime.now(UTC)
    imported = run(db_url, "import", "recommendations", str(good), "--actor", "archive.clerk")
    assert imported.exit_code == 0, imported.output
    assert imported.stdout.splitlines()[0] == (
        "imported 500 recommendation(s): 100 awaiting_reply, 100 closed, 100 issued, "
        "100 reply_received, 100 under_dialogue"
    )
    # the replies of the sent ones never came; every follow-up check since 2024 is late
    assert "already overdue, recorded as due: 200 followup_check, 100 reply" in imported.stdout
    with opened(db_url) as engine:
        assert count(engine) == 500
        assert count(engine, places="south-station") == 250
        [r7] = engine.query(
            workflow="recommendation", where={"text": "Recommendation 8 of the 2019 report."}
        )
        [r9] = engine.query(workflow="recommendation", where={"repeats": r7.id})
        assert r9.data["text"] == "Recommendation 9 of the 2020 report."
        # historic dates are data; the audit records carry the time of the import
        assert (r7.data["sent_on"], r7.data["assessments"][0]["on"]) == ("2019-02-10", "2019-11-20")
        assert r7.data["assessments"][0]["by"] == "archive.clerk"
        history = engine.history(r7.id)
        assert {h.actor for h in history} == {"archive.clerk"}
        assert {h.role for h in history if h.actor == "archive.clerk"} == {"import"}
        assert all(h.at >= before for h in history)
        assert engine.verify_audit().ok


def test_a_rule_a_row_breaks_is_found_on_the_rows_line_and_nothing_is_imported(
    db_url: str, tmp_path: Path
) -> None:
    rows: list[dict[str, Any]] = [
        {"source": "cat", "addressee": HEALTH, "text": "A.", "sent_on": "2021-03-01"},
        {"source": "cat", "addressee": HEALTH, "text": "B.", "closing_reason": "Old."},
        {"source": "cat", "addressee": HEALTH, "text": "C.", "repeats": "no-such-one"},
    ]
    with opened(db_url) as engine:
        registerkit.seed_authorities(engine)
    path = tmp_path / "backlog.json"
    text = json.dumps(rows, indent=1)
    path.write_text(text, "utf-8")
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == "{"]
    refused = run(db_url, "import", "recommendations", str(path))
    assert refused.exit_code == 11, refused.output
    lines = refused.stderr.splitlines()
    assert lines[0].startswith(
        f"{path}:{starts[1]}: close: assessed_before_closing: no assessment yet"
    )
    assert lines[1] == (
        f"{path}:{starts[2]}: link_repeat: repeats_an_earlier_recommendation: "
        "repeats: 'no-such-one' is not a recommendation"
    )
    # the addressee is an authority entry's id: a name is refused on its row
    path.write_text(json.dumps([{**rows[0], "addressee": "Ministry of Health"}]), "utf-8")
    refused = run(db_url, "import", "recommendations", str(path))
    assert refused.exit_code == 11, refused.output
    assert refused.stderr.splitlines()[0] == (
        f"{path}:1: start: addressee: expected an entry id (lowercase letters, "
        "digits, '_', '.', '-'), got 'Ministry of Health'"
    )
    with opened(db_url) as engine:
        assert count(engine) == 0


def test_columns_and_files_that_cannot_be_read(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "backlog.csv"
    path.write_text("source,adressee,text,closed_on\ncat,interior,A.,2020-01-01\n", "utf-8")
    refused = run(db_url, "import", "recommendations", str(path))
    assert refused.exit_code == 11
    assert f"{path}:2: unknown column 'adressee' (did you mean 'addressee'?)" in refused.stderr
    assert f"{path}:2: closed_on without closing_reason" in refused.stderr
    other = tmp_path / "backlog.txt"
    other.write_text("x", "utf-8")
    assert run(db_url, "import", "recommendations", str(other)).exit_code == 11
    with opened(db_url) as engine:
        assert count(engine) == 0


def test_a_json_row_with_its_assessments_over_the_years(db_url: str, tmp_path: Path) -> None:
    with opened(db_url) as engine:
        # the place's register id is also a valid place name (a visit names its place either way)
        place = {"name": "Central Remand Prison", "place_type": "prison"}
        engine.start("place", actor="r.haddad", role="head", data=place, instance_id="crp")
        registerkit.seed_authorities(engine)
        visit = engine.start(
            "visit", actor="s.nakamura", role="coordinator",
            data={"kind": "follow_up", "place": "crp"},
        ).id  # fmt: skip
    row = {
        "key": "UPR-3-114",
        "source": "upr",
        "addressee": registerkit.AUTHORITY,
        "text": "Establish an independent complaints mechanism for prisons.",
        "sent_on": "2022-11-14",
        "position": "supported",
        "position_on": "2023-03-30",
        "assessments": [
            {"on": "2023-12-01", "status": "not_started", "evidence": "No bill yet."},
            {"on": "2025-06-10", "status": "in_progress", "evidence": "Bill tabled.", "follows": 1},
        ],
        "assessed_by": [visit],
    }
    path = tmp_path / "upr.json"
    path.write_text(json.dumps([row]), "utf-8")
    imported = run(db_url, "import", "recommendations", str(path), "--json")
    assert imported.exit_code == 0, imported.output
    summary = json.loads(imported.stdout)
    assert (summary["imported"], summary["states"]) == (1, {"under_dialogue": 1})
    with opened(db_url) as engine:
        rec = engine.get(summary["instances"][0])
    assert [(a["n"], a["status"], a.get("follows")) for a in rec.data["assessments"]] == [
        (1, "not_started", None),
        (2, "in_progress", 1),
    ]
    assert (rec.data["implementation_status"], rec.data["assessed_by"]) == ("in_progress", [visit])
    assert (rec.data["position"], rec.data["position_on"]) == ("supported", "2023-03-30")
    assert rec.data["followup_from"] == "2025-06-10"


def test_a_csv_row_with_its_assessments_in_numbered_columns(db_url: str, tmp_path: Path) -> None:
    with opened(db_url) as engine:
        registerkit.seed_authorities(engine)
    # the groups fire in number order, whatever the order of the columns; the third follows
    # up the first, and the latest by date gives the status
    header = [
        "source", "addressee", "text", "sent_on", "assessment_3_on", "assessment_3_status",
        "assessment_3_follows", "assessment_on", "assessment_status", "assessment_evidence",
        "assessment_2_on", "assessment_2_status", "assessment_2_by",
    ]  # fmt: skip
    cells = [
        "cat", registerkit.AUTHORITY, "Record every custody transfer.", "2019-05-02",
        "2024-10-03", "implemented", "1", "2020-02-11", "not_started", "No register yet.",
        "2022-06-30", "in_progress", "a.diallo",
    ]  # fmt: skip
    path = tmp_path / "backlog.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, cells])
    imported = run(db_url, "import", "recommendations", str(path), "--json")
    assert imported.exit_code == 0, imported.output
    summary = json.loads(imported.stdout)
    assert summary["states"] == {"under_dialogue": 1}
    with opened(db_url) as engine:
        rec = engine.get(summary["instances"][0])
    assessments = rec.data["assessments"]
    assert [(a["n"], a["on"], a["status"], a.get("follows")) for a in assessments] == [
        (1, "2020-02-11", "not_started", None),
        (2, "2022-06-30", "in_progress", None),
        (3, "2024-10-03", "implemented", 1),
    ]
    assert [a["by"] for a in assessments] == ["import", "a.diallo", "import"]
    assert assessments[0]["evidence"] == "No register yet."
    assert (rec.data["implementation_status"], rec.data["followup_from"]) == (
        "implemented",
        "2024-10-03",
    )


def test_a_gap_or_an_unknown_part_in_the_assessment_columns_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "backlog.csv"
    path.write_text(
        "source,addressee,text,assessment_on,assessment_status,assessment_2_on,"
        "assessment_2_status,assessment_2_date,assessment_3_on,assessment_3_status\n"
        "cat,interior,A.,2020-01-01,in_progress,2021-01-01,implemented,,,\n"
        "cat,interior,B.,2020-01-01,in_progress,,,,2022-01-01,implemented\n"
        "cat,interior,C.,2020-01-01,in_progress,,,2021-01-01,,\n",
        "utf-8",
    )
    refused = run(db_url, "import", "recommendations", str(path))
    assert refused.exit_code == 11, refused.output
    assert refused.stderr.splitlines()[:2] == [
        f"{path}:3: assessment_3_* given without assessment_2_*: number the assessments "
        "1, 2, 3... in the order they were made, without gaps",
        f"{path}:4: unknown column 'assessment_2_date' (did you mean 'assessment_2_on'?): an "
        "assessment's columns are assessment_2_on, assessment_2_status, assessment_2_evidence, "
        "assessment_2_by and assessment_2_follows",
    ]
    assert "error: nothing imported: 2 problem(s) in 2 of 3 row(s)" in refused.stderr
    # JSON takes the numbered columns too, but not beside an assessments list
    both = {"source": "cat", "addressee": "interior", "text": "D.", "assessment_2_on": "2021"}
    path = tmp_path / "backlog.json"
    path.write_text(json.dumps([{**both, "assessments": [{"on": "2020-01-01"}]}]), "utf-8")
    refused = run(db_url, "import", "recommendations", str(path))
    assert refused.exit_code == 11, refused.output
    assert f"{path}:1: give assessments or the assessment_* columns" in refused.stderr
    with opened(db_url) as engine:
        assert count(engine) == 0


def test_a_refused_assessment_is_named_by_its_number_in_the_row(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "backlog.csv"
    path.write_text(
        "source,addressee,text,assessment_on,assessment_status,assessment_2_on,"
        "assessment_2_status\n"
        "cat,interior,A.,2020-01-01,in_progress,2021-01-01,done\n",
        "utf-8",
    )
    refused = run(db_url, "import", "recommendations", str(path))
    assert refused.exit_code == 11, refused.output
    assert f"{path}:2: assess (assessment 2): assessments: entry #1.status: " in refused.stderr
