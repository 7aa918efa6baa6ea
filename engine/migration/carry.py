"""What a migrated instance's deadlines become: the one place that moves them.

Each open timer of the instance's state is carried over with its due time, status (a paused
clock stays paused) and occurrence, under the deadline name the target state uses; a
deadline the plan drops has its open timers cancelled; a deadline of the target state that
nothing carries is armed from the instance's entry into its state (the anchor a stay in that
state would have had), never from the time of the migration. Closed timers move with the
state too, so a deadline that already lapsed in this stay is not armed again later.

When deadlines become stored obligations, this module is where they are carried too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opcatflow.engine.deadlines import DeadlinePlanner
from opcatflow.engine.instance import Instance
from opcatflow.engine.migration.plan import Plan
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.rows import OPEN_TIMER


@dataclass(frozen=True, slots=True)
class TimerMove:
    """What happens to one open timer (or a new one)."""

    action: str  # carried | dropped | armed
    deadline: str  # its name in the source state (the new name for ``armed``)
    to: str | None  # its name in the target state (``None``: dropped)
    kind: str  # reminder | due
    due_at: datetime
    status: str

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "deadline": self.deadline,
            "to": self.to,
            "kind": self.kind,
            "due_at": self.due_at.isoformat(),
            "status": self.status,
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
) -> list[TimerMove]:
    """Move the timers ``before`` armed in its state to ``after``'s state (with ``apply``;
    else only say what would happen).

    Args:
        after: the instance as migrated (its target version, state and data).
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
    carried = {new for new in move.deadlines.values() if new is not None}
    fresh = []
    for spec in plan.target.definition.states[move.to].deadlines:
        if spec.id in carried:
            continue
        planned = planner.arm(
            plan.target, spec, entered=before.state_entered_at, data=after.data, now=at
        )
        fresh.extend(planned)
        moves.extend(
            TimerMove("armed", p.deadline, p.deadline, p.kind, p.due_at, "pending") for p in planned
        )
    if apply:
        note = f"migration plan {plan.digest[:12]}"
        uow.timers.rekey(before.id, before.state, move.to, move.deadlines, at=at, note=note)
        uow.timers.arm(before.id, move.to, fresh, at)
    return moves
