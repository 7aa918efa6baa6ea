"""Helpers for migration plans: put instances in chosen states fast, and check that a plan
applies to instances in every occupied state.

``place`` is a bulk loader, not a workflow path: in one transaction it starts each instance
through the engine's own writes (its start record, its definition registered), then moves it
to the chosen state with an audit record of its own (trigger ``placed``) and lets the timer
hook arm that state's deadlines as entering it would. The audit chains stay valid, so
``audit verify`` holds over them.

A later change to a bundled workflow ships a plan from the previous version; its test is one
call: ``assert_plan_applies(engine, plan_path, data)`` (tests/test_migration_bundled.py runs it on every shipped plan).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from opcatflow.engine import Engine
from opcatflow.engine.audit import APPLIED, make_record
from opcatflow.engine.events import TransitionEvent
from opcatflow.engine.instance import Instance
from opcatflow.engine.migration import Migrator
from opcatflow.engine.writes import start_data

PLACED = "placed"


def place(
    engine: Engine,
    workflow: str,
    version: int,
    states: Sequence[str],
    data: Mapping[str, Any],
    *,
    entered: datetime,
    strict: bool = True,
) -> list[str]:
    """One instance per item of ``states`` (repeat a state for several), all with ``data``,
    in one transaction; returns their ids in order. ``strict=False`` stores data the start
    would refuse (as an older version may have left it)."""
    wf = engine.workflow(workflow, version)
    clean, errors = start_data(wf, data)
    assert not errors or not strict, errors
    writes = engine._writes  # the engine's own insert path: start record, hooks, registration
    ids = []
    with engine.store.write() as uow:
        for state in states:
            started = writes.insert_new(
                uow,
                wf,
                dict(clean),
                actor="loader",
                role=next(iter(sorted(wf.start_roles))),
                now=entered,
                parent_id=None,
                reason=None,
                instance_id=str(uuid.uuid4()),
            )
            ids.append(started.id)
            if state == started.state:
                continue
            seq = started.audit_seq + 1  # after the start's own records (its obligations')
            record = make_record(
                instance_id=started.id,
                seq=seq,
                at=entered,
                actor="loader",
                role="loader",
                workflow_id=wf.id,
                workflow_version=wf.version,
                trigger=PLACED,
                from_state=started.state,
                to_state=state,
                outcome=APPLIED,
                reason="placed by the test loader",
                changes="{}",
                prev_hash=started.audit_head,
            )
            moved = Instance(
                id=started.id,
                workflow_id=wf.id,
                workflow_version=wf.version,
                state=state,
                data=started.data,
                version=2,
                parent_id=None,
                created_at=entered,
                updated_at=entered,
                state_entered_at=entered,
                audit_seq=seq,
                audit_head=record.hash,
            )
            assert uow.instances.update(moved, 1)
            uow.audit.append(record)
            event = TransitionEvent(
                wf, moved, started, PLACED, "loader", "loader", entered, None, state, started.state
            )
            engine.timers.on_change(uow, event)
    return ids


def occupied_states(engine: Engine, workflow: str, version: int) -> list[str]:
    """Every non-final state of a version."""
    wf = engine.workflow(workflow, version)
    return [s for s in wf.definition.states if s not in wf.finals]


def assert_plan_applies(
    engine: Engine, plan: Path, data: Mapping[str, Any], *, entered: datetime
) -> None:
    """Put one instance in every non-final state of the plan's ``from`` version, then dry
    run and apply the plan: nothing refused, every instance on the ``to`` version, audit
    chains intact."""
    migrator = Migrator(engine)
    loaded = migrator.load(plan.read_text("utf-8"), str(plan))
    states = occupied_states(engine, loaded.workflow, loaded.source.version)
    ids = place(engine, loaded.workflow, loaded.source.version, states, data, entered=entered)
    # (Only these instances: a database shared with an earlier plan of the same workflow
    # holds the instances that plan moved onto this plan's source version too.)
    dry = migrator.run(loaded, dry_run=True)
    mine = [o.outcome for o in dry.outcomes if o.instance_id in ids]
    assert mine == ["would migrate"] * len(ids), dry.refused
    done = migrator.run(loaded, dry_run=False)
    mine = [o.outcome for o in done.outcomes if o.instance_id in ids]
    assert mine == ["migrated"] * len(ids), done.refused
    assert {engine.get(i).workflow_version for i in ids} == {loaded.target.version}
    assert engine.verify_audit().ok
