"""The store contract for the definition catalogue and instance migration, on every store:
definition listing and status, instance counts by version and state, queries by definition
version, an update that moves an instance to another version, and timers re-keyed to
another state and deadline names."""

from __future__ import annotations

import dataclasses

from storekit import T0, WORKFLOW, definition, due, moved, setup, started

from opcatflow.engine.ports import Store
from opcatflow.engine.rows import DefinitionOrigin, DefinitionStatus, TimerStatus


def test_definitions_are_listed_with_their_status_and_origin(store: Store) -> None:
    setup(store)
    second = dataclasses.replace(definition(), version=2, origin=DefinitionOrigin.DEPLOY)
    with store.write() as uow:
        uow.definitions.add(second)
        uow.definitions.set_status(WORKFLOW[0], 1, DefinitionStatus.RETIRED, T0)
    with store.read() as uow:
        rows = uow.definitions.listing()
    assert [(r.version, r.status, r.origin, r.retired_at) for r in rows] == [
        (1, DefinitionStatus.RETIRED, DefinitionOrigin.FILE, T0),
        (2, DefinitionStatus.ACTIVE, DefinitionOrigin.DEPLOY, None),
    ]
    with store.write() as uow:
        uow.definitions.set_status(WORKFLOW[0], 1, DefinitionStatus.ACTIVE, T0)
        uow.definitions.set_origin(WORKFLOW[0], 1, DefinitionOrigin.DEPLOY)
    with store.read() as uow:
        first = uow.definitions.get(*WORKFLOW)
    assert first is not None
    assert (first.status, first.origin, first.retired_at) == (
        DefinitionStatus.ACTIVE,
        DefinitionOrigin.DEPLOY,
        None,
    )


def test_an_instance_moves_to_another_version_with_its_timers(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        uow.definitions.add(dataclasses.replace(definition(), version=2))
        one = started(uow)
        other = started(uow, state="done")
        uow.timers.arm(one.id, "open", [due("reply", T0), due("stale", T0), due("gone", T0)], T0)
    with store.read() as uow:
        assert uow.instances.census() == {(WORKFLOW[0], 1, "open"): 1, (WORKFLOW[0], 1, "done"): 1}
    with store.write() as uow:
        assert uow.instances.update(moved(one, workflow_version=2, state="waiting"), 1)
        uow.timers.rekey(
            one.id, "open", "waiting", {"reply": "answer", "gone": None}, at=T0, note="plan"
        )
    with store.read() as uow:
        on_two = uow.instances.query(workflow=WORKFLOW[0], workflow_version=2)
        on_one = uow.instances.query(workflow=WORKFLOW[0], workflow_version=1)
        timers = uow.timers.open_timers(reminders=True)
        dropped = uow.timers.of_deadline(one.id, "waiting", "gone")
        census = uow.instances.census()
    assert [i.id for i in on_two] == [one.id]
    assert [i.id for i in on_one] == [other.id]
    assert sorted((t.state, t.deadline, t.due_at, t.workflow_version) for t in timers) == [
        ("waiting", "answer", T0, 2),
        ("waiting", "stale", T0, 2),
    ]
    assert [(t.status, t.note) for t in dropped] == [(TimerStatus.CANCELLED, "plan")]
    assert census == {(WORKFLOW[0], 2, "waiting"): 1, (WORKFLOW[0], 1, "done"): 1}
