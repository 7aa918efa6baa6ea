"""An instance is born in its initial state, so that state's on_enter actions run at start:
for a start by hand and for a child a transition opens, in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opcatflow.engine import Engine, FrozenClock, Registry, RuleContext, TransitionRefused

DEFINITIONS = {
    "intake.yaml": """
id: intake
version: 1
title: Intake that stamps itself
roles: {officer: Handles cases}
fields:
  place: {type: string, required: true}
  opened_on: {type: date}
  opened_by: {type: string}
  entries: {type: integer}
states:
  received: {initial: true, on_enter: [stamp_opened, count_entry]}
  sent: {}
  closed: {final: true}
transitions:
  - trigger: refer
    source: received
    dest: sent
    roles: [officer]
    opens:
      - workflow: referral
        data: {place: place}
  - trigger: refer_fragile
    source: received
    dest: sent
    roles: [officer]
    opens:
      - workflow: fragile
        data: {place: place}
  - trigger: reopen
    source: sent
    dest: received
    roles: [officer]
  - trigger: close
    source: [received, sent]
    dest: closed
    roles: [officer]
""",
    "referral.yaml": """
id: referral
version: 1
title: A referral stamped when opened
roles: {officer: Handles cases}
start: {writes: [place]}
fields:
  place: {type: string}
  opened_on: {type: date}
  opened_by: {type: string}
states:
  open: {initial: true, on_enter: [stamp_opened]}
  done: {final: true}
transitions:
  - {trigger: finish, source: open, dest: done, roles: [officer]}
""",
    "fragile.yaml": """
id: fragile
version: 1
title: A workflow whose first action fails
roles: {officer: Handles cases}
start: {writes: [place]}
fields:
  place: {type: string}
states:
  open: {initial: true, on_enter: [explode]}
  done: {final: true}
transitions:
  - {trigger: finish, source: open, dest: done, roles: [officer]}
""",
}


def registry() -> Registry:
    reg = Registry()

    @reg.action("stamp_opened", writes=["opened_on", "opened_by"])
    def stamp_opened(ctx: RuleContext) -> None:
        ctx.data["opened_on"] = ctx.now.date().isoformat()
        ctx.data["opened_by"] = ctx.actor

    @reg.action("count_entry", writes=["entries"])
    def count_entry(ctx: RuleContext) -> None:
        ctx.data["entries"] = (ctx.data.get("entries") or 0) + 1

    @reg.action("explode")
    def explode(ctx: RuleContext) -> None:
        raise ValueError("no register of receiving bodies configured")

    return reg


@pytest.fixture
def eng(tmp_path: Path, db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    for name, text in DEFINITIONS.items():
        (tmp_path / name).write_text(text)
    with Engine.open(db_url, [tmp_path], registry(), clock=clock) as engine:
        yield engine


def test_a_start_runs_the_initial_states_on_enter_actions_and_audits_what_they_set(
    eng: Engine, clock: FrozenClock
) -> None:
    started = eng.start("intake", actor="olga", role="officer", data={"place": "Prison B"})
    assert (started.data["opened_on"], started.data["opened_by"]) == (
        clock.now().date().isoformat(),
        "olga",
    )
    [record] = eng.history(started.id)
    assert json.loads(record.changes)["opened_by"] == [None, "olga"]
    assert eng.verify_audit().breaks == []


def test_re_entering_the_initial_state_runs_them_again_and_leaving_it_does_not(
    eng: Engine,
) -> None:
    started = eng.start("intake", actor="olga", role="officer", data={"place": "Prison B"})
    assert started.data["entries"] == 1
    eng.fire(started.id, "close", actor="olga", role="officer")
    fresh = eng.start("intake", actor="olga", role="officer", data={"place": "Cell 4"})
    eng.fire(fresh.id, "refer", actor="olga", role="officer")
    assert eng.get(fresh.id).data["entries"] == 1
    assert eng.fire(fresh.id, "reopen", actor="rui", role="officer").data["entries"] == 2


def test_a_child_opened_by_a_transition_runs_its_initial_actions_as_the_parents_actor(
    eng: Engine, clock: FrozenClock
) -> None:
    parent = eng.start("intake", actor="olga", role="officer", data={"place": "Prison B"}).id
    eng.fire(parent, "refer", actor="rui", role="officer")
    [child] = eng.children(parent)
    assert (child.workflow_id, child.data["opened_by"], child.data["opened_on"]) == (
        "referral",
        "rui",
        clock.now().date().isoformat(),
    )


def test_a_failing_initial_action_refuses_the_start_and_stores_nothing(eng: Engine) -> None:
    with pytest.raises(TransitionRefused) as refused:
        eng.start("fragile", actor="olga", role="officer", data={"place": "Prison B"})
    assert (refused.value.kind, refused.value.reason) == (
        "action",
        "action failed: ValueError('no register of receiving bodies configured')",
    )
    assert eng.query(workflow="fragile") == []


def test_a_child_whose_initial_action_fails_refuses_the_parents_transition(eng: Engine) -> None:
    parent = eng.start("intake", actor="olga", role="officer", data={"place": "Prison B"}).id
    with pytest.raises(TransitionRefused) as refused:
        eng.fire(parent, "refer_fragile", actor="olga", role="officer")
    assert refused.value.kind == "action"
    assert "cannot open 'fragile'" in refused.value.reason
    assert (eng.get(parent).state, eng.children(parent)) == ("received", [])
    assert eng.history(parent)[-1].outcome == "refused"
