"""Transitions that open child instances, and hooks that write in the same transaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import EXAMPLE_DIR

from opcatflow.engine import (
    DefinitionError,
    Engine,
    FrozenClock,
    Registry,
    SQLAlchemyStore,
    TransitionRefused,
    load_catalog,
)
from opcatflow.engine.events import DeadlineEvent, TransitionEvent
from opcatflow.engine.ports import UnitOfWork

LINKED = EXAMPLE_DIR / "linked"


@pytest.fixture
def linked(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    with Engine.open(db_url, [LINKED], Registry(), clock=clock) as eng:
        yield eng


def open_case(eng: Engine, **data: object) -> str:
    return eng.start("case", actor="olga", role="officer", data={"place": "Prison B", **data}).id


def test_a_transition_opens_one_child_per_item(linked: Engine) -> None:
    case = open_case(linked, findings=["no light in cells", "no doctor"], severity=3)
    linked.fire(case, "report", actor="olga", role="officer")
    children = linked.children(case)
    assert sorted(c.data["text"] for c in children) == ["no doctor", "no light in cells"]
    assert {(c.workflow_id, c.state, c.data["place"], c.data["weight"]) for c in children} == {
        ("followup", "pending", "Prison B", 3)
    }
    opened = [r for r in linked.history(case) if r.outcome == "opened"]
    assert sorted(r.changed["opened"][1] for r in opened) == sorted(c.id for c in children)
    assert {r.reason for r in opened} == {"one follow-up per finding"}
    child_start = linked.history(children[0].id)[0]
    assert (child_start.actor, child_start.reason) == ("olga", "one follow-up per finding")
    assert linked.verify_audit().ok


def test_no_items_opens_no_child(linked: Engine) -> None:
    case = open_case(linked)
    assert linked.fire(case, "report", actor="olga", role="officer").state == "reported"
    assert linked.children(case) == []


def test_child_data_that_breaks_the_child_schema_refuses_and_opens_nothing(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    (tmp_path / "case.yaml").write_text(
        (LINKED / "case.yaml").read_text().replace("weight: severity", "weight: place")
    )
    (tmp_path / "followup.yaml").write_text((LINKED / "followup.yaml").read_text())
    with Engine.open(db_url, [tmp_path], Registry(), clock=clock) as eng:
        case = open_case(eng, findings=["x"])
        with pytest.raises(TransitionRefused) as caught:
            eng.fire(case, "report", actor="olga", role="officer")
        assert caught.value.reason == "cannot open 'followup': weight: expected an integer"
        assert (eng.get(case).state, eng.children(case)) == ("open", [])
        assert eng.history(case)[-1].outcome == "refused"


def test_opens_naming_an_unknown_workflow_or_field_is_a_located_problem(tmp_path: Path) -> None:
    text = (LINKED / "case.yaml").read_text()
    (tmp_path / "case.yaml").write_text(text.replace("workflow: followup", "workflow: folowup"))
    (tmp_path / "followup.yaml").write_text((LINKED / "followup.yaml").read_text())
    with pytest.raises(DefinitionError) as caught:
        load_catalog([tmp_path], Registry())
    [problem] = caught.value.problems
    assert problem.message == "unknown workflow folowup (did you mean 'followup'?)"
    assert problem.line == 20
    (tmp_path / "case.yaml").write_text(text.replace("{text: item,", "{txt: item,"))
    with pytest.raises(DefinitionError) as caught:
        load_catalog([tmp_path], Registry())
    assert [p.message for p in caught.value.problems] == [
        "workflow 'followup' has no field 'txt' (did you mean 'text'?)"
    ]


class Recorder:
    def __init__(self) -> None:
        self.events: list[TransitionEvent] = []

    def on_change(self, uow: UnitOfWork, event: TransitionEvent) -> None:
        self.events.append(event)

    def on_deadline(self, uow: UnitOfWork, event: DeadlineEvent) -> None:
        raise AssertionError("no deadline here")


def test_hooks_see_every_change_with_states_entered_and_left(
    db_url: str, clock: FrozenClock
) -> None:
    recorder = Recorder()
    catalog = load_catalog([LINKED], Registry())
    store = SQLAlchemyStore(db_url)
    store.ensure_schema()
    with Engine(store, catalog, Registry(), clock=clock, hooks=[recorder]) as eng:
        case = open_case(eng, findings=["f"])
        eng.fire(case, "report", actor="olga", role="officer")
    assert [(e.workflow.id, e.trigger, e.left, e.entered) for e in recorder.events] == [
        ("case", "start", None, "open"),
        ("case", "report", "open", "reported"),
        ("followup", "start", None, "pending"),
    ]
