"""What a migrated instance's deadlines become: the one place that moves them.

Deadlines are stored obligations (one row per occurrence) with timers that wake the
scheduler up. Each open obligation (pending, due or paused) of a deadline the plan maps is
carried over under the deadline name the target state uses, keeping its anchor, due time,
last day and status: a due one stays due and its alert ladder continues, since its timers
move with it (a paused clock stays paused). A deadline the plan drops has its open
obligations cancelled (note ``dropped by migration plan ...``) and their timers closed.
Closed obligations and timers move with the state too, so a deadline that already lapsed or
was met in this stay is not armed again.

A deadline that is new in the target state is armed from the facts the instance holds
(:mod:`~opcatflow.engine.migration.arm`), never counted from the migration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from opcatflow.engine.deadlines import DeadlinePlanner
from opcatflow.engine.instance import Instance
from opcatflow.engine.migration.arm import Arming
from opcatflow.engine.migration.plan import Plan
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.rows import OPEN_OBLIGATION, OPEN_TIMER, Obligation, ObligationStatus


@dataclass(frozen=True, slots=True)
class TimerMove:
    """What happens to one open timer (or a new one)."""

    action: str  # carried | dropped | armed | not armed
    deadline: str  # its name in the source state (the new name for ``armed``)
    to: str | None  # its name in the target state (``None``: dropped)
    kind: str  # reminder | due | obligation
    due_at: datetime | None  # ``None``: not armed
    status: str
    last_day: date | None = None  # of an armed deadline, in the NPM's calendar
    reason: str | None = None  # why a deadline is not armed

    @classmethod
    def of(cls, arming: Arming, *, now: datetime) -> TimerMove:
        """How a deadline new in the target state moves (see :mod:`.arm`)."""
        if arming.due_at is None:
            return cls("not armed", arming.name, arming.name, "obligation", None, "", None,
                       arming.reason)  # fmt: skip
        status = "due" if arming.due_at <= now and arming.declared.obligation else "pending"
        return cls(
            "armed", arming.name, arming.name, "obligation", arming.due_at, status,
            arming.last_day,
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "deadline": self.deadline,
            "to": self.to,
            "kind": self.kind,
            "due_at": None if self.due_at is None else self.due_at.isoformat(),
            "status": self.status,
            "last_day": None if self.last_day is None else self.last_day.isoformat(),
            "reason": self.reason,
        }


def carry_timers(
    uow: UnitOfWork,
    plan: Plan,
    before: Instance,
    after: Instance,
    *,
    planner: DeadlinePlanner,
    at: datetime,
    apply: bool,
    rows: list[Obligation] | None = None,
) -> list[TimerMove]:
    """Move the timers ``before`` armed in its state to ``after``'s state (with ``apply``;
    else only say what would happen).

    Args:
        after: the instance as migrated (its target version, state and data).
        rows: the instance's obligations, when the caller has read them already.
        at: when the migration happens (closing time of dropped timers; arming a new
            deadline skips its reminders already past, as entering a state would).
    """
    move = plan.moves[before.state]
    moves: list[TimerMove] = []
    for old, new in move.deadlines.items():
        for timer in uow.timers.of_deadline(before.id, before.state, old):
            if timer.status not in OPEN_TIMER:
                continue
            action = "dropped" if new is None else "carried"
            moves.append(TimerMove(action, old, new, timer.kind, timer.due_at, str(timer.status)))
    # (timers armed in another state of a deadline's scope move with their obligation below)
    if rows is None:
        rows = uow.obligations.of_instance(before.id)
    for row in rows:
        if row.deadline in move.deadlines and row.status in OPEN_OBLIGATION:
            new = move.deadlines[row.deadline]
            action = "dropped" if new is None else "carried"
            moves.append(
                TimerMove(action, row.deadline, new, "obligation", row.due_at, str(row.status))
            )
    if apply:
        note = f"migration plan {plan.digest[:12]}"
        uow.timers.rekey(before.id, before.state, move.to, move.deadlines, at=at, note=note)
        dropped = []
        taken = _occurrences_kept(rows, move.deadlines)
        for row in sorted(rows, key=lambda r: (r.deadline, r.occurrence)):
            if row.deadline not in move.deadlines:
                continue
            new = move.deadlines[row.deadline]
            if new is None:
                if row.status in OPEN_OBLIGATION:
                    dropped.append(row.id)
                    cancelled = dataclasses.replace(
                        row, status=ObligationStatus.CANCELLED, note=f"dropped by {note}"
                    )
                    uow.obligations.update(cancelled, at)
            elif new != row.deadline:
                occurrence = _free_occurrence(taken.setdefault(new, set()), row.occurrence)
                renamed = dataclasses.replace(row, deadline=new, occurrence=occurrence)
                uow.obligations.update(renamed, at)
        uow.timers.close_open(dropped, at=at, note=f"dropped by {note}")
    return moves


def _occurrences_kept(
    rows: list[Obligation], renames: Mapping[str, str | None]
) -> dict[str, set[int]]:
    """The occurrence numbers each deadline name holds after the plan, before the renamed
    rows join: those of rows the plan does not rename (an earlier stay's, say)."""
    taken: dict[str, set[int]] = {}
    for row in rows:
        if renames.get(row.deadline, row.deadline) == row.deadline:
            taken.setdefault(row.deadline, set()).add(row.occurrence)
    return taken


def _free_occurrence(taken: set[int], wanted: int) -> int:
    # A renamed obligation keeps its number unless the target name already holds it (a
    # deadline that became one scoped over several states: its occurrence in an earlier
    # state is stored under the new name already); then it follows the last one.
    occurrence = wanted if wanted not in taken else max(taken) + 1
    taken.add(occurrence)
    return occurrence
