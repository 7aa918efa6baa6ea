"""Waiving an obligation, or granting it a new last day: a person's decision, by a role the
deadline names (``waivable_by``, ``extendable_by``), with a reason, in the case's audit trail.

A refusal (a role the deadline does not name, no reason, nothing open to waive, a last day
that is not later) is audited like a refused trigger, then raised.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import TYPE_CHECKING

from opcatflow.engine.errors import TransitionRefused
from opcatflow.engine.firing import Refused
from opcatflow.engine.inputs import check_call
from opcatflow.engine.ledger import Ledger
from opcatflow.engine.rows import OPEN_OBLIGATION, Obligation, ObligationStatus

if TYPE_CHECKING:
    from opcatflow.engine.ports import UnitOfWork
    from opcatflow.engine.runtime import Engine

WAIVE = "waive"
EXTEND = "extend"
S = ObligationStatus


def change_obligation(
    engine: Engine,
    instance_id: str,
    deadline: str,
    *,
    action: str,
    actor: str,
    role: str,
    reason: str | None,
    last_day: date | None = None,
    occurrence: int | None = None,
) -> Obligation:
    """Waive (``action`` ``waive``) or extend (``extend``, to ``last_day``) the open
    occurrence of ``deadline`` (the given ``occurrence``, else the latest open one).

    Raises:
        InstanceNotFound
        TransitionRefused: audited first; kind ``role`` (the deadline does not name the
            role), ``data`` (no reason, or a last day not later than the current one),
            ``state`` (no such deadline, or no open occurrence).
        LimitExceeded, InvalidText: the actor, role or reason past a limit.
    """
    check_call(actor=actor, role=role, reason=reason)
    trigger = f"{action}:{deadline}"[:64]
    with engine.store.write() as uow:
        outcome = _apply(
            engine, uow, instance_id, deadline, action=action, actor=actor, role=role,
            reason=reason, last_day=last_day, occurrence=occurrence,
        )  # fmt: skip
        if isinstance(outcome, Refused):
            current, at = engine.lock_for_record(uow, instance_id)
            engine._writes.store_refusal(
                uow, current, trigger=trigger, actor=actor, role=role, now=at, refusal=outcome
            )
    if isinstance(outcome, Refused):
        engine.log.info(
            "obligation_change_refused", instance_id=instance_id, deadline=deadline,
            action=action, role=role, kind=outcome.kind, reason=outcome.reason,
        )  # fmt: skip
        raise TransitionRefused(instance_id, trigger, outcome.kind, outcome.reason)
    engine.log.info(
        "obligation_changed", instance_id=instance_id, deadline=deadline, action=action,
        role=role, occurrence=outcome.occurrence, status=str(outcome.status),
    )  # fmt: skip
    return outcome


def _apply(
    engine: Engine,
    uow: UnitOfWork,
    instance_id: str,
    deadline: str,
    *,
    action: str,
    actor: str,
    role: str,
    reason: str | None,
    last_day: date | None,
    occurrence: int | None,
) -> Obligation | Refused:
    instance, at = engine.lock_for_record(uow, instance_id)
    wf = engine.workflow(instance.workflow_id, instance.workflow_version)
    declared = wf.deadlines.get(deadline)
    if declared is None:
        return Refused("state", f"{wf.id!r} declares no deadline {deadline!r}")
    spec = declared.spec
    allowed = spec.waivable_by if action == WAIVE else spec.extendable_by
    if role not in allowed:
        who = ", ".join(allowed) or "no role"
        verb = "waive" if action == WAIVE else "extend"
        return Refused("role", f"role {role!r} may not {verb} {deadline!r} (allowed: {who})")
    if not (reason or "").strip():
        return Refused("data", f"to {action} {deadline!r}, give a reason")
    book = Ledger(uow, wf, instance, engine.timers.planner, actor=actor, role=role, at=at)
    open_rows = [
        r for r in book.of(deadline)
        if r.status in OPEN_OBLIGATION and (occurrence is None or r.occurrence == occurrence)
    ]  # fmt: skip
    if not open_rows:
        which = f" #{occurrence}" if occurrence is not None else ""
        return Refused("state", f"deadline {deadline!r}{which} has no open occurrence")
    row = max(open_rows, key=lambda r: r.occurrence)
    if action == WAIVE:
        done = dataclasses.replace(row, status=S.WAIVED, note=f"waived by {role}", paused_at=None)
        return book.change(done, f"deadline {deadline!r} #{row.occurrence} waived: {reason}")
    assert last_day is not None
    current = row.last_day or book.planner.last_day(row.due_at)
    if last_day <= current:
        return Refused(
            "data", f"the new last day {last_day} is not later than the current one, {current}"
        )
    due_at = engine.settings.calendar.end_of_day(last_day)
    moved = dataclasses.replace(
        row, status=S.EXTENDED, due_at=due_at, last_day=last_day, paused_at=None,
        note=f"extended by {role}",
    )  # fmt: skip
    # its timers (due, reminders, alerts) are closed by the change, then armed for the new day
    book.change(moved, f"deadline {deadline!r} #{row.occurrence} extended to {last_day}: {reason}")
    uow.timers.close_open({row.id}, at=at, note=f"extended to {last_day}")
    book.arm(declared, moved)
    return moved
