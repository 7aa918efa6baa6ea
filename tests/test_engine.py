"""The runtime as an embedding system uses it, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import registerkit
import sqlalchemy as sa
from conftest import COMPLAINT
from helpers import EXAMPLE_DIR, make_registry

from opcatflow.engine import (
    DefinitionError,
    Engine,
    FrozenClock,
    InstanceNotFound,
    InvalidData,
    SchemaMismatch,
    StoreError,
    TransitionRefused,
    WorkflowNotFound,
)
from opcatflow.engine.sql.tables import SCHEMA_REVISION


@pytest.fixture
def example(db_url: str, clock: FrozenClock) -> Engine:
    eng = Engine.open(db_url, [EXAMPLE_DIR], make_registry(), clock=clock)
    yield eng
    eng.close()


def start(eng: Engine, **data: object) -> str:
    return eng.start("example", actor="cleo", role="clerk", data={"title": "T", **data}).id


def test_start_puts_the_instance_in_its_initial_state(example: Engine, clock: FrozenClock) -> None:
    instance = example.start("example", actor="cleo", role="clerk", data={"title": "Cell 4"})
    assert (instance.state, instance.version, dict(instance.data)) == (
        "draft",
        1,
        {"title": "Cell 4"},
    )
    assert example.get(instance.id) == instance
    # the start, then the obligations it started (each change of one is a record too)
    record, *obligations = example.history(instance.id)
    assert {r.outcome for r in obligations} <= {"pending"}
    assert (record.trigger, record.outcome, record.to_state, record.at) == (
        "start",
        "started",
        "draft",
        clock.now(),
    )


def test_start_with_invalid_data_stores_nothing(example: Engine) -> None:
    with pytest.raises(InvalidData) as caught:
        example.start("example", actor="cleo", role="clerk", data={"score": "high", "colour": 1})
    assert caught.value.errors == (
        "score: expected an integer",
        "unknown field 'colour'",
        "title: required",
    )
    assert example.query(workflow="example") == []


def test_start_by_a_role_not_allowed_is_refused(engine: Engine) -> None:
    with pytest.raises(TransitionRefused) as caught:
        engine.start("complaint", actor="x", role="visitor", data=COMPLAINT)
    assert caught.value.kind == "role"


def test_unknown_workflow_suggests_the_closest(engine: Engine) -> None:
    with pytest.raises(WorkflowNotFound, match="did you mean 'complaint'"):
        engine.start("complain", actor="x", role="intake")


def test_fire_moves_the_instance_and_merges_data(example: Engine, clock: FrozenClock) -> None:
    instance_id = start(example)
    clock.advance(timedelta(hours=1))
    after = example.fire(instance_id, "submit", actor="cleo", role="clerk", data={"score": 7})
    assert (after.state, after.version, after.data["score"]) == ("review", 2, 7)
    assert after.state_entered_at == clock.now()
    assert example.get(instance_id) == after


def test_internal_transition_changes_data_but_not_state(
    example: Engine, clock: FrozenClock
) -> None:
    instance_id = start(example)
    clock.advance(timedelta(days=1))
    after = example.fire(instance_id, "edit", actor="cleo", role="clerk", data={"urgent": True})
    assert (after.state, after.version, after.data["urgent"]) == ("draft", 2, True)
    assert after.state_entered_at < clock.now()


def test_guarded_alternatives_take_the_first_that_passes(example: Engine) -> None:
    low, high = start(example, score=2), start(example, score=9)
    for instance_id in (low, high):
        example.fire(instance_id, "submit", actor="cleo", role="clerk")
        example.fire(instance_id, "approve", actor="rui", role="reviewer")
    assert (example.get(low).state, example.get(high).state) == ("rejected", "approved")


def test_on_enter_action_changes_data(example: Engine) -> None:
    instance_id = start(example, score=5, approved_by="someone")
    after = example.fire(instance_id, "submit", actor="cleo", role="clerk")
    assert "approved_by" not in after.data


@pytest.mark.parametrize(
    ("trigger", "role", "data", "kind", "reason"),
    [
        ("sbmit", "clerk", {}, "trigger", "unknown trigger 'sbmit' (did you mean 'submit'?)"),
        ("approve", "reviewer", {}, "state", "'approve' cannot be fired in state 'draft' (possible: submit, edit, reject)"),
        ("submit", "reviewer", {}, "role", "role 'reviewer' may not fire 'submit' (allowed: clerk)"),
        ("submit", "clerk", {"score": "7"}, "data", "score: expected an integer"),
        ("submit", "clerk", {"colour": "red"}, "data", "unknown field 'colour'"),
        ("submit", "clerk", {}, "data", "missing required field(s): score"),
    ],
)  # fmt: skip
def test_refusals_name_their_reason_and_are_audited(
    example: Engine, trigger: str, role: str, data: dict[str, object], kind: str, reason: str
) -> None:
    instance_id = start(example)
    with pytest.raises(TransitionRefused) as caught:
        example.fire(instance_id, trigger, actor="cleo", role=role, data=data)
    assert (caught.value.kind, caught.value.reason) == (kind, reason)
    instance = example.get(instance_id)
    assert (instance.state, instance.version) == ("draft", 1)
    last = example.history(instance_id)[-1]
    assert (last.outcome, last.trigger, last.reason, last.role) == (
        "refused",
        trigger,
        reason,
        role,
    )


def test_guard_refusal_carries_the_rule_reason(example: Engine, clock: FrozenClock) -> None:
    clock.set(datetime(2026, 3, 6, 10, tzinfo=UTC))  # a Friday
    instance_id = start(example, score=9)
    example.fire(instance_id, "submit", actor="cleo", role="clerk")
    # the guarded option fails on the guard, the fallback applies: nothing approved on Fridays
    assert example.fire(instance_id, "approve", actor="rui", role="reviewer").state == "rejected"


def test_a_guard_that_raises_is_a_refusal_not_a_crash(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    text = (EXAMPLE_DIR / "example.yaml").read_text().replace("[not_friday]", "[explodes]")
    text = text.replace(
        "    dest: rejected\n    roles: [reviewer]\n  - trigger: send_back",
        "    dest: rejected\n    roles: [clerk]\n  - trigger: send_back",
    )
    (tmp_path / "wf.yaml").write_text(text)
    with Engine.open(db_url, [tmp_path], make_registry(), clock=clock) as eng:
        instance_id = start(eng, score=9)
        eng.fire(instance_id, "submit", actor="cleo", role="clerk")
        with pytest.raises(TransitionRefused) as caught:
            eng.fire(instance_id, "approve", actor="rui", role="reviewer")
    assert caught.value.kind == "guard"
    assert caught.value.reason == "explodes failed: RuntimeError('rule bug')"


def test_expression_guard_reads_instance_data(engine: Engine) -> None:
    reprisal = engine.start(
        "reprisal",
        actor="bo",
        role="head",
        data={"origin": "npm_visit", "reported_on": "2026-03-01"},
    ).id
    engine.fire(reprisal, "notify_focal_point", actor="bo", role="head")
    with pytest.raises(TransitionRefused) as caught:
        engine.fire(reprisal, "close", actor="bo", role="head", data={"outcome": "-"})
    assert caught.value.reason == "condition 'risk_level' is not met"


def test_matching_expected_version_applies(example: Engine) -> None:
    instance_id = start(example, score=3)
    assert (
        example.fire(instance_id, "submit", actor="c", role="clerk", expected_version=1).version
        == 2
    )


def test_unknown_instance(example: Engine) -> None:
    with pytest.raises(InstanceNotFound):
        example.fire("nope", "submit", actor="c", role="clerk")
    with pytest.raises(InstanceNotFound):
        example.history("nope")


def test_personal_values_never_reach_the_audit_trail(engine: Engine) -> None:
    registerkit.seed(engine)
    instance = engine.start("complaint", actor="ana", role="intake", data=COMPLAINT)
    engine.fire(
        instance.id,
        "record",
        actor="bo",
        role="intake",
        data={
            "complaint_type": "other",
            "institution": registerkit.PLACE,
            "theme": registerkit.THEME,
            "persons": [{"ref": "P2", "name": "Rui Costa"}],
        },
    )
    out = io.StringIO()
    engine.export_audit(out)
    exported = out.getvalue()
    for secret in ("Ana Pereira", "Rui Costa", "cell 14"):
        assert secret not in exported
    changes = [
        json.loads(line)["changes"]
        for line in exported.splitlines()
        if json.loads(line)["outcome"] in ("started", "applied")
        and json.loads(line)["instance_id"] == instance.id
    ]
    assert changes[1]["persons"]["P2"]["name"][1].startswith("hmac-sha256:")
    assert changes[0]["received_on"] == [None, "2026-03-01"]  # non-personal values stay readable


def test_available_triggers_say_what_blocks_them(engine: Engine) -> None:
    instance_id = engine.start("complaint", actor="ana", role="intake", data=COMPLAINT).id
    options = {o.trigger: o for o in engine.available_triggers(instance_id, "intake")}
    assert sorted(options) == ["acknowledge", "record"]
    assert options["acknowledge"].ready
    assert (
        options["record"].blocked_by
        == "missing required field(s): complaint_type, institution, theme"
    )


def test_children_are_linked_both_ways(engine: Engine) -> None:
    parent = engine.start("complaint", actor="ana", role="intake", data=COMPLAINT)
    child = engine.start(
        "complaint", actor="ana", role="intake", data=COMPLAINT, parent_id=parent.id
    )
    assert engine.get(child.id).parent_id == parent.id
    assert [c.id for c in engine.children(parent.id)] == [child.id]
    with pytest.raises(InstanceNotFound):
        engine.start("complaint", actor="ana", role="intake", data=COMPLAINT, parent_id="missing")


def test_query_by_workflow_state_and_field_with_pagination(
    example: Engine, clock: FrozenClock
) -> None:
    ids = []
    for score in range(5):
        clock.advance(timedelta(seconds=1))
        ids.append(start(example, score=score, urgent=score % 2 == 0))
    example.fire(ids[0], "submit", actor="c", role="clerk")
    assert [i.id for i in example.query(state="review")] == [ids[0]]
    assert [i.id for i in example.query(where={"score": 3})] == [ids[3]]
    assert [i.id for i in example.query(where={"urgent": True})] == [ids[0], ids[2], ids[4]]
    assert [i.id for i in example.query(where={"title": "T"}, limit=2)] == ids[:2]
    first_page = example.query(workflow="example", limit=3)
    assert [i.id for i in example.query(workflow="example", after=first_page[-1])] == ids[3:]


def test_instances_stay_on_the_version_they_started_with(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    v1 = (EXAMPLE_DIR / "example.yaml").read_text()
    (tmp_path / "example.yaml").write_text(v1)
    with Engine.open(db_url, [tmp_path], make_registry(), clock=clock) as eng:
        old = start(eng, score=3)
    v2 = v1.replace("version: 1", "version: 2").replace(
        "requires: [score]", "requires: [score, due_on]"
    )
    (tmp_path / "example.yaml").write_text(v2)
    with Engine.open(db_url, [tmp_path], make_registry(), clock=clock) as eng:
        new = start(eng, score=3)
        assert eng.fire(old, "submit", actor="c", role="clerk").state == "review"
        with pytest.raises(TransitionRefused, match="due_on"):
            eng.fire(new, "submit", actor="c", role="clerk")
        assert (eng.get(old).workflow_version, eng.get(new).workflow_version) == (1, 2)


def test_changed_definition_under_a_stored_version_is_refused(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    text = (EXAMPLE_DIR / "example.yaml").read_text()
    (tmp_path / "example.yaml").write_text(text)
    Engine.open(db_url, [tmp_path], make_registry(), clock=clock).close()
    (tmp_path / "example.yaml").write_text(text.replace("title: Example case", "title: Edited"))
    with pytest.raises(DefinitionError, match="already stored with different content"):
        Engine.open(db_url, [tmp_path], make_registry(), clock=clock)


def test_audit_table_is_append_only(example: Engine) -> None:
    start(example)
    with pytest.raises(StoreError, match="append-only"), example.store.connect(write=True) as conn:
        conn.execute(sa.text("UPDATE audit SET actor = 'mallory'"))
    with pytest.raises(StoreError, match="append-only"), example.store.connect(write=True) as conn:
        conn.execute(sa.text("DELETE FROM audit"))


def tamper(eng: Engine, statement: str) -> None:
    """What an attacker with database rights can do: drop the guard, then edit."""
    with eng.store.connect(write=True) as conn:
        if eng.store.dialect == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit DISABLE TRIGGER audit_append_only"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_append_only_update"))
            conn.execute(sa.text("DROP TRIGGER audit_append_only_delete"))
        conn.execute(sa.text(statement))


def test_verify_names_a_tampered_record(example: Engine) -> None:
    ids = [start(example, score=i) for i in range(3)]
    for instance_id in ids:
        example.fire(instance_id, "submit", actor="c", role="clerk")
    assert example.verify_audit().ok
    target = example.history(ids[1])[1]
    tamper(example, f"UPDATE audit SET actor = 'mallory' WHERE id = {target.id}")
    report = example.verify_audit()
    assert not report.ok
    assert report.first_break is not None
    assert (report.first_break.id, report.first_break.seq) == (target.id, 2)
    assert "altered" in report.first_break.problem


def test_verify_notices_a_removed_last_record(example: Engine) -> None:
    instance_id = start(example, score=1)
    example.fire(instance_id, "submit", actor="c", role="clerk")
    last = example.history(instance_id)[-1]
    tamper(example, f"DELETE FROM audit WHERE id = {last.id}")
    report = example.verify_audit()
    assert report.first_break is not None
    assert "shorter" in report.first_break.problem


def test_schema_mismatch_names_both_revisions(db_url: str, clock: FrozenClock) -> None:
    eng = Engine.open(db_url, [EXAMPLE_DIR], make_registry(), clock=clock)
    with eng.store.connect(write=True) as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    eng.close()
    with pytest.raises(SchemaMismatch) as caught:
        Engine.open(db_url, [EXAMPLE_DIR], make_registry(), clock=clock)
    assert (caught.value.found, caught.value.expected) == ("9999", SCHEMA_REVISION)
    assert "9999" in str(caught.value)
    assert SCHEMA_REVISION in str(caught.value)


def test_read_only_engine_opens_despite_a_changed_definition_and_start_names_the_conflict(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    text = (EXAMPLE_DIR / "example.yaml").read_text()
    (tmp_path / "example.yaml").write_text(text)
    with Engine.open(db_url, [tmp_path], make_registry(), clock=clock) as eng:
        instance_id = start(eng)
    (tmp_path / "example.yaml").write_text(
        text.replace("title: Example case", "title: Edited").replace(
            "requires: [score]", "requires: [due_on]"
        )
    )
    with Engine.open(db_url, [tmp_path], make_registry(), clock=clock, register=False) as eng:
        assert eng.get(instance_id).state == "draft"
        with pytest.raises(DefinitionError, match="already stored with different content"):
            start(eng)
        # the running instance keeps the rules stored for its version, not the edited file
        with pytest.raises(TransitionRefused, match="missing required field\\(s\\): score"):
            eng.fire(instance_id, "submit", actor="c", role="clerk")
