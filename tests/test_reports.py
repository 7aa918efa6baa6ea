"""The annual report and the recommendations report over a seeded year that crosses the
turn of 2026/2027 in Mexico City: the counts match the ones worked out by hand
(tests/reportkit.py), on every store, and the numbers come from the projection only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from reportkit import (
    EXPECTED_2026,
    EXPECTED_RATES,
    PERSONAL,
    npm_settings,
    report_engine,
    report_registry,
    seed,
    seeded_store,
)

from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.crypto.providers import KeyFile
from opcatflow.engine.errors import InvalidFilter
from opcatflow.engine.ports import Store
from opcatflow.workflows.reporting import service
from opcatflow.workflows.reporting.model import Report, Table


@dataclass
class Seeded:
    engine: Engine
    ids: dict[str, str]
    store: Store
    clock: FrozenClock
    keys: KeyFile


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """The seeded year, once per store: the tests only read it."""
    folder = tmp_path_factory.mktemp("reports")
    keys = KeyFile(folder / "keys")
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    with (
        seeded_store(request.param, folder, request) as (store, _),
        report_engine(store, clock, keys=keys) as engine,
    ):
        yield Seeded(engine, seed(engine, clock), store, clock, keys)


def counts(table: Table) -> dict[tuple[str, str], int]:
    """The table's true counts by (row label, column), before suppression."""
    return {(" / ".join(table.rows[r]), table.columns[c]): n for (r, c), n in table.cells.items()}


def by_name(report: Report) -> dict[str, Table]:
    return {t.name: t for t in report.tables}


def test_the_annual_report_matches_the_counts_worked_out_by_hand(
    seeded: Seeded,
) -> None:
    engine = seeded.engine
    report = service.annual(engine, 2026)
    tables = by_name(report)
    assert {name: counts(tables[name]) for name in EXPECTED_2026} == EXPECTED_2026
    rates = {r.name: (r.numerator, r.denominator) for r in report.rates}
    assert rates == EXPECTED_RATES
    assert report.parameters["time_zone"] == "America/Mexico_City"


def test_a_utc_reading_would_move_items_across_the_year_boundary(
    seeded: Seeded,
) -> None:
    engine = seeded.engine
    tables = by_name(service.annual(engine, 2027))
    # 2027 in Mexico City starts at 06:00 UTC: the 05:59 allegation is not in it
    assert counts(tables["reprisal_allegations_by_source"]) == {("staff", "count"): 1}
    assert counts(tables["referrals_by_body_and_result"]) == {}
    assert counts(tables["visits_by_place_type_and_kind"]) == {("prison", "regular"): 1}
    earlier = by_name(service.annual(engine, 2025))
    assert counts(earlier["referrals_by_body_and_result"]) == {
        ("police_ombudsperson", "dismissed"): 1
    }
    assert counts(earlier["reprisal_allegations_by_source"]) == {("lawyer", "count"): 1}


def test_recommendations_by_place_follow_merges_and_count_each_place_named(
    seeded: Seeded,
) -> None:
    engine = seeded.engine
    report = service.recommendations(engine, ("place",), year=2026)
    assert counts(report.tables[0]) == {
        ("Central Prison", "count"): 4,  # r1, r2, r4 and r7 (its place merged into it)
        ("Police Station 4", "count"): 2,  # r1, r3
        ("(not recorded)", "count"): 1,  # r5
    }
    status = service.recommendations(engine, ("authority", "status"), year=2026)
    assert counts(status.tables[0]) == {
        ("Ministry of Justice / implemented", "count"): 1,
        ("Ministry of Justice / in_progress", "count"): 1,
        ("Ministry of Justice / no_longer_relevant", "count"): 1,
        ("Ministry of Justice / not_assessed", "count"): 1,
        ("National Police / implemented", "count"): 1,
        ("National Police / not_assessed", "count"): 1,
    }


def test_the_status_is_taken_on_the_day_asked(seeded: Seeded) -> None:
    engine = seeded.engine
    early = service.recommendations(engine, ("status", "year"), on=date(2026, 6, 1))
    assert counts(early.tables[0]) == {
        ("in_progress / 2026", "count"): 2,  # r1, r2 (assessed that very day)
        ("no_longer_relevant / 2026", "count"): 1,
        ("not_assessed / 2026", "count"): 3,  # r3 (assessed in September), r5, r7
        ("implemented / 2025", "count"): 1,
    }
    today = service.recommendations(engine, ("status",), year=None)
    assert today.parameters["status_on"] == "2027-02-01"  # the clock's day in Mexico City
    assert counts(today.tables[0])[("implemented", "count")] == 4  # r2 by now, and r6


def test_bad_dimensions_and_years_are_refused_by_name() -> None:
    with pytest.raises(InvalidFilter, match="cannot count by 'person'"):
        service.parse_by("place,person")
    with pytest.raises(InvalidFilter, match="named twice"):
        service.parse_by("place,place")
    with pytest.raises(InvalidFilter, match="a year from 1990"):
        service.check_year(26)


def test_small_counts_are_suppressed_at_the_default_threshold(
    seeded: Seeded,
) -> None:
    engine = seeded.engine
    document = service.annual(engine, 2026).as_json()
    tables = {t["name"]: t for t in document["tables"]}
    visits = tables["visits_by_place_type_and_kind"]
    assert document["parameters"]["threshold"] == "5"
    # every count of the seed is below 5 but the total: nothing but '<5', 'x' or 0 shows
    shown = {v for row in visits["rows"] for k, v in row.items() if k != "place_type"}
    assert shown <= {"<5", "x", "0"}
    assert visits["total"] == "6"
    assert all(r["rate"] == "x" for r in document["rates"])
    text = str(document)
    assert not any(value in text for value in PERSONAL)


def test_the_threshold_is_a_setting(seeded: Seeded) -> None:
    engine = Engine(
        seeded.store, seeded.engine.catalog, report_registry(), clock=seeded.clock,
        settings=npm_settings(threshold=2), register=False, keys=seeded.keys,
    )  # fmt: skip
    document = service.annual(engine, 2026).as_json()
    assert document["parameters"]["threshold"] == "2"
    [complaints] = [t for t in document["tables"] if t["name"].startswith("complaints")]
    health = next(r for r in complaints["rows"] if r["theme"] == "Health care")
    assert health["received"] == "2"
    assert "<2" in str(complaints)
