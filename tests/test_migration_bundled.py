"""Every migration plan shipped with a bundled workflow (workflows/migrations/) applies to
instances in every non-final state of its previous version.

The previous version is the copy a database keeps for the instances pinned to it: this test
stores it as a release that ran it would have (the text of that release's file, kept in
tests/fixtures/previous/<workflow>-v<version>.yaml), so the plan resolves it as in
production, compiled in compatibility mode. A later bump ships its plan and the previous
file; this test finds both (and the sample data below says what a case of it holds).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import registerkit
import sqlalchemy as sa
from conftest import new_pg_schema
from migration_helpers import assert_plan_applies, place
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.engine.loader import compile_stored
from opcatflow.engine.rows import StoredDefinition
from opcatflow.workflows import BUNDLED, registry, shipped_plans

PREVIOUS = Path(__file__).parent / "fixtures" / "previous"

# Start data valid under both versions (each version's required fields).
DATA: dict[str, dict[str, Any]] = {
    # Free text the register conversions (complaint-5-6, visit-5-6...) match to the entries
    # registerkit seeds: exactly, or ignoring case.
    "cat_cycle": {"recommendations_addressee": "ministry of justice"},
    "complaint": {
        "source": "detained_person",
        "channel": "mail",
        "received_on": "2026-02-20",
        "institution": "central remand prison",
        "theme": "Use of force",
    },
    "expert": {
        "name": "Dr Ama Osei",
        "recruitment": "ad_hoc",
        "conflicts_of_interest": [{"place": "North Police Station"}],
    },
    "recommendation": {
        "addressee": "Ministry of Justice",
        "source": "npm_visit",
        "text": "Hold remand detainees apart from convicted prisoners.",
    },
    "reprisal": {
        "origin": "npm_visit",
        "reported_on": "2026-02-20",
        "place": "NORTH POLICE STATION",
    },
    "visit": {"kind": "regular", "place": "Central Remand Prison"},
    "upr_cycle": {"session_start": "2027-01-25", "recommendations_addressee": "MINISTRY OF HEALTH"},
    "spt_advisory": {"year_starts_on": "2026-01-01"},
    "spt_visit": {
        "visit_kind": "country",
        "places_seen": ["Central Remand Prison"],
        "recommendations_addressee": "Ministry of Justice",
    },
    "sp_visit": {
        "body": "special_procedure",
        "reprisal_place": "St Anne psychiatric hospital",
        "recommendations_addressee": " ministry of health ",
    },
    "referral": {
        "body": "police_ombudsperson",
        "shares": "preliminary_findings",
        "institution": "Central Remand Prison",
        "theme": "health care",
    },
}
PLAN_NAME = re.compile(r"^(?P<workflow>[a-z_]+)-(?P<source>\d+)-(?P<target>\d+)$")


def store_previous(engine: Engine, workflow: str, version: int) -> None:
    """Store the previous versions' texts from ``version`` on, as the releases that ran them
    did (a plan from an older version targets one the bundled files no longer hold)."""
    for path in sorted(PREVIOUS.glob(f"{workflow}-v*.yaml")):
        number = int(path.stem.rsplit("-v", 1)[1])
        if number < version:
            continue
        text = path.read_text("utf-8")
        wf = compile_stored(text, workflow, number, registry)
        row = StoredDefinition(
            workflow, number, wf.fingerprint, wf.definition.title, text, engine.clock.now()
        )
        with engine.store.write() as uow:
            if uow.definitions.get(workflow, number) is None:
                uow.definitions.add(row)


def test_every_bumped_bundled_workflow_ships_a_plan() -> None:
    plans = shipped_plans()
    for path in sorted(BUNDLED.glob("*.yaml")):
        current = re.search(r"^version: (\d+)$", path.read_text("utf-8"), re.MULTILINE)
        assert current is not None
        previous = sorted(PREVIOUS.glob(f"{path.stem}-v*.yaml"))
        for old in previous:
            version = int(old.stem.rsplit("-v", 1)[1])
            assert f"{path.stem}-{version}-{version + 1}" in plans, old


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bundled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One database per backend for every plan (each plan moves its own workflow's
    instances; opening a database is most of a plan's time)."""
    schema = None
    if request.param == "sqlite":
        url = str(tmp_path_factory.mktemp("plans") / "opcatflow.db")
    else:
        admin = request.getfixturevalue("pg_admin")
        schema, url = new_pg_schema(admin)
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with Engine.open(url, [BUNDLED], registry, clock=clock, synchronous="NORMAL") as engine:
        registerkit.seed(engine)
        yield engine
    if schema is not None:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.mark.parametrize("name", sorted(shipped_plans()))
def test_a_shipped_plan_applies_in_every_occupied_state(bundled: Engine, name: str) -> None:
    found = PLAN_NAME.match(name)
    assert found is not None, f"{name}: a shipped plan is named <workflow>-<from>-<to>"
    workflow, source = found["workflow"], int(found["source"])
    store_previous(bundled, workflow, source)
    plan = shipped_plans()[name]
    data = DATA.get(workflow, {})
    assert_plan_applies(bundled, plan, data, entered=bundled.clock.now() - timedelta(days=10))


def test_the_command_names_a_shipped_plan(tmp_path: Path) -> None:
    db = str(tmp_path / "opcatflow.db")
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with Engine.open(db, [BUNDLED], registry, clock=clock) as engine:
        store_previous(engine, "complaint", 3)
        [case] = place(engine, "complaint", 3, ["received"], DATA["complaint"], entered=at(1))
    env = {"OPCATFLOW_DB": None, "OPCATFLOW_SETTINGS": None, "COLUMNS": "200"}
    dry = CliRunner().invoke(app, ["--db", db, "migrate", "complaint-3-4", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert f"{case}  received -> received  would migrate" in dry.output
    unknown = CliRunner().invoke(app, ["--db", db, "migrate", "complaint-9-10"], env=env)
    assert unknown.exit_code == 2
    # the shipped plans, in name order (not pinned to the list: each bump adds one)
    assert "nor a shipped plan of that name (shipped: cat_cycle-2-3, cat_cycle-3-4, " in (
        unknown.output
    )
    assert "complaint-3-4" in unknown.output


def at(day: int) -> datetime:
    return datetime(2026, 2, day, 9, 0, tzinfo=UTC)
