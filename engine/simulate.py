"""What a new instance would live through if nobody acted: every reminder, due date and
escalation in order, computed in memory with the same planner and decision code as the
running engine. Nothing is read from or written to a database.
"""

from __future__ import annotations

import heapq
import itertools
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
    applies,
    condition_refusal,
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
    index = wf.deadlines
    state = wf.initial
    timeline = [TimelineEvent(start, "enter", state)]
    queue: list[tuple[datetime, int, PlannedTimer]] = []
    order = itertools.count()

    def enter(left: str | None, entered: str, at: datetime) -> None:
        # Deadlines whose scope is entered start; those of a scope left end (nobody meets
        # them here, so nothing repeats).
        nonlocal queue
        queue = [q for q in queue if index.declared[q[2].deadline].spans(entered, index.finals)]
        heapq.heapify(queue)
        for planned in _entering(wf, planner, left=left, entered=entered, at=at, data=current):
            heapq.heappush(queue, (planned.due_at, next(order), planned))

    enter(None, state, start)
    while queue and len(timeline) < MAX_EVENTS:
        at, _, timer = heapq.heappop(queue)
        if at > until:
            break
        spec = index.declared[timer.deadline].spec
        if timer.kind == REMINDER:
            timeline.append(TimelineEvent(at, REMINDER, state, timer.deadline, timer.offset))
            continue
        trigger = spec.on_due.trigger
        if trigger is None:
            timeline.append(TimelineEvent(at, DUE, state, timer.deadline))
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
            continue
        timeline.append(TimelineEvent(at, "escalation", state, timer.deadline, trigger))
        current = outcome.data
        if not outcome.state_changed:
            continue
        left, state = state, outcome.state
        timeline.append(TimelineEvent(at, "enter", state))
        enter(left, state, at)
    return timeline


def _entering(
    wf: CompiledWorkflow,
    planner: DeadlinePlanner,
    *,
    left: str | None,
    entered: str,
    at: datetime,
    data: Mapping[str, Any],
) -> list[PlannedTimer]:
    index = wf.deadlines
    planned: list[PlannedTimer] = []
    for declared in index.declared.values():
        if not declared.spans(entered, index.finals) or declared.spans(left, index.finals):
            continue
        if not applies(declared.spec, data):
            continue
        due_at = planner.due(wf, declared.spec, entered=at, data=data)
        if due_at is not None:
            planned += planner.reminders(declared.spec, due_at, after=at)
            planned.append(PlannedTimer(declared.spec.id, DUE, due_at))
    return planned
