"""Re-arming obligations: counting their last day again under the settings as they are now.

An obligation's last day is fixed when it is armed, in the NPM's time zone and calendar of
that moment, and a person may already have read it, written it down, or told the State. So a
changed duration, a new holiday or another time zone leaves armed obligations as they are.
When the NPM decides the new rule applies to them too, ``opcatflow deadlines rearm --reason``
counts each waiting obligation again, stores the new day and its timers, and writes one audit
record per obligation it moves (outcome ``rearmed``, with the old and new last day and the
reason).

What is not re-armed: an overdue obligation (what is owed stays owed; an extension is how its
day moves), an extended one (its day is a person's decision), a paused one (its clock keeps
the remaining time), and one whose date no longer counts from anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import DeadlinePlanner, applies
from opcatflow.engine.durations import ENTERED, parse_due
from opcatflow.engine.errors import InvalidData
from opcatflow.engine.inputs import check_call
from opcatflow.engine.instance import Instance
from opcatflow.engine.ledger import Ledger
from opcatflow.engine.rows import Obligation, ObligationStatus
from opcatflow.engine.runtime import Engine

S = ObligationStatus
REARMED = "rearmed"


@dataclass(frozen=True, slots=True)
class Rearmed:
    """One obligation whose last day was counted again."""

    instance_id: str
    workflow: str
    deadline: str
    occurrence: int
    was: date | None
    now: date
    overdue: bool  # the new day has already passed: recorded as overdue

    def as_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "workflow": self.workflow,
            "deadline": self.deadline,
            "occurrence": self.occurrence,
            "was": self.was.isoformat() if self.was else None,
            "due_on": self.now.isoformat(),
            "overdue": self.overdue,
        }


def recount(
    planner: DeadlinePlanner, wf: CompiledWorkflow, instance: Instance, row: Obligation
) -> datetime | None:
    """When ``row`` would fall due if it were armed now (``None``: nothing to count from)."""
    declared = wf.deadlines.get(row.deadline)
    if declared is None or not applies(declared.spec, instance.data):
        return None
    spec = declared.spec
    if spec.every is not None and row.occurrence > 1 and row.anchor:
        # a later round counts from the day the previous one was met (its stored anchor)
        return planner.next_due(spec, datetime.fromisoformat(row.anchor))
    entered = instance.state_entered_at
    if parse_due(spec.due).anchor == ENTERED and row.anchor:
        entered = datetime.fromisoformat(row.anchor)
    return planner.due(wf, spec, entered=entered, data=instance.data)


def rearm_instance(book: Ledger, *, reason: str) -> list[Rearmed]:
    """Count the waiting (``pending``) obligations of the ledger's locked instance again;
    store and audit those whose due time or last day changes."""
    uow, wf, instance, planner, at = book.uow, book.wf, book.instance, book.planner, book.at
    done: list[Rearmed] = []
    for row in [r for r in book.rows if r.status is S.PENDING]:
        due_at = recount(planner, wf, instance, row)
        if due_at is None:
            continue
        last_day = planner.last_day(due_at)
        if due_at == row.due_at and last_day == row.last_day:
            continue
        declared = wf.deadlines.get(row.deadline)
        assert declared is not None  # recount found it
        was = row.last_day
        moved = dataclasses.replace(row, due_at=due_at, last_day=last_day)
        uow.timers.close_open({row.id}, at=at, note=REARMED)
        words = (
            f"deadline {row.deadline!r} #{row.occurrence} re-armed: last day {was} -> {last_day}"
        )
        overdue = due_at <= at
        if overdue:
            book.change(
                dataclasses.replace(moved, status=S.DUE), f"{words}, overdue: {reason}", REARMED
            )
            book.overdue(declared, moved, now=True)
        else:
            book.change(moved, f"{words}: {reason}", REARMED)
            book.arm(declared, moved)
        done.append(
            Rearmed(instance.id, wf.id, row.deadline, row.occurrence, was, last_day, overdue)
        )
    return done


def rearm(
    engine: Engine,
    *,
    reason: str,
    actor: str,
    role: str,
    workflow: str | None = None,
    instance_id: str | None = None,
) -> list[Rearmed]:
    """Re-arm the waiting obligations of every case (of ``workflow``, or the one case
    ``instance_id``) under the engine's settings: one unit of work per case.

    Raises:
        InvalidData: no reason, or one past its limit.
        InstanceNotFound: ``instance_id`` names no case.
    """
    check_call(actor=actor, role=role, reason=reason)
    if not reason.strip():
        raise InvalidData("rearm", ["give a reason: re-arming is audited"])
    if instance_id is not None:
        cases = [instance_id]
    else:
        cases = []
        key: tuple[datetime, int] | None = None
        with engine.store.read() as uow:
            while True:
                rows = uow.obligations.listing(
                    [S.PENDING], workflow=workflow, limit=1000, after=key
                )
                cases.extend(r.instance_id for r in rows if r.instance_id not in cases)
                if len(rows) < 1000:
                    break
                key = (rows[-1].due_at, rows[-1].id)
    done: list[Rearmed] = []
    for case in dict.fromkeys(cases):
        with engine.store.write() as uow:
            current, at = engine.lock_for_record(uow, case)
            wf = engine.workflow(current.workflow_id, current.workflow_version)
            book = Ledger(uow, wf, current, engine.timers.planner, actor=actor, role=role, at=at)
            done += rearm_instance(book, reason=reason)
            for event in book.events:  # overdue at once: the first alert goes out now
                for hook in engine.hooks:
                    hook.on_deadline(uow, event)
    engine.log.info("obligations_rearmed", count=len(done), actor=actor, role=role)
    return done


__all__ = ["REARMED", "Rearmed", "rearm", "rearm_instance", "recount"]
