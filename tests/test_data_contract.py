"""The data contract through Engine, on both backends: write sets, field rules, owners, the
read rule, action writes. Each refusal has its kind and text, is audited (without the value)
and leaves the instance as it was."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opcatflow.engine import Engine, FrozenClock, Registry, RuleContext, TransitionRefused
from opcatflow.engine.audit import REFUSED

CONTRACT = Path(__file__).parent / "definitions" / "contract"


def contract_registry() -> Registry:
    registry = Registry()

    @registry.action("count_edits", writes=["edits"])
    def count_edits(ctx: RuleContext) -> None:
        ctx.data["edits"] = (ctx.data.get("edits") or 0) + 1

    @registry.action("stamp_decider", writes=["decided_by"])
    def stamp_decider(ctx: RuleContext) -> None:
        ctx.data["decided_by"] = ctx.actor

    @registry.action("sneaky", writes=["comment"])
    def sneaky(ctx: RuleContext) -> None:
        ctx.data["summary"] = "rewritten"  # not among its declared writes

    return registry


@pytest.fixture
def eng(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    with Engine.open(db_url, [CONTRACT], contract_registry(), clock=clock) as engine:
        yield engine


def dossier(eng: Engine, **data: Any) -> str:
    fields = {"title": "Cell 4", "assignee": "eve", "persons_at_risk": ["Ana"], **data}
    return eng.start("dossier", actor="carl", role="clerk", data=fields).id


def refused(
    eng: Engine, instance_id: str, trigger: str, *, actor: str, role: str, **data: Any
) -> TransitionRefused:
    """Fire and expect a refusal that is audited and leaves the instance as it was."""
    before = eng.get(instance_id)
    with pytest.raises(TransitionRefused) as caught:
        eng.fire(instance_id, trigger, actor=actor, role=role, data=data)
    after = eng.get(instance_id)
    assert (after.version, after.data) == (before.version, before.data)
    last = eng.history(instance_id)[-1]
    assert (last.outcome, last.trigger, last.actor, last.reason) == (
        REFUSED,
        trigger,
        actor,
        caught.value.reason,
    )
    return caught.value


def test_a_field_outside_the_transitions_writes_is_refused_naming_who_may_write_it(
    eng: Engine,
) -> None:
    case = dossier(eng)
    err = refused(eng, case, "decide", actor="hana", role="head", decision="accept", comment="c")
    assert (err.kind, err.reason) == (
        "data",
        "'decide' does not write comment (may be written by: edit (clerk, expert, auditor), "
        "touch (clerk))",
    )


def test_a_transition_without_writes_writes_only_its_requires(eng: Engine) -> None:
    case = dossier(eng)
    err = refused(eng, case, "decide", actor="hana", role="head", decision="accept", title="X")
    assert (err.kind, err.reason) == (
        "data",
        "'decide' does not write title (no transition writes it)",
    )
    eng.fire(case, "decide", actor="hana", role="head", data={"decision": "accept"})
    assert eng.get(case).data["decided_by"] == "hana"


def test_start_data_outside_the_start_write_set_is_refused(eng: Engine) -> None:
    with pytest.raises(TransitionRefused) as caught:
        eng.start("dossier", actor="carl", role="clerk", data={"title": "T", "summary": "S"})
    assert (caught.value.kind, caught.value.trigger, caught.value.reason) == (
        "data",
        "start",
        "'start' does not write summary (may be written by: edit (clerk, expert, auditor))",
    )
    assert eng.query(workflow="dossier") == []


def test_a_field_whose_write_roles_omit_the_role_is_refused(eng: Engine) -> None:
    case = dossier(eng)
    err = refused(eng, case, "decide", actor="carl", role="clerk", decision="accept")
    assert (err.kind, err.reason) == (
        "data",
        "role 'clerk' may not write decision (only head may write it)",
    )


def test_a_caller_may_not_write_a_field_it_may_not_read_and_the_guess_is_not_audited(
    eng: Engine,
) -> None:
    case = dossier(eng)
    err = refused(eng, case, "edit", actor="ivo", role="auditor", persons_at_risk=["Guessed Name"])
    assert (err.kind, err.reason) == (
        "data",
        "role 'auditor' may not write persons_at_risk (it may not read it)",
    )
    exported = io.StringIO()
    eng.export_audit(exported, case)
    assert "Guessed Name" not in exported.getvalue()
    assert eng.get(case).data["persons_at_risk"] == ["Ana"]


def test_an_owner_role_acts_only_on_its_own_instances(eng: Engine) -> None:
    theirs = dossier(eng, assignee="bob")
    err = refused(eng, theirs, "edit", actor="eve", role="expert", comment="mine now")
    assert (err.kind, err.reason) == (
        "role",
        "role 'expert' acts only on instances it owns (field 'assignee'), and this one is "
        "not its own",
    )
    mine = dossier(eng, assignee="eve")
    assert eng.fire(mine, "edit", actor="eve", role="expert", data={"comment": "ok"}).version == 2


def test_an_owner_role_is_offered_no_trigger_on_an_instance_it_does_not_own(eng: Engine) -> None:
    theirs = dossier(eng, assignee="bob")
    assert eng.available_triggers(theirs, "expert", actor="eve") == []
    offered = [o.trigger for o in eng.available_triggers(theirs, "expert", actor="bob")]
    assert offered == ["edit", "reassign"]


def test_the_owner_field_is_written_only_by_roles_that_are_not_owners(eng: Engine) -> None:
    mine = dossier(eng, assignee="eve")
    err = refused(eng, mine, "reassign", actor="eve", role="expert", assignee="mallory")
    assert (err.kind, err.reason) == (
        "data",
        "role 'expert' may not write assignee (it names the instance's owner: only auditor, "
        "clerk, head may write it)",
    )
    eng.fire(mine, "reassign", actor="carl", role="clerk", data={"assignee": "bob"})
    assert eng.get(mine).data["assignee"] == "bob"


def test_an_action_that_writes_outside_its_declared_writes_fails(eng: Engine) -> None:
    case = dossier(eng)
    err = refused(eng, case, "touch", actor="carl", role="clerk", comment="c")
    assert (err.kind, err.reason) == (
        "action",
        "action 'sneaky' changed summary, outside the writes it declares in the registry (comment)",
    )


def test_actions_writing_their_declared_fields_are_system_writes(eng: Engine) -> None:
    case = dossier(eng)
    eng.fire(case, "edit", actor="carl", role="clerk", data={"summary": "s"})
    assert eng.get(case).data["edits"] == 1


def test_an_opening_writes_the_fields_it_declares_into_the_child(eng: Engine) -> None:
    case = dossier(eng)
    eng.fire(case, "decide", actor="hana", role="head", data={"decision": "accept"})
    eng.fire(case, "close", actor="hana", role="head")
    [child] = eng.children(case)
    assert child.data == {"subject": "Cell 4", "dossier_title": "Cell 4"}
    with pytest.raises(TransitionRefused) as caught:
        eng.start("followup", actor="carl", role="clerk", data={"dossier_title": "forged"})
    assert caught.value.reason == "'start' does not write dossier_title (no transition writes it)"


LEGACY = """
id: memo
version: {version}
title: Memo
roles: {{clerk: Writes memos}}{start}
fields:
  title: {{type: string, required: true}}
  body: {{type: text}}
  secret: {{type: text}}
states:
  open: {{initial: true}}
  done: {{final: true}}
transitions:
  - trigger: edit
    source: open
    roles: [clerk]{writes}
  - trigger: seal
    source: open
    roles: [clerk]
    requires: [secret]
  - trigger: finish
    source: open
    dest: done
    roles: [clerk]
    requires: [body]
"""

# A definition file written before write sets existed: it declares ``writes`` nowhere.
PLAIN_MEMO = LEGACY.format(version=1, start="", writes="")


def test_a_file_that_declares_no_writes_lets_a_transition_write_only_its_requires(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    (tmp_path / "memo.yaml").write_text(PLAIN_MEMO)
    hint = (
        ": this definition declares 'writes' nowhere, so a transition writes only its "
        "'requires' (a start: its 'requires' and required fields); declare what each may "
        "write, see docs/data-contract.md"
    )
    with Engine.open(db_url, [tmp_path], Registry(), clock=clock) as engine:
        with pytest.raises(TransitionRefused) as caught:
            engine.start("memo", actor="a", role="clerk", data={"title": "T", "secret": "s"})
        assert (caught.value.kind, caught.value.reason) == (
            "data",
            "'start' does not write secret (may be written by: seal (clerk))" + hint,
        )
        memo = engine.start("memo", actor="a", role="clerk", data={"title": "T"}).id
        err = refused(engine, memo, "edit", actor="a", role="clerk", body="b", secret="s")
        assert (err.kind, err.reason) == (
            "data",
            "'edit' does not write body (may be written by: finish (clerk)); "
            "secret (may be written by: seal (clerk))" + hint,
        )
        engine.fire(memo, "finish", actor="a", role="clerk", data={"body": "b"})
        assert (engine.get(memo).state, engine.get(memo).data) == (
            "done",
            {"title": "T", "body": "b"},
        )


def test_instances_on_a_stored_version_without_writes_keep_the_any_field_rule(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    folder = tmp_path / "wf"
    folder.mkdir()
    memo = folder / "memo.yaml"
    memo.write_text(LEGACY.format(version=1, start="", writes=""))
    with Engine.open(db_url, [folder], Registry(), clock=clock) as engine:
        old = engine.start("memo", actor="a", role="clerk", data={"title": "T"}).id
    v2 = LEGACY.format(
        version=2, start="\nstart: {writes: [secret]}", writes="\n    writes: [body]"
    )
    memo.write_text(v2)
    with Engine.open(db_url, [folder], Registry(), clock=clock) as engine:
        pinned = engine.workflow("memo", 1)
        assert (pinned.compat, pinned.checks_writes) == (True, False)
        engine.fire(old, "edit", actor="a", role="clerk", data={"secret": "s"})
        assert engine.get(old).data["secret"] == "s"
        new = engine.start("memo", actor="a", role="clerk", data={"title": "T"}).id
        err = refused(engine, new, "edit", actor="a", role="clerk", secret="s")
        assert (err.kind, err.reason) == (
            "data",
            "'edit' does not write secret (may be written by: seal (clerk))",
        )


def test_the_read_rule_is_one_engine_function(eng: Engine) -> None:
    wf = eng.workflow("dossier")
    assert wf.withheld_fields(["auditor"]) == {"persons_at_risk"}
    assert wf.withheld_fields(["auditor", "clerk"]) == frozenset()
    assert wf.readable_fields(["auditor"]) == set(wf.definition.fields) - {"persons_at_risk"}
