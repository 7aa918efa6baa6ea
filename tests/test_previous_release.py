"""A database written by the previous release opens with this one, and its instances run on.

``tests/fixtures/previous_release.db`` was made at an earlier commit (see the README next to
it): its definitions carry fingerprints of the earlier formula (defaults included), its
instances are pinned to version 1 of the bundled workflows. On PostgreSQL the same rows are
copied into a fresh schema, so both backends start from what the old release wrote.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from opcatflow.engine import (
    DefinitionError,
    Engine,
    FrozenClock,
    Instance,
    SQLAlchemyStore,
    TransitionRefused,
    compile_text,
    load_catalog,
)
from opcatflow.engine.agenda import agenda
from opcatflow.engine.compiled import fingerprint
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.schemalock import MIGRATIONS
from opcatflow.workflows import BUNDLED, registry

FIXTURE = Path(__file__).parent / "fixtures" / "previous_release.db"
HEAD, LIAISON, INTAKE = ("r.haddad", "head"), ("j.moreau", "liaison"), ("m.okafor", "intake")
EXPERT = ("dr.osei", "expert")


def _copy_rows(url: str) -> None:
    """Copy every row of the fixture into the (empty, migrated) database at ``url``."""
    source = sa.create_engine(f"sqlite:///{FIXTURE}")
    store = SQLAlchemyStore(url)
    try:
        old = sa.MetaData()
        old.reflect(source)  # the tables as the old release made them
        with source.connect() as src:
            revision = src.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with store.connect(write=True) as conn:  # the schema as the old release made it
            config.attributes["connection"] = conn
            command.upgrade(config, str(revision))
        with source.connect() as src, store.engine.begin() as dst:
            for table in t.metadata.sorted_tables:
                if table.name not in old.tables or table.name == "alembic_version":
                    continue
                # typed as the current table, so dates and JSON come back as values
                columns = [table.c[c.name] for c in old.tables[table.name].columns]
                rows = [dict(r._mapping) for r in src.execute(sa.select(*columns))]
                if rows:
                    dst.execute(table.insert(), rows)
            for table in (t.audit, t.timers, t.outbox):
                dst.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table.name}))"
                    )
                )
        store.upgrade()  # what `opcatflow db upgrade` does after installing a new release
    finally:
        store.close()
        source.dispose()


@pytest.fixture
def old_db(db_url: str, tmp_path: Path) -> str:
    if db_url.startswith("postgresql"):
        _copy_rows(db_url)
        return db_url
    copy = tmp_path / "previous_release.db"
    shutil.copy(FIXTURE, copy)
    store = SQLAlchemyStore(str(copy))
    store.upgrade()  # what `opcatflow db upgrade` does after installing a new release
    store.close()
    return str(copy)


@pytest.fixture
def old_engine(old_db: str) -> Iterator[Engine]:
    clock = FrozenClock(datetime(2026, 3, 9, 9, 0, tzinfo=UTC))
    with Engine.open(old_db, [BUNDLED], registry, clock=clock) as eng:
        yield eng


def _one(eng: Engine, workflow: str, state: str) -> Instance:
    (found,) = eng.query(workflow=workflow, state=state)
    assert found.workflow_version == 1
    return found


def test_its_version_1_instances_fire_on_their_stored_definitions(old_engine: Engine) -> None:
    eng = old_engine
    complaint = _one(eng, "complaint", "received")
    assert (
        eng.fire(complaint.id, "acknowledge", actor=INTAKE[0], role=INTAKE[1]).state
        == "acknowledged"
    )

    expert = _one(eng, "expert", "available")
    declared = {"conflicts_of_interest": ["Northern Youth Centre", "Central Remand Prison"]}
    after = eng.fire(expert.id, "declare_conflict", actor=EXPERT[0], role=EXPERT[1], data=declared)
    assert (1, declared["conflicts_of_interest"]) == (
        after.workflow_version,
        after.data["conflicts_of_interest"],
    )

    visit = _one(eng, "visit", "factual_check")
    correction = {"correction": "The yard is 30 m2, not 20.", "correction_to": "fact"}
    after = eng.fire(
        visit.id, "record_correction", actor=LIAISON[0], role=LIAISON[1], data=correction
    )
    assert after.data["corrections"] == [
        "factual: Block C holds 40, not 60.",
        "factual: The yard is 30 m2, not 20.",
    ]
    # Version 1 names the addressee in free text; the recommendation it opens (version 4)
    # takes an authority-register id: the firing is refused whole, until the visit is
    # migrated (the visit plans convert report_addressee to an id).
    with pytest.raises(TransitionRefused) as refused:
        eng.fire(visit.id, "adopt_final_report", actor=HEAD[0], role=HEAD[1])
    assert "cannot open 'recommendation': addressee: expected an entry id" in str(refused.value)
    assert (eng.get(visit.id).state, eng.get(visit.id).workflow_version) == ("factual_check", 1)
    assert not [c for c in eng.children(visit.id) if c.workflow_id == "recommendation"]

    recommendation = _one(eng, "recommendation", "escalated")
    step = {"escalation_step": "Letter to parliament's committee"}
    after = eng.fire(recommendation.id, "escalate_further", actor=HEAD[0], role=HEAD[1], data=step)
    assert len(after.data["escalations"]) == 3
    assert eng.verify_audit().ok


def test_unchanged_definitions_get_the_current_fingerprint(old_engine: Engine, old_db: str) -> None:
    current = {(wf.id, wf.version): wf.fingerprint for wf in load_catalog([BUNDLED], registry)}
    store = SQLAlchemyStore(old_db)
    try:
        with store.connect() as conn:
            rows = conn.execute(sa.select(t.definitions)).all()
    finally:
        store.close()
    stored = {(r.workflow_id, r.version): r.fingerprint for r in rows}
    for key, value in current.items():
        if key in stored:
            assert value == stored[key], key


def test_a_version_stored_by_the_old_release_and_edited_since_is_refused(
    old_db: str, tmp_path: Path
) -> None:
    fixture = sa.create_engine(f"sqlite:///{FIXTURE}")
    d = t.definitions.c
    with fixture.connect() as conn:
        query = sa.select(d.source).where(d.workflow_id == "referral", d.version == 1)
        source = conn.execute(query).scalar_one()
    fixture.dispose()
    # Its author migrated the file to write sets (a start that writes every field) but kept
    # version 1: the content differs from the copy running instances are pinned to.
    fields = ", ".join(compile_text(source, "<stored>", registry, compat=True).definition.fields)
    start = "start:\n  roles: [caseworker, head]\n"
    assert start in source
    (tmp_path / "referral.yaml").write_text(
        source.replace(start, f"{start}  writes: [{fields}]\n", 1)
    )
    with pytest.raises(DefinitionError, match="already stored with different content"):
        Engine.open(old_db, [tmp_path / "referral.yaml"], registry)


def test_versions_no_longer_in_the_catalog_compile_in_compatibility_mode(
    old_engine: Engine,
) -> None:
    for wf in old_engine.catalog.latest():
        v1 = old_engine.workflow(wf.id, 1)
        assert (wf.version > 1) == v1.compat, wf.id
        assert fingerprint(v1.definition) == v1.fingerprint


STORED = """
id: stored
version: 1
title: A definition as a database kept it
roles: {clerk: Clerk}
fields:
  note: {type: text}
states:
  open: {initial: true}
  shut: {final: true}
transitions:
  - trigger: shut
    source: open
    dest: shut
    roles: [clerk]
    requires: [{requires}]
    guards: [{guards}]
"""


def test_compatibility_mode_tolerates_what_only_a_later_rule_refuses() -> None:
    # An unknown field in 'requires' stands in for a rule added after the copy was stored.
    text = STORED.replace("{requires}", "absent").replace("{guards}", "")
    with pytest.raises(DefinitionError, match="unknown field 'absent'"):
        compile_text(text, "stored.yaml", registry)
    wf = compile_text(text, "stored.yaml", registry, compat=True)
    assert (
        wf.compat,
        [p.message.split(" (")[0] for p in wf.compat_problems],
    ) == (True, ["unknown field 'absent'"])


def test_compatibility_mode_still_refuses_what_cannot_run() -> None:
    text = STORED.replace("{requires}", "note").replace("{guards}", "no_such_guard")
    with pytest.raises(DefinitionError, match="unknown guard 'no_such_guard'"):
        compile_text(text, "stored.yaml", registry, compat=True)


def test_a_definition_from_a_file_is_strict() -> None:
    text = STORED.replace("{requires}", "note").replace("{guards}", "")
    assert not compile_text(text, "s.yaml", registry).compat


def test_a_default_written_out_is_the_same_content() -> None:
    text = STORED.replace("{requires}", "note").replace("{guards}", "")
    explicit = text.replace("{type: text}", "{type: text, required: false, personal: false}")
    assert compile_text(text, "a.yaml", registry).fingerprint == (
        compile_text(explicit, "b.yaml", registry).fingerprint
    )


def test_its_armed_timers_become_obligations_listed_and_fired_as_such(
    old_engine: Engine, old_db: str
) -> None:
    if old_db.startswith("postgresql"):
        pytest.skip("the rows are copied into a new schema: the migration ran on SQLite")
    with old_engine.store.connect() as conn:
        o, c = t.obligations.c, t.timers.c
        owed = conn.execute(sa.select(o.deadline, o.status, o.last_day).order_by(o.id)).all()
        unlinked = conn.execute(
            sa.select(sa.func.count()).where(c.status == "pending", c.obligation_id.is_(None))
        ).scalar_one()
    # the six due timers armed by the old release, each an obligation its reminder points to
    assert sorted(d for d, _, _ in owed) == [
        "acknowledge", "factual_check", "feedback_recorded", "followup_check_escalated",
        "notify_focal_point", "publication_target_factual_check",
    ]  # fmt: skip
    assert {(s, day) for _, s, day in owed} == {("pending", None)}  # the last day: computed
    assert unlinked == 0
    listed = agenda(old_engine, now=old_engine.clock.now(), limit=100)
    assert len(listed) == 6
    assert all(e.last_day == old_engine.settings.calendar.last_day(e.due_at) for e in listed)
    clock = old_engine.clock
    assert isinstance(clock, FrozenClock)
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))  # long after every one of them
    Scheduler(old_engine).tick()
    overdue = agenda(old_engine, now=clock.now(), overdue_only=True, limit=100)
    assert {e.deadline for e in overdue} <= {d for d, _, _ in owed}
    assert all(e.status == "due" and e.overdue for e in overdue)
    assert overdue  # still owed after the tick: listed, never dropped
