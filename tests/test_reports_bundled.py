"""The reports over the bundled workflows: recommendation v4 (sent, assessed through its own
transitions) and the bundled registers, on every store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import registerkit

from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.loader import load_catalog
from opcatflow.engine.ports import Store
from opcatflow.engine.settings import Settings
from opcatflow.workflows import BUNDLED, registry
from opcatflow.workflows.reporting import service

CATALOG = load_catalog([BUNDLED], registry)  # compiled once for the module
HEAD = {"actor": "r.haddad", "role": "head"}


@pytest.fixture
def engine(store: Store) -> Iterator[Engine]:
    clock = FrozenClock(datetime(2026, 2, 1, 15, tzinfo=UTC))
    settings = Settings.from_text("calendar: {timezone: America/Mexico_City}\n")
    with Engine(store, CATALOG, registry, clock=clock, settings=settings) as eng:
        registerkit.seed_authorities(eng)  # the recommendations' addressee
        yield eng


def recommendation(engine: Engine, places: list[str], *statuses: str) -> str:
    data: dict[str, Any] = {"source": "spt", "addressee": registerkit.AUTHORITY,
                            "text": "Medical screening on arrival", "places": places}  # fmt: skip
    rec = engine.start("recommendation", data=data, **HEAD).id
    clock = engine.clock
    assert isinstance(clock, FrozenClock)
    clock.set(datetime(2026, 2, 1, 15, tzinfo=UTC))
    engine.fire(rec, "send", **HEAD)  # sent_on: the clock's day in Mexico City
    clock.set(datetime(2026, 6, 1, 15, tzinfo=UTC))
    for status in statuses:
        appended = {"append": [{"on": "2026-05-01", "status": status, "evidence": "Seen."}]}
        engine.fire(rec, "assess", data={"assessments": appended}, **HEAD)
    return rec


def test_bundled_recommendations_are_counted_by_place_and_status(engine: Engine) -> None:
    engine.start("place", data={"name": "Central Prison", "place_type": "prison"},
                 instance_id="p-central", **HEAD)  # fmt: skip
    recommendation(engine, ["p-central"], "in_progress", "implemented")
    recommendation(engine, ["p-central"])
    recommendation(engine, [])
    report = service.recommendations(engine, ("place", "status", "year"), year=2026)
    table = report.tables[0]
    counts = {" / ".join(table.rows[r]): n for (r, _), n in table.cells.items()}
    assert counts == {
        "Central Prison / implemented / 2026": 1,
        "Central Prison / not_assessed / 2026": 1,
        "(not recorded) / not_assessed / 2026": 1,
    }
    annual = {t.name: t for t in service.annual(engine, 2026).tables}
    statuses = annual["recommendations_by_status"]
    assert {statuses.rows[r][0]: n for (r, _), n in statuses.cells.items()} == {
        "implemented": 1,
        "not_assessed": 2,
    }
