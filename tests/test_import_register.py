"""``opcatflow import register KIND FILE``: every row checked first, every problem named by
its line, nothing imported on any problem (exit 11), then every row in one transaction. On
both backends."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.workflows import BUNDLED, registry
from opcatflow.workflows.shipped import seed

Run = Callable[..., Result]
COORDINATOR = ["--actor", "cole", "--role", "coordinator"]
HEAD = ["--actor", "hana", "--role", "head"]
CLEAN_ENV = {"OPCATFLOW_DB": None, "OPCATFLOW_ACTOR": None, "OPCATFLOW_ROLE": None}
TYPES = ["prison", "police_custody", "psychiatric_institution", "social_care_home"]


@pytest.fixture
def cli(db_url: str) -> Run:
    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["--db", db_url, *args], env=CLEAN_ENV)

    return run


def places_csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["id", "name", "place_type", "authority", "region", "capacity"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def three_hundred(bad: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rows = [
        {
            "id": f"p-{n}",
            "name": f"Place {n}",
            "place_type": TYPES[n % len(TYPES)],
            "authority": "moj",
            "region": f"Region {n % 7}",
            "capacity": 50 + n,
        }
        for n in range(1, 301)
    ]
    if bad:
        rows[149] = {**rows[149], **bad}  # data row 150: line 151 of the file
    return rows


def test_300_places_with_one_bad_row_fail_whole_then_import_when_fixed(
    cli: Run, tmp_path: Path, db_url: str
) -> None:
    result = cli("start", "authority", "--id", "moj", "-s", "name=Ministry of Justice", *HEAD)
    assert result.exit_code == 0, result.output
    file = tmp_path / "places.csv"
    file.write_text(places_csv(three_hundred({"place_type": "jail", "capacity": "many"})))
    result = cli("import", "register", "place", str(file), *COORDINATOR)
    assert result.exit_code == 11, result.output
    assert f"{file}:151: place_type: expected one of police_custody" in result.stderr
    assert f"{file}:151: capacity: expected an integer" in result.stderr
    assert "nothing imported: 2 problem(s) in 1 of 300 row(s)" in result.stderr
    with Engine.open(db_url, [BUNDLED], registry, create=False) as engine:
        assert engine.registers.entries("place") == []

    file.write_text(places_csv(three_hundred()))
    result = cli("import", "register", "place", str(file), *COORDINATOR)
    assert result.exit_code == 0, result.output
    assert "imported 300 place entries" in result.stdout
    with Engine.open(db_url, [BUNDLED], registry, create=False) as engine:
        entries = engine.registers.entries("place")
        assert len(entries) == 300
        assert engine.get("p-150").data["capacity"] == 200
        assert engine.get("p-150").data["authority"] == "moj"
    # the same file again: every id is taken
    result = cli("import", "register", "place", str(file), *COORDINATOR)
    assert result.exit_code == 11
    assert f"{file}:2: place 'p-1' exists already" in result.stderr


def test_every_problem_of_every_row_is_located(cli: Run, tmp_path: Path) -> None:
    file = tmp_path / "authorities.json"
    rows = [
        {"id": "moj", "name": "Ministry of Justice"},
        {"id": "dcs", "name": "Directorate of Corrections", "parent": "moj"},  # in the file
        {"id": "moj", "name": "Ministry of justice"},  # id and name given twice
        {"id": "x", "name": "X", "parent": "nowhere", "focal_points": "Ana"},
        {"id": "y", "name": "Y", "colour": "red"},
        {"id": "z", "name": "Z", "receives_shared_data": True},  # the head's to set
    ]
    file.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")
    result = cli("import", "register", "authority", str(file), *COORDINATOR)
    assert result.exit_code == 11, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(file))]
    assert [line.removeprefix(f"{file}:") for line in lines] == [
        "4: id 'moj' is given twice (also line 2)",
        "4: 'Ministry of justice' is given twice (also line 2)",
        "5: focal_points: expected a list of entries, or {append, edit, remove}",
        "6: unknown column 'colour'",
        "7: role 'coordinator' may not write receives_shared_data (only head may write it)",
    ]
    # a reference found only once the rest is right
    file.write_text(json.dumps([{"id": "x", "name": "X", "parent": "nowhere"}]))
    result = cli("import", "register", "authority", str(file), *COORDINATOR)
    assert result.exit_code == 11
    assert (
        f"{file}:1: parent: authority 'nowhere' is not in the authority register" in result.stderr
    )


def test_a_bad_file_or_kind_is_refused_before_the_database(cli: Run, tmp_path: Path) -> None:
    file = tmp_path / "places.csv"
    file.write_text("id,name\np-1\n")
    result = cli("import", "register", "place", str(file), *COORDINATOR)
    assert result.exit_code == 11
    assert f"{file}:2: 1 cells, but the header names 2" in result.stderr
    file.write_text("id,name\n")
    result = cli("import", "register", "visit", str(file), *COORDINATOR)
    assert result.exit_code == 2
    assert "'visit' is not a register" in result.stderr


@pytest.mark.parametrize("backend", ["memory"])
def test_start_many_is_one_transaction(backend: str, clock: FrozenClock) -> None:
    from opcatflow.engine.bulk import NewInstance
    from opcatflow.engine.errors import RowsRefused

    with Engine.open("memory:", [BUNDLED], registry, clock=clock) as engine:
        rows = [NewInstance({"name": f"T{n}"}, f"t-{n}") for n in range(3)]
        rows.append(NewInstance({"name": "T0"}, "t-9"))
        with pytest.raises(RowsRefused) as err:
            engine.start_many("theme", rows, actor="hana", role="head")
        assert err.value.problems == ((3, "'T0' is given twice (also row 1)"),)
        assert engine.registers.entries("theme") == []
        engine.start_many("theme", rows[:3], actor="hana", role="head")
        assert [e.title for e in engine.registers.entries("theme")] == ["T0", "T1", "T2"]


def test_the_demo_starts_from_a_few_register_entries(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(app, ["demo", "--db", str(db)], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert "registers 11 authority, 12 theme, 3 place, 4 person" in result.stdout
    with Engine.open(str(db), [BUNDLED], registry, create=False) as engine:
        place = engine.registers.resolve("place", "central-remand-prison")
        assert place is not None
        assert place.title == "Central Remand Prison"
        people = {e.id: e.data["person_kind"] for e in engine.registers.entries("person")}
        assert people["dr.osei"] == "external_expert"
    shown = CliRunner().invoke(app, ["--db", str(db), "show", "central-remand-prison"])
    assert "Directorate of Prison Administration (prison_service)" in shown.stdout


def test_registers_seed_adds_what_is_missing_and_leaves_the_rest(cli: Run, db_url: str) -> None:
    result = cli("registers", "seed", "--actor", "hana")
    assert result.exit_code == 0, result.output
    assert "authority: 8 shipped entries added (as head)" in result.stdout
    assert "theme: 12 shipped entries added" in result.stdout
    with Engine.open(db_url, [BUNDLED], registry, create=False) as engine:
        engine.fire(
            "armed_forces_ombudsperson", "retire", actor="hana", role="head",
            data={"retired_on": "2026-03-01", "retired_reason": "not in this country"},
        )  # fmt: skip
        assert seed(engine, "hana") == {"authority": 0, "theme": 0}
        assert engine.get("armed_forces_ombudsperson").state == "retired"
        body = engine.registers.resolve("authority", "police_ombudsperson")
        assert body is not None
        assert (body.data["receives_shared_data"], body.data["independent"]) == (True, True)
        assert engine.get("prison_management").data["independent"] is False
