"""What a new instance would live through if nobody acted: every reminder, due date and
escalation in order, computed in memory with the same planner and decision code as the
running engine. Nothing is read from or written to a database.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import (
    DUE,
    REMINDER,
    DeadlinePlanner,
    PlannedTimer,
    condition_refusal,
    find_deadline,
)
from opcatflow.engine.errors import InvalidData, TransitionRefused
from opcatflow.engine.firing import Applied, decide
from opcatflow.engine.inputs import check_data
from opcatflow.engine.scheduler import SCHEDULER
from opcatflow.engine.settings import Settings

MAX_EVENTS = 10_000


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One step of a simulated timeline.

    Attributes:
        kind: ``enter`` (a state entered), ``reminder``, ``due`` (nothing to fire),
            ``escalation`` (the trigger applied), ``refused`` (the trigger refused).
    """

    at: datetime
    kind: str
    state: str
    deadline: str | None = None
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "state": self.state,
            "deadline": self.deadline,
            "detail": self.detail,
        }


def simulate(
    wf: CompiledWorkflow,
    settings: Settings,
    *,
    start: datetime,
    until: datetime,
    data: Mapping[str, Any] | None = None,
) -> list[TimelineEvent]:
    """The timeline of a new instance started at ``start``, up to ``until``.

    Raises:
        InvalidData: ``data`` does not fit the workflow's schema.
        LimitExceeded, InvalidText: ``data`` past a limit, or not valid Unicode.
        TransitionRefused: a deadline condition of the initial state fails or goes past its
            budget (later states: the refusal is part of the timeline).
    """
    check_data(data or {})
    clean, errors = wf.schema.validate(data or {})
    if errors:
        raise InvalidData(wf.id, errors)
    current = {k: v for k, v in clean.items() if v is not None}
    problem = condition_refusal(wf, wf.initial, current)
    if problem is not None:
        raise TransitionRefused("(simulated)", "start", "guard", problem)
    planner = DeadlinePlanner(settings)
    state = wf.initial
    timeline = [TimelineEvent(start, "enter", state)]
    queue: list[tuple[datetime, int, PlannedTimer]] = []
    order = 0

    def arm(planned: list[PlannedTimer]) -> None:
        nonlocal order
        for timer in planned:
            order += 1
            heapq.heappush(queue, (timer.due_at, order, timer))

    arm(planner.arm_state(wf, state, entered=start, data=current))
    while queue and len(timeline) < MAX_EVENTS:
        at, _, timer = heapq.heappop(queue)
        if at > until:
            break
        spec = find_deadline(wf, state, timer.deadline)
        if spec is None:  # armed by a state already left
            continue
        if timer.kind == REMINDER:
            timeline.append(TimelineEvent(at, REMINDER, state, timer.deadline, timer.offset))
            continue
        trigger = spec.on_due.trigger
        if trigger is None:
            timeline.append(TimelineEvent(at, DUE, state, timer.deadline))
            arm(planner.repeat(spec, at, timer.occurrence, now=at))
            continue
        outcome = decide(
            wf,
            instance_id="(simulated)",
            state=state,
            data=current,
            trigger=trigger,
            actor=SCHEDULER,
            role=SCHEDULER,
            supplied={},
            now=at,
        )
        if not isinstance(outcome, Applied):
            timeline.append(TimelineEvent(at, "refused", state, timer.deadline, outcome.reason))
            arm(planner.repeat(spec, at, timer.occurrence, now=at))
            continue
        timeline.append(TimelineEvent(at, "escalation", state, timer.deadline, trigger))
        current = outcome.data
        if not outcome.state_changed:
            arm(planner.repeat(spec, at, timer.occurrence, now=at))
            continue
        state = outcome.state
        queue = []  # leaving a state cancels all its timers
        timeline.append(TimelineEvent(at, "enter", state))
        arm(planner.arm_state(wf, state, entered=at, data=current))
    return timeline
