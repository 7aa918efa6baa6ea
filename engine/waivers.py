"""Waiving an obligation, or granting it a new last day: a person's decision, by a role the
deadline names (``waivable_by``, ``extendable_by``), with a reason, in the case's audit trail.

A refusal (a role the deadline does not name, no reason, nothing open to waive, a last day
that is not later) is audited like a refused trigger, then raised.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import DeadlinePlanner
from opcatflow.engine.firing import Refused
from opcatflow.engine.instance import Instance
from opcatflow.engine.ledger import Ledger
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.rows import OPEN_OBLIGATION, Obligation, ObligationStatus

WAIVE = "waive"
EXTEND = "extend"
S = ObligationStatus


def apply_change(
    uow: UnitOfWork,
    wf: CompiledWorkflow,
    instance: Instance,
    planner: DeadlinePlanner,
    deadline: str,
    *,
    at: datetime,
    action: str,
    actor: str,
    role: str,
    reason: str | None,
    last_day: date | None = None,
    occurrence: int | None = None,
) -> Obligation | Refused:
    """Waive (``action`` ``waive``) or extend (``extend``, to ``last_day``) the open
    occurrence of ``deadline`` of a locked ``instance`` (the given ``occurrence``, else the
    latest open one), or say why not: kind ``role`` (the deadline does not name the role),
    ``data`` (no reason, or a last day not later than the current one), ``state`` (no such
    deadline, or no open occurrence). The caller audits a refusal."""
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
    book = Ledger(uow, wf, instance, planner, actor=actor, role=role, at=at)
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
    due_at = planner.calendar.end_of_day(last_day)
    moved = dataclasses.replace(
        row, status=S.EXTENDED, due_at=due_at, last_day=last_day, paused_at=None,
        note=f"extended by {role}",
    )  # fmt: skip
    # its timers (due, reminders, alerts) are closed by the change, then armed for the new day
    book.change(moved, f"deadline {deadline!r} #{row.occurrence} extended to {last_day}: {reason}")
    uow.timers.close_open({row.id}, at=at, note=f"extended to {last_day}")
    book.arm(declared, moved)
    return moved
