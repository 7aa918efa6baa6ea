"""Subjects: a workflow's `subject:` field is indexed by a keyed hash (the blind index), so
`subject export` finds one person across complaint, visit and reprisal cases (a complaint's
child included) without opening any value, and `subject erase` erases them all; `validate`
refuses a subject field that is not personal, where it is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from privacy_helpers import PRIVACY, complaint, privacy_engine
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.engine import FrozenClock
from opcatflow.engine.erasure import erase_subject, is_erased, subject_instances
from opcatflow.engine.sql import tables as t
from opcatflow.engine.subject_access import export_subject

BASIS = "Data protection act, art. 17"
ENV = {"OPCATFLOW_DB": None, "COLUMNS": "200"}


def test_one_person_is_found_across_workflows_and_erased_everywhere(
    db_url: str, clock: FrozenClock
) -> None:
    with privacy_engine(db_url, clock) as engine:
        filed = complaint(engine, "Ana Pereira")
        child = engine.fire_result(filed, "refer", actor="c", role="clerk").opened[0]
        visit = engine.start(
            "p_visit", actor="v", role="visitor", data={"place": "Prison A",
                                                        "interviewee": "ANA  pereira"},
        ).id  # fmt: skip
        reprisal = engine.start(
            "p_reprisal", actor="c", role="clerk", data={"victim": "Ana Pereira"}
        )
        other = complaint(engine, "Bruno Lima")
        found = subject_instances(engine, " ana pereira ")
        exported = export_subject(engine, "Ana Pereira", actor="dpo", role="admin")
        erased = erase_subject(
            engine, "ana pereira", actor="dpo", role="admin", reason="request 7", legal_basis=BASIS
        )
        after = export_subject(engine, "Ana Pereira", actor="dpo", role="admin")
        assert engine.get(other).data["complainant"] == "Bruno Lima"
        assert not is_erased(engine, other)
        assert engine.get(visit).data == {"place": "Prison A", "interviewee": "[erased]"}
        assert engine.verify_audit().ok
    assert sorted(found) == sorted([filed, child, visit, reprisal.id])
    cases = {c["instance"]["id"]: c for c in exported["cases"]}
    assert set(cases) == set(found)
    assert cases[filed]["instance"]["data"]["story"] == "Ana Pereira was beaten"  # decrypted
    assert cases[filed]["history"][0]["reason"] == "filed"  # reasons opened
    assert cases[filed]["children"] == [child]
    assert cases[child]["instance"]["data"]["victim"] == "Ana Pereira"
    assert {c["workflow_title"] for c in cases.values()} == {
        "Complaint (privacy tests)", "Visit (privacy tests)", "Reprisal (privacy tests)",
    }  # fmt: skip
    assert sorted(e.instance_id for e in erased) == sorted(found)
    assert after["cases"] == []


def test_the_index_holds_no_subject_id_and_follows_the_field(
    db_url: str, clock: FrozenClock
) -> None:
    with privacy_engine(db_url, clock) as engine:
        case = complaint(engine, "Ana Pereira")
        engine.fire(case, "note", actor="c", role="clerk", data={"complainant": "Ana P. Souza"})
        old, new = (
            subject_instances(engine, "Ana Pereira"),
            subject_instances(engine, "ana p. souza"),
        )
    db = sa.create_engine(db_url if "://" in db_url else f"sqlite:///{db_url}")
    with db.connect() as conn:
        rows = conn.execute(sa.select(t.subjects)).all()
    db.dispose()
    assert (old, new) == ([], [case])
    assert len(rows) == 1
    assert rows[0].blind_index.startswith("hmac-sha256:")
    assert "souza" not in rows[0].blind_index.lower()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("subject: place", "subject 'place' is not personal"),
        ("subject: complainent", "unknown field 'complainent' (did you mean 'complainant'?)"),
        ("retention: 5 years", "malformed retention '5 years'"),
        ("retention: 48 hours after closed", "is in hours"),
        ("erasable_by: [hed]", "unknown role 'hed' (did you mean 'head'?)"),
    ],
)
def test_validate_refuses_a_privacy_key_it_cannot_honour_where_it_is(
    tmp_path: Path, line: str, message: str
) -> None:
    text = (PRIVACY / "complaint.yaml").read_text()
    key = line.split(":", maxsplit=1)[0]
    lines = [f"{line}" if row.startswith(f"{key}:") else row for row in text.splitlines()]
    path = tmp_path / "complaint.yaml"
    path.write_text("\n".join(lines) + "\n")
    reprisal = PRIVACY / "reprisal.yaml"  # the complaint opens one
    result = CliRunner().invoke(
        app,
        ["--no-bundled", "--workflows", str(path), "--workflows", str(reprisal), "validate",
         str(path)],
        env=ENV,
    )  # fmt: skip
    assert result.exit_code == 6, result.output
    number = next(i for i, row in enumerate(lines, 1) if row.startswith(f"{key}:"))
    assert f"{path}:{number}:" in result.stdout
    assert message in result.stdout


def test_the_cli_exports_and_erases_a_subject(tmp_path: Path) -> None:
    db = str(tmp_path / "db.sqlite")
    base = ["--db", db, "--no-bundled", "--workflows", str(PRIVACY)]
    runner = CliRunner()
    data = json.dumps({"reference": "C-1", "complainant": "Ana Pereira", "story": "s"})
    started = runner.invoke(
        app, [*base, "start", "p_complaint", "--actor", "c", "--role", "clerk", "--data", data,
              "--json"], env=ENV,
    )  # fmt: skip
    case = json.loads(started.stdout)["id"]
    exported = runner.invoke(app, [*base, "subject", "export", "ana pereira", "--actor", "dpo"])
    no_basis = runner.invoke(app, [*base, "erase", case, "--actor", "dpo", "--reason", "r"])
    erased = runner.invoke(
        app, [*base, "subject", "erase", "Ana Pereira", "--actor", "dpo", "--reason", "request 7",
              "--legal-basis", BASIS, "--json"],
    )  # fmt: skip
    again = runner.invoke(
        app, [*base, "erase", case[:8], "--actor", "dpo", "--reason", "r", "--legal-basis", "b"]
    )
    shown = runner.invoke(app, [*base, "show", case])
    verified = runner.invoke(app, [*base, "audit", "verify"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["cases"][0]["instance"]["data"]["complainant"] == (
        "Ana Pereira"
    )
    assert no_basis.exit_code == 2
    assert erased.exit_code == 0, erased.output
    assert [e["instance_id"] for e in json.loads(erased.stdout)["erased"]] == [case]
    assert again.exit_code == 3
    assert "erased" in again.output
    assert "[erased]" in shown.stdout
    assert "Ana" not in shown.stdout
    assert verified.exit_code == 0
