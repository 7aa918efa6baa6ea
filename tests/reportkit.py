"""A seeded year for the report tests: registers, visits, complaints, recommendations,
reprisal allegations and referrals around the turn of 2026/2027 in Mexico City (UTC-6), and
the counts the annual report must give, worked out by hand from the seed below."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import new_pg_schema

from opcatflow.engine import Engine, FrozenClock, Registry
from opcatflow.engine.crypto.providers import KeyFile
from opcatflow.engine.loader import load_catalog
from opcatflow.engine.memory import MemoryStore
from opcatflow.engine.ports import Store
from opcatflow.engine.settings import Settings
from opcatflow.engine.sql import SQLAlchemyStore
from opcatflow.workflows.reporting.sources import register_sources

REPORTS = Path(__file__).parent / "definitions" / "reports"
CLERK = {"actor": "kim", "role": "clerk"}
ZONE = "America/Mexico_City"
PERSONAL = ("Tomás Varga", "Ana Reyes", "struck in cell 14", "threatened by the guard")


def npm_settings(threshold: int | None = None) -> Settings:
    text = f"calendar: {{timezone: {ZONE}}}\n"
    if threshold is not None:
        text += f"reports: {{small_count_threshold: {threshold}}}\n"
    return Settings.from_text(text)


def report_registry() -> Registry:
    registry = Registry()
    register_sources(registry)
    return registry


@contextmanager
def report_engine(
    store: Store, clock: FrozenClock, threshold: int | None = None, keys: KeyFile | None = None
) -> Iterator[Engine]:
    registry = report_registry()
    catalog = load_catalog([REPORTS], registry)
    settings = npm_settings(threshold)
    with Engine(store, catalog, registry, clock=clock, settings=settings, keys=keys) as engine:
        yield engine


@contextmanager
def seeded_store(
    kind: str, folder: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Store, str]]:
    """A store of ``kind`` (memory, sqlite, postgresql) for a module's tests, and its URL;
    the PostgreSQL schema is dropped after."""
    if kind == "memory":
        yield MemoryStore(), "memory:"
        return
    schema = None
    if kind == "sqlite":
        url = str(folder / "reports.db")
    else:
        admin = request.getfixturevalue("pg_admin")
        schema, url = new_pg_schema(admin)
    store = SQLAlchemyStore(url)
    store.ensure_schema()
    try:
        yield store, url
    finally:
        store.close()
        if schema is not None:
            with request.getfixturevalue("pg_admin").connect() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


def start(engine: Engine, workflow: str, data: dict[str, Any], **kwargs: Any) -> str:
    return engine.start(workflow, data=data, **CLERK, **kwargs).id


def at(clock: FrozenClock, when: str) -> None:
    clock.set(datetime.fromisoformat(when).astimezone(UTC))


def seed(engine: Engine, clock: FrozenClock) -> dict[str, str]:
    """The seeded year; returns the ids worth naming."""
    at(clock, "2026-01-10T12:00:00+00:00")
    start(engine, "authority", {"name": "Ministry of Justice"}, instance_id="a-min")
    start(engine, "authority", {"name": "National Police"}, instance_id="a-pol")
    start(
        engine, "place", {"name": "Central Prison", "place_type": "prison"}, instance_id="p-prison"
    )
    start(
        engine,
        "place",
        {"name": "Police Station 4", "place_type": "police_custody"},
        instance_id="p-cell",
    )
    start(
        engine,
        "place",
        {"name": "Central Prison (annex)", "place_type": "prison"},
        instance_id="p-dup",
    )
    start(engine, "theme", {"name": "Health care"}, instance_id="t-health")
    start(engine, "theme", {"name": "Use of force"}, instance_id="t-force")

    def visit(place: str, kind: str, ended_on: str, denied: bool = False) -> None:
        data: dict[str, Any] = {"place": place, "kind": kind, "ended_on": ended_on,
                                "debrief_notes": "Ana Reyes was struck in cell 14"}  # fmt: skip
        if denied:
            data["access_denied"] = [
                {
                    "n": 1,
                    "what": "the register of Tomás Varga",
                    "denied_at": "2026-03-09T10:00:00-06:00",
                }
            ]
        start(engine, "visit", data)

    for _ in range(2):
        visit("p-prison", "regular", "2026-03-10")
    visit("p-prison", "regular", "2026-03-10", denied=True)
    visit("p-dup", "regular", "2026-05-05")  # merged into p-prison later: still a prison
    visit("p-cell", "follow_up", "2026-12-31")
    visit("p-cell", "reprisal_follow_up", "2026-06-01")
    visit("p-prison", "regular", "2025-12-31")  # last day on site in 2025: not counted
    visit("p-prison", "regular", "2027-01-01")  # in 2027: not counted

    def complaint(received_on: str, theme: str | None, trigger: str | None = None) -> None:
        data: dict[str, Any] = {"received_on": received_on, "summary": "struck in cell 14"}
        if theme:
            data["theme"] = theme
        case = start(engine, "complaint", data)
        if trigger:
            engine.fire(case, trigger, **CLERK)

    complaint("2026-01-01", "t-health")
    complaint("2026-01-01", "t-health")
    complaint("2026-12-31", "t-force", "close")
    complaint("2025-12-31", "t-force")  # received in 2025
    complaint("2026-07-01", None, "refer")

    def rec(sent_on: str, places: list[str], addressee: str, *assessments: tuple[str, str]) -> str:
        return start(engine, "recommendation", {
            "source": "npm_visit", "addressee": addressee, "places": places,
            "themes": ["t-health"], "sent_on": sent_on, "text": "Ana Reyes must be moved",
            "assessments": [
                {"n": n, "on": on, "status": status, "by": "Ana Reyes"}
                for n, (on, status) in enumerate(assessments, 1)
            ],
        })  # fmt: skip

    ids = {
        "r1": rec("2026-02-01", ["p-prison", "p-cell"], "a-min",
                  ("2026-06-01", "in_progress"), ("2026-12-31", "implemented")),
        "r2": rec("2026-02-01", ["p-prison"], "a-min",
                  ("2026-06-01", "in_progress"), ("2027-01-01", "implemented")),
        "r3": rec("2026-03-01", ["p-cell"], "a-pol",
                  ("2026-09-01", "partially_implemented"), ("2026-09-01", "implemented")),
        "r4": rec("2026-04-01", ["p-prison"], "a-min", ("2026-05-01", "no_longer_relevant")),
        "r5": rec("2026-05-01", [], "a-pol"),
        "r6": rec("2025-12-31", ["p-prison"], "a-min", ("2026-01-05", "implemented")),
        "r7": rec("2026-06-01", ["p-dup"], "a-min"),
    }  # fmt: skip
    engine.fire("p-dup", "merge_into", data={"merged_into": "p-prison"}, **CLERK)

    def reprisal(*allegations: tuple[str, str]) -> None:
        start(engine, "reprisal", {"origin": "npm_visit", "allegations": [
            {"n": n, "received_at": when, "source": source, "text": "threatened by the guard"}
            for n, (when, source) in enumerate(allegations, 1)
        ]})  # fmt: skip

    reprisal(("2026-12-31T23:30:00-06:00", "relative"), ("2026-01-01T03:00:00+00:00", "lawyer"))
    reprisal(("2027-01-01T05:59:00+00:00", "relative"), ("2027-01-01T06:00:00+00:00", "staff"))
    reprisal(("2026-05-05T10:00:00-06:00", "person_concerned"))

    at(clock, "2027-01-01T03:00:00+00:00")  # 31 December, 21:00 in Mexico City
    start(engine, "referral", {"body": "police_ombudsperson", "result": "investigated"})
    at(clock, "2026-01-01T05:00:00+00:00")  # 31 December 2025, 23:00 in Mexico City
    start(engine, "referral", {"body": "police_ombudsperson", "result": "dismissed"})
    at(clock, "2026-06-01T12:00:00+00:00")
    start(engine, "referral", {"body": "prosecutor"})
    at(clock, "2027-02-01T12:00:00+00:00")
    return ids


# The annual report for 2026, by hand from the seed: {table: {(row, column): count}}.
EXPECTED_2026 = {
    "visits_by_place_type_and_kind": {
        ("prison", "regular"): 4,
        ("police_custody", "follow_up"): 1,
        ("police_custody", "reprisal_follow_up"): 1,
    },
    "visits_with_access_denied": {("prison", "count"): 1},
    "complaints_by_theme_and_outcome": {
        ("Health care", "received"): 2,
        ("Use of force", "closed"): 1,
        ("(not recorded)", "referred"): 1,
    },
    "recommendations_by_status": {
        ("implemented", "count"): 2,  # r1 (31 December counts), r3 (the later n that day)
        ("in_progress", "count"): 1,  # r2: implemented only on 1 January 2027
        ("no_longer_relevant", "count"): 1,
        ("not_assessed", "count"): 2,  # r5, r7
    },
    "reprisal_allegations_by_source": {
        ("relative", "count"): 2,  # 23:30 and 23:59 on 31 December local time
        ("person_concerned", "count"): 1,
    },
    "follow_up_visits": {
        ("after reprisal allegations", "count"): 1,
        ("routine", "count"): 1,
    },
    "referrals_by_body_and_result": {
        ("police_ombudsperson", "investigated"): 1,  # made 21:00 on 31 December local
        ("prosecutor", "awaiting outcome"): 1,
    },
}
# issued in 2026: 6; no longer relevant: 1; so the denominator is 5
EXPECTED_RATES = {"implemented": (2, 5), "implemented_at_least_partially": (2, 5)}
