"""The report projection (``report_facts``): written in the unit of work of every write of
an instance, on every store; only non-personal plain values, which ``validate`` enforces on
the definitions; rebuilt on demand and after migration 0012."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from reportkit import CLERK, PERSONAL, REPORTS, report_engine, report_registry
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock, Registry, TransitionRefused
from opcatflow.engine.crypto.providers import KeyFile
from opcatflow.engine.errors import DefinitionError, KeyUnavailable
from opcatflow.engine.loader import load_catalog
from opcatflow.engine.ports import Store, UnitOfWork
from opcatflow.engine.rows import Fact
from opcatflow.engine.sql import SQLAlchemyStore
from opcatflow.engine.sql.schemalock import MIGRATIONS
from opcatflow.workflows import BUNDLED, registry
from opcatflow.workflows.reporting import service

Facts = dict[tuple[str, str], str]


def facts(engine: Engine, workflow: str, instance_id: str) -> Facts:
    fields = {"@state", "sent_on", "places", "addressee", "assessments.on", "assessments.status",
              "assessments.by", "text", "source", "themes"}  # fmt: skip
    with engine.store.read() as uow:
        return {
            (field, entry): value
            for found, field, entry, value in uow.reports.facts(workflow, fields)
            if found == instance_id
        }


@pytest.fixture
def eng(store: Store, clock: FrozenClock) -> Iterator[Engine]:
    with report_engine(store, clock) as engine:
        engine.start("authority", data={"name": "Ministry"}, instance_id="a-min", **CLERK)
        engine.start("place", data={"name": "Prison"}, instance_id="p-1", **CLERK)
        yield engine


def test_every_write_replaces_the_rows_in_its_own_transaction(eng: Engine) -> None:
    rec = eng.start("recommendation", data={
        "source": "cat", "addressee": "a-min", "places": ["p-1"], "sent_on": "2026-03-02",
        "text": "Ana Reyes must be moved",
        "assessments": [{"n": 1, "on": "2026-04-01", "status": "in_progress", "by": "Ana Reyes"}],
    }, **CLERK).id  # fmt: skip
    assert facts(eng, "recommendation", rec) == {
        ("@state", ""): "issued",
        ("source", ""): "cat",
        ("addressee", ""): "a-min",
        ("places", "0"): "p-1",
        ("sent_on", ""): "2026-03-02",
        ("assessments.on", "1"): "2026-04-01",
        ("assessments.status", "1"): "in_progress",
    }  # free text and the personal sub-field 'by' are never projected
    eng.fire(rec, "assess", data={"assessments": {"append": [
        {"on": "2026-05-01", "status": "implemented"}]}}, **CLERK)  # fmt: skip
    assert facts(eng, "recommendation", rec)[("assessments.status", "2")] == "implemented"
    before = facts(eng, "recommendation", rec)
    with pytest.raises(TransitionRefused):  # a write that is refused changes nothing
        eng.fire(rec, "assess", data={"places": ["p-2"]}, **CLERK)
    assert facts(eng, "recommendation", rec) == before

    def fail(*_: object) -> None:
        raise RuntimeError("the caller's part of the transaction failed")

    with pytest.raises(RuntimeError):  # rolled back: neither the instance nor its rows
        eng.fire(rec, "close", also=fail, **CLERK)
    assert facts(eng, "recommendation", rec) == before
    eng.fire(rec, "close", **CLERK)
    assert facts(eng, "recommendation", rec)[("@state", "")] == "closed"


def test_no_personal_value_is_ever_projected(eng: Engine) -> None:
    eng.start("visit", data={"place": "p-1", "kind": "regular", "ended_on": "2026-03-02",
                             "debrief_notes": PERSONAL[1]}, **CLERK)  # fmt: skip
    eng.start("complaint", data={"received_on": "2026-03-02", "summary": PERSONAL[2]}, **CLERK)
    eng.start("reprisal", data={"origin": "complaint", "allegations": [
        {"n": 1, "received_at": "2026-03-02T10:00:00+00:00", "source": "staff",
         "text": PERSONAL[3]}]}, **CLERK)  # fmt: skip
    with eng.store.read() as uow:
        values = [
            value
            for workflow in ("visit", "complaint", "reprisal", "place")
            for *_, value in uow.reports.facts(workflow, {"debrief_notes", "summary",
                                                          "allegations.text", "name", "place"})
        ]  # fmt: skip
    assert "p-1" in values
    assert not any(p in v for v in values for p in PERSONAL)


def test_a_rebuild_gives_the_same_rows(eng: Engine) -> None:
    rec = eng.start("recommendation", data={"source": "cat", "places": ["p-1"]}, **CLERK).id
    before = facts(eng, "recommendation", rec)
    with eng.store.write() as uow:
        uow.reports.clear()
        uow.reports.set_digest("an older release's projections")
    assert not eng.projection_current()
    assert facts(eng, "recommendation", rec) == {}
    assert eng.ensure_projection() == 3  # two register entries and the recommendation
    assert eng.projection_current()
    assert eng.ensure_projection() is None  # current: nothing to do
    assert facts(eng, "recommendation", rec) == before


WHY = "the report projection reads it, and reports group on non-personal values only"
PERSONAL_THEME = """
id: complaint
version: 1
title: Complaints
roles: {clerk: Handles complaints}
start:
  writes: [theme, region, notes]
fields:
  theme: {type: string, personal: true}
  region: {type: string, confidential: true}
  notes:
    type: records
    key: n
    item:
      n: {type: integer}
      source: {type: enum, values: [a, b], personal: true}
      body: {type: text}
personal_visible_to: [clerk]
states:
  received: {initial: true}
  closed: {final: true}
transitions:
  - {trigger: close, source: received, dest: closed, roles: [clerk]}
"""


def test_validate_refuses_a_definition_that_makes_a_projected_field_personal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "complaint.yaml"
    path.write_text(PERSONAL_THEME, encoding="utf-8")
    projecting = Registry()
    projecting.project(
        "complaint", fields=["theme", "region"], records={"notes": ["source", "body"]}
    )
    with pytest.raises(DefinitionError) as caught:
        load_catalog([path], projecting)
    problems = [str(p) for p in caught.value.problems]
    assert problems == [
        f"{path}:9:10: field 'theme' is personal: {WHY}",
        f"{path}:10:11: field 'region' is confidential: {WHY}",
        f"{path}:16:15: sub-field notes.source is personal: {WHY}",
        f"{path}:17:13: sub-field notes.body is text: {WHY} (plain values)",
    ]
    load_catalog([path], Registry())  # nothing projected: nothing refused


def test_the_bundled_workflows_validate_against_the_bundled_projections() -> None:
    load_catalog([BUNDLED], registry)  # raises on any problem
    assert set(registry.projections) >= {"recommendation", "visit", "complaint", "referral"}


def test_migration_0012_leaves_the_projection_to_the_first_engine(db_url: str) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    store = SQLAlchemyStore(db_url)
    store.ensure_schema()
    with report_engine(store, clock) as engine:
        rec = engine.start("recommendation", data={"source": "cat", "sent_on": "2026-03-02"},
                           **CLERK).id  # fmt: skip
        before = facts(engine, "recommendation", rec)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.connect(write=True) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0011")
    with store.connect(write=True) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0012")
    with store.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM report_facts")).scalar_one() == 0
    with report_engine(store, clock) as engine:  # registers its catalogue: fills the rows
        assert facts(engine, "recommendation", rec) == before
    with store.connect(write=True) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0011")
    store.close()
    upgrade = CliRunner().invoke(
        app,
        ["--db", db_url, "--no-bundled", "--workflows", str(REPORTS), "db", "upgrade", "--json"],
    )
    assert upgrade.exit_code == 0, upgrade.output
    assert json.loads(upgrade.stdout) == {"before": "0011", "after": "0012", "report_projection": 1}
    with report_engine(SQLAlchemyStore(db_url), clock) as engine:
        assert engine.projection_current()
        assert facts(engine, "recommendation", rec) == before


def test_report_rebuild_says_how_many_instances(db_url: str) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    store = SQLAlchemyStore(db_url)
    store.ensure_schema()
    with report_engine(store, clock) as engine:
        engine.start("theme", data={"name": "Health"}, **CLERK)
    store.close()
    result = CliRunner().invoke(
        app, ["--db", db_url, "--no-bundled", "--workflows", str(REPORTS), "report", "rebuild"]
    )
    assert result.exit_code == 0, result.output
    assert "report projection rebuilt from 1 instance" in result.output
    assert report_registry().projections == registry.projections  # the CLI's are the same


def test_opcatflow_validate_names_the_projected_personal_field(tmp_path: Path) -> None:
    path = tmp_path / "complaint.yaml"
    path.write_text(PERSONAL_THEME.replace("version: 1", "version: 99"), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 6
    assert f"{path}:9:10: field 'theme' is personal: {WHY}" in result.output


def test_an_engine_opens_when_the_projection_cannot_be_built_and_the_report_says_why(
    db_url: str, tmp_path: Path
) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    store = SQLAlchemyStore(db_url)
    store.ensure_schema()
    with report_engine(store, clock, keys=KeyFile(tmp_path / "right")) as engine:
        engine.start(
            "recommendation",
            data={
                "source": "cat",
                "assessments": [
                    {"n": 1, "on": "2026-03-01", "status": "implemented", "by": "Ana Reyes"}
                ],
            },
            **CLERK,
        )  # fmt: skip  (assessments hold a personal sub-field: sealed whole)
        with engine.store.write() as uow:
            uow.reports.set_digest("an older release's projections")
    with report_engine(store, clock, keys=KeyFile(tmp_path / "wrong")) as engine:
        assert not engine.projection_current()  # opened all the same
        with pytest.raises(KeyUnavailable):
            service.recommendations(engine, ("status",))
    store.close()


def test_the_repository_rows_commit_and_roll_back_with_their_unit_of_work(store: Store) -> None:
    def rows() -> list[tuple[str, str, str, str]]:
        with store.read() as uow:
            return list(uow.reports.facts("w", {"a", "b.c"}))

    with store.write() as uow:
        uow.reports.replace("w", "i2", [Fact("a", "", "2"), Fact("b.c", "10", "x")])
        uow.reports.replace("w", "i1", [Fact("a", "", "1"), Fact("z", "", "not asked")])
        uow.reports.replace("other", "i0", [Fact("a", "", "elsewhere")])
    assert rows() == [("i1", "a", "", "1"), ("i2", "a", "", "2"), ("i2", "b.c", "10", "x")]

    def remove_then_fail(uow: UnitOfWork, instance_id: str, facts: list[Fact]) -> None:
        uow.reports.replace("w", instance_id, facts)
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError), store.write() as uow:
        remove_then_fail(uow, "i1", [])
    with store.write() as uow:
        with pytest.raises(RuntimeError), uow.savepoint():
            remove_then_fail(uow, "i2", [Fact("a", "", "changed")])  # only the savepoint
        uow.reports.set_digest("d1")
    assert rows() == [("i1", "a", "", "1"), ("i2", "a", "", "2"), ("i2", "b.c", "10", "x")]
    with store.write() as uow:
        assert uow.reports.digest() == "d1"
        uow.reports.clear()
    assert rows() == []
    with store.read() as uow:
        assert list(uow.reports.facts("other", {"a"})) == []
