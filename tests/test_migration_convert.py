"""The free-text conversion step of migration plans (``data.convert``): values matched to
register entries by title (exactly, then ignoring case), the rest listed for an operator
who maps them; nothing moves until every value is known. The shipped plans applied to
instances in every occupied state are in test_migration_bundled.py; here, a plan meeting
unmatched values, then a mapping file, through the command, on both backends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import registerkit
from http_server import LiveServer, live_server_fixture  # noqa: F401
from migration_helpers import occupied_states, place
from test_migration_bundled import store_previous
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.errors import Problem
from opcatflow.engine.migration import Migrator
from opcatflow.engine.migration.convert import (
    Conversion,
    Target,
    TitleIndex,
    UnmappedValues,
    load_mapping,
)
from opcatflow.workflows import BUNDLED, registry, shipped_plans

ENV = {"OPCATFLOW_DB": None, "OPCATFLOW_SETTINGS": None, "COLUMNS": "200"}


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    state: str = "active"
    retired: bool = False


def test_a_title_matches_exactly_then_ignoring_case_active_entries_first() -> None:
    index = TitleIndex(
        "place",
        [
            Entry("p1", "Central Remand Prison"),
            Entry("p2", "central remand prison", "retired", True),
            Entry("p3", "North Station"),
            Entry("p4", "NORTH station"),
            Entry("p5", "Old Fort", "retired", True),
        ],
    )
    assert index.match("Central Remand Prison") == ("p1", ["p1"])
    assert index.match("  central  REMAND prison ") == ("p1", ["p1"])  # one active entry
    assert index.match("North Station") == ("p3", ["p3"])  # exact wins over ignoring case
    assert index.match("north station") == (None, ["p3", "p4"])  # ambiguous: the operator maps
    assert index.match("old fort") == ("p5", ["p5"])  # a closed place is still that place
    assert index.match("Nowhere") == (None, [])


def test_lists_and_records_are_converted_item_by_item() -> None:
    conversion = Conversion(
        [
            Target("team_members", "team_members", "person", many=True),
            Target(
                "conflicts_of_interest.place",
                "conflicts_of_interest",
                "place",
                sub="place",
                key="place",
            ),
        ],
        {"person": {"A. Diallo": "a.diallo", "a. diallo": "a.diallo"}, "place": {"CRP": "p1"}},
    )
    data, notes, unknown = conversion.apply(
        {
            "team_members": ["A. Diallo", "a. diallo", "X"],
            "conflicts_of_interest": [
                {"place": "CRP", "declared_on": "2026-01-01"},
                {"place": "CRP", "declared_on": "2026-02-01"},
            ],
        }
    )
    # Two spellings of one person are one reference; the first declaration stands.
    assert data["team_members"] == ["a.diallo", "X"]
    assert data["conflicts_of_interest"] == [{"place": "p1", "declared_on": "2026-01-01"}]
    assert unknown == ["person 'X'"]
    assert notes == [
        "converted team_members to person ids",
        "converted conflicts_of_interest.place to place ids",
    ]


def test_a_malformed_mapping_file_is_refused_where_written() -> None:
    with pytest.raises(UnmappedValues) as caught:
        load_mapping("place:\n  Centrl: 7\nperson: [a]\n", "map.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "map.yaml:2:11: an entry id is a string",
        "map.yaml:3:9: person: give free text -> entry id",
    ]
    assert isinstance(UnmappedValues([Problem("p", 1, 1, "m")]), UnmappedValues)


# -- a plan meeting unmatched values, through the command -----------------------------------

FREE_TEXT: dict[str, Any] = {"kind": "regular", "place": "central remand prison"}


@pytest.fixture
def database(db_url: str) -> str:
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        registerkit.seed(engine)
    return db_url


def test_unmatched_values_stop_the_plan_until_a_mapping_gives_them(
    database: str, tmp_path: Path
) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with Engine.open(database, [BUNDLED], registry, clock=clock) as engine:
        store_previous(engine, "visit", 5)
        states = occupied_states(engine, "visit", 5)
        entered = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
        members = {"team_members": ["A. Diallo", "Sam Nakamura"]}
        ids = place(engine, "visit", 5, states, {**FREE_TEXT, **members}, entered=entered)
        other = place(engine, "visit", 5, ["planning"], {**FREE_TEXT, "place": "Centrl Prison"},
                      entered=entered)  # fmt: skip
    plan = str(shipped_plans()["visit-5-6"])
    refused = CliRunner().invoke(app, ["--db", database, "migrate", plan], env=ENV)
    assert refused.exit_code == 12, refused.output
    assert "place 'Centrl Prison' (place in 1 instance(s)): no entry is titled so" in (
        refused.output
    )
    assert f"person 'Sam Nakamura' (team_members in {len(states)} instance(s))" in refused.output
    assert "A. Diallo" not in refused.output  # matched exactly
    with Engine.open(database, [BUNDLED], registry, clock=clock) as engine:
        assert {engine.get(i).workflow_version for i in [*ids, *other]} == {5}  # nothing moved

    mapping = tmp_path / "map.yaml"
    mapping.write_text("place:\n  Centrl Prison: nowhere\n")
    wrong = CliRunner().invoke(
        app, ["--db", database, "migrate", plan, "--map", str(mapping)], env=ENV
    )
    assert wrong.exit_code == 12
    assert f"{mapping}:2:18: place 'nowhere' is not in the place register" in wrong.output

    mapping.write_text(
        f"place:\n  Centrl Prison: {registerkit.PLACE}\nperson:\n  Sam Nakamura: s.nakamura\n"
    )
    done = CliRunner().invoke(
        app, ["--db", database, "migrate", plan, "--map", str(mapping)], env=ENV
    )
    assert done.exit_code == 0, done.output
    assert f"visit v5 -> v6: {len(states) + 1} migrated" in done.output
    with Engine.open(database, [BUNDLED], registry, clock=clock) as engine:
        for instance_id in ids:
            moved = engine.get(instance_id)
            assert moved.workflow_version == 6
            assert moved.data["place"] == registerkit.PLACE
            assert moved.data["team_members"] == [registerkit.DIALLO, registerkit.NAKAMURA]
        assert engine.get(other[0]).data["place"] == registerkit.PLACE
        assert engine.verify_audit().ok
        report = Migrator(engine).run(Migrator(engine).load(Path(plan).read_text(), plan),
                                      dry_run=True)  # fmt: skip
        assert report.outcomes == []  # every instance moved: nothing left to convert


def test_over_http_unmatched_values_are_a_problem_until_the_mapping_gives_them(
    live_server: LiveServer, database: str
) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    plan = shipped_plans()["visit-5-6"].read_text("utf-8")
    with Engine.open(database, [BUNDLED], registry, clock=clock) as engine:
        store_previous(engine, "visit", 5)
        entered = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
        [visit] = place(engine, "visit", 5, ["planning"], {**FREE_TEXT, "place": "Centrl Prison"},
                        entered=entered)  # fmt: skip
        admin = {
            "Authorization": f"Bearer {ApiKeys(engine.store, clock).create('ops', ['admin'])[1]}"
        }
        live_server.slot.app = create_app(engine, ApiConfig())
        try:
            with httpx.Client(base_url=live_server.url, timeout=60) as client:
                body = {"plan": plan, "dry_run": False}
                unmapped = client.post("/admin/migrations", json=body, headers=admin)
                assert unmapped.status_code == 422, unmapped.text
                assert unmapped.headers["content-type"].startswith("application/problem+json")
                [problem] = unmapped.json()["problems"]
                assert "place 'Centrl Prison' (place in 1 instance(s))" in problem
                assert engine.get(visit).workflow_version == 5  # nothing moved
                mapping = {"place": {"Centrl Prison": registerkit.PLACE}}
                done = client.post(
                    "/admin/migrations", json={**body, "mapping": mapping}, headers=admin
                )
                assert done.status_code == 200, done.text
                assert done.json()["counts"] == {"migrated": 1}
        finally:
            live_server.slot.app = None
        assert engine.get(visit).data["place"] == registerkit.PLACE
