"""Who may read personal values (``personal_visible_to``, a field's ``visible_to``), and
``Engine.start(also=...)`` for callers that write in the same transaction."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import changes, make_registry

from opcatflow.engine import (
    DefinitionError,
    Engine,
    FrozenClock,
    Instance,
    Problem,
    TransitionRefused,
    UnitOfWork,
    compile_text,
    load_catalog,
)
from opcatflow.engine.sql import tables as t
from opcatflow.workflows import BUNDLED, registry

EXAMPLE = (Path(__file__).parent / "definitions" / "example.yaml").read_text()


def edit(old: str, new: str) -> str:
    assert old in EXAMPLE, old
    return EXAMPLE.replace(old, new, 1)


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        compile_text(text, "wf.yaml", make_registry())
    return list(caught.value.problems)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


WITH_VISIBILITY = edit(
    "  name: {type: string, personal: true}\n",
    "  name: {type: string, personal: true}\n"
    "  address: {type: string, personal: true, visible_to: [clerk]}\n",
).replace("personal_visible_to: [clerk, reviewer]", "personal_visible_to: [reviewer]", 1)


def test_personal_fields_are_hidden_from_every_role_by_default() -> None:
    text = edit("personal_visible_to: [clerk, reviewer]", "")
    wf = compile_text(text, "example.yaml", make_registry())
    assert wf.withheld_fields(["clerk", "reviewer"]) == frozenset({"name"})


def test_the_workflow_default_and_a_fields_own_list_decide_who_reads_what() -> None:
    wf = compile_text(WITH_VISIBILITY, "wf.yaml", make_registry())
    assert wf.withheld_fields(["reviewer"]) == frozenset({"address"})
    assert wf.withheld_fields(["clerk"]) == frozenset({"name"})
    assert wf.withheld_fields(["clerk", "reviewer"]) == frozenset()
    assert wf.withheld_fields([]) == frozenset({"name", "address"})


def test_an_unknown_role_in_personal_visible_to_is_located() -> None:
    text = WITH_VISIBILITY.replace(
        "personal_visible_to: [reviewer]", "personal_visible_to: [reviwer]"
    )
    [problem] = problems_of(text)
    assert problem.message == "unknown role 'reviwer' (did you mean 'reviewer'?)"
    assert (problem.line, problem.column) == (line_of(text, "personal_visible_to"), 23)


def test_an_unknown_role_in_a_fields_visible_to_is_located() -> None:
    text = WITH_VISIBILITY.replace("visible_to: [clerk]", "visible_to: [clerc]")
    [problem] = problems_of(text)
    assert problem.message == "unknown role 'clerc' (did you mean 'clerk'?)"
    assert problem.line == line_of(text, "visible_to: [clerc]")


def test_the_scheduler_may_not_read_personal_values() -> None:
    text = WITH_VISIBILITY.replace("visible_to: [clerk]", "visible_to: [scheduler]")
    [problem] = problems_of(text)
    assert problem.message.startswith("unknown role 'scheduler'")


def test_visible_to_on_a_field_that_is_not_personal_is_located() -> None:
    text = edit("  score: {type: integer}\n", "  score: {type: integer, visible_to: [clerk]}\n")
    [problem] = problems_of(text)
    assert problem.message == (
        "field 'score' is not personal: 'visible_to' is only for personal fields"
    )
    assert problem.line == line_of(text, "score: {type: integer, visible_to")


def test_the_bundled_workflows_say_who_reads_personal_values() -> None:
    catalog = load_catalog([BUNDLED], registry)
    complaint = catalog.get("complaint")
    assert complaint.withheld_fields(["intake"]) == frozenset()
    reprisal = catalog.get("reprisal")
    assert reprisal.withheld_fields(["coordinator"]) == reprisal.schema.personal
    assert reprisal.withheld_fields(["caseworker"]) == frozenset()
    visit = catalog.get("visit")
    assert visit.withheld_fields(["expert", "liaison"]) == visit.schema.personal


COMPLAINT = {
    "source": "detained_person",
    "channel": "during_visit",
    "received_on": "2026-03-01",
}


def test_a_start_stores_nothing_when_its_also_callback_fails(
    db_url: str, clock: FrozenClock
) -> None:
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:

        def fail(uow: UnitOfWork, instance: Instance) -> None:
            assert uow.instances.get(instance.id) == instance  # in the same transaction
            raise RuntimeError("the caller's own write failed")

        with pytest.raises(RuntimeError):
            engine.start("complaint", actor="a", role="intake", data=COMPLAINT, also=fail)
        with engine.store.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(t.instances)).scalar()
        assert count == 0
        assert engine.query() == []


def test_a_start_commits_what_its_also_callback_writes(db_url: str, clock: FrozenClock) -> None:
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        seen: list[Instance] = []
        started = engine.start(
            "complaint",
            actor="a",
            role="intake",
            data=COMPLAINT,
            also=lambda uow, instance: seen.append(uow.instances.get(instance.id)),
        )
        assert engine.get(started.id) == started == seen[0]
        assert [r.outcome for r in changes(engine, started.id)] == ["started"]


def test_a_start_refuses_a_role_that_may_not_start(db_url: str, clock: FrozenClock) -> None:
    with Engine.open(db_url, [BUNDLED], registry, clock=clock) as engine:
        with pytest.raises(TransitionRefused) as caught:
            engine.start("visit", actor="a", role="expert", data={}, also=pytest.fail)
        assert caught.value.kind == "role"
