"""Deadline timers, written in the transaction of the change that arms or ends them.

:class:`TimerHook` is the transaction hook the engine installs first: entering a state arms
its deadlines (a row per reminder and one for the due date), leaving it cancels what is still
pending, and an internal transition keeps them, re-arms a deadline whose date field changed,
and pauses or resumes the deadlines it names.
"""

from __future__ import annotations

from collections.abc import Iterable

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import (
    DUE,
    DeadlinePlanner,
    settings_problems,
    watched_fields,
)
from opcatflow.engine.definition import DeadlineSpec
from opcatflow.engine.errors import DefinitionError
from opcatflow.engine.events import DeadlineEvent, TransitionEvent
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.rows import TimerStatus
from opcatflow.engine.settings import Settings

_LAPSED = (TimerStatus.FIRED, TimerStatus.REFUSED, TimerStatus.FAILED)


def clock_stops(wf: CompiledWorkflow, state: str, trigger: str) -> tuple[set[str], set[str]]:
    """The deadlines ``trigger`` pauses and resumes in ``state`` (validation makes every
    alternative of one trigger declare the same)."""
    pauses: set[str] = set()
    resumes: set[str] = set()
    for option in wf.options.get((state, trigger), ()):
        pauses.update(option.spec.pauses)
        resumes.update(option.spec.resumes)
    return pauses, resumes


class TimerHook:
    """Arms, cancels, re-arms, pauses and resumes timers inside each transition.

    Args:
        settings: the NPM's calendar and deadline durations.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.planner = DeadlinePlanner(settings)

    def check(self, workflows: Iterable[CompiledWorkflow]) -> None:
        """Refuse definitions that name ``config:`` keys the settings lack.

        Raises:
            DefinitionError: each unknown key, located in its definition.
        """
        problems = settings_problems(workflows, self.settings)
        if problems:
            raise DefinitionError(problems)

    def on_change(self, uow: UnitOfWork, event: TransitionEvent) -> None:
        instance = event.instance
        timers = uow.timers
        states = event.workflow.definition.states
        # Only states that declare deadlines ever hold timers: skip the UPDATE for the others
        # (most transitions), which keeps the hot path at the instance and audit writes.
        if event.left is not None and states[event.left].deadlines:
            timers.cancel(instance.id, event.left, at=event.at, note=f"left by {event.trigger}")
        if event.entered is not None:
            if states[event.entered].deadlines:  # else nothing to plan, nothing to arm
                planned = self.planner.arm_state(
                    event.workflow, event.entered, entered=event.at, data=instance.data
                )
                timers.arm(instance.id, event.entered, planned, event.at)
            return
        state = instance.state
        if event.previous is not None:
            for spec in event.workflow.definition.states[state].deadlines:
                fields = watched_fields(spec)
                if any(event.previous.data.get(f) != instance.data.get(f) for f in fields):
                    self._rearm(uow, event, spec)
        pauses, resumes = clock_stops(event.workflow, state, event.trigger)
        if pauses:
            timers.pause(instance.id, state, pauses, event.at)
        if resumes:
            timers.resume(instance.id, state, resumes, event.at)

    def on_deadline(self, uow: UnitOfWork, event: DeadlineEvent) -> None:
        """Nothing: the scheduler itself re-arms repeating deadlines."""

    def _rearm(self, uow: UnitOfWork, event: TransitionEvent, spec: DeadlineSpec) -> None:
        # A date this deadline counts from was set or corrected (a session moved, a published
        # date came out). Re-arm the first occurrence unless it already fell due in this stay:
        # a lapsed deadline is history, not something to fire twice.
        instance = event.instance
        armed = uow.timers.of_deadline(instance.id, instance.state, spec.id)
        lapsed = any(
            row.kind == DUE
            and row.status in _LAPSED
            and row.closed_at is not None
            and row.closed_at >= instance.state_entered_at
            for row in armed
        )
        repeated = max((row.occurrence for row in armed), default=1) > 1
        if lapsed or (spec.every is not None and repeated):
            return
        paused = any(row.status == TimerStatus.PAUSED for row in armed)
        uow.timers.cancel(
            instance.id,
            instance.state,
            at=event.at,
            note=f"re-armed by {event.trigger}",
            deadline=spec.id,
        )
        planned = self.planner.arm(
            event.workflow,
            spec,
            entered=instance.state_entered_at,
            data=instance.data,
            now=event.at,
        )
        uow.timers.arm(instance.id, instance.state, planned, event.at)
        if paused:  # a stopped clock stays stopped until resumed
            uow.timers.pause(instance.id, instance.state, (spec.id,), event.at)
