"""From a state's declared deadlines to due instants: what the timers of one stay will be.

Pure computation over a definition, the instance data and the NPM's settings: the timer hook
writes the result as rows, and ``simulate`` keeps it in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import DeadlineSpec, FieldType
from opcatflow.engine.durations import ENTERED, Duration, SettingRef, Unit, parse_due, parse_period
from opcatflow.engine.errors import Problem
from opcatflow.engine.expressions import CONTEXT_NAMES, compile_guard, referenced_names
from opcatflow.engine.sandbox import BudgetExceeded
from opcatflow.engine.settings import Settings
from opcatflow.engine.suggest import did_you_mean

REMINDER = "reminder"
DUE = "due"


@dataclass(frozen=True, slots=True)
class PlannedTimer:
    """One timer to arm: a reminder or a due date of one occurrence of a deadline."""

    deadline: str
    kind: str
    due_at: datetime
    occurrence: int = 1
    offset: str | None = None  # a reminder's period before the due date
    deadline_due: datetime | None = None  # a reminder's deadline

    def payload(self) -> dict[str, Any]:
        if self.deadline_due is None:
            return {}
        return {"offset": self.offset, "due": self.deadline_due.isoformat()}


def find_deadline(wf: CompiledWorkflow, state: str, deadline: str) -> DeadlineSpec | None:
    spec = wf.definition.states.get(state)
    return next((d for d in spec.deadlines if d.id == deadline), None) if spec else None


def watched_fields(spec: DeadlineSpec) -> set[str]:
    """The data fields a deadline's due date depends on (anchor, published date, and those
    its ``when`` condition reads)."""
    fields = {parse_due(spec.due).anchor, spec.published}
    if spec.when is not None:
        fields |= referenced_names(spec.when) - CONTEXT_NAMES - {"data"}
    return {f for f in fields if f is not None and f != ENTERED}


@cache
def _condition(source: str) -> Callable[..., Any]:
    return compile_guard(source)


def applies(spec: DeadlineSpec, data: Mapping[str, Any]) -> bool:
    """Whether ``spec`` is armed for an instance with ``data`` (its ``when`` holds).

    Raises:
        BudgetExceeded: the condition went past its budget (or any error it raises).
    """
    if spec.when is None:
        return True
    return bool(_condition(spec.when)(**{**data, "data": data}))


def condition_refusal(
    wf: CompiledWorkflow,
    state: str,
    data: Mapping[str, Any],
    before: Mapping[str, Any] | None = None,
) -> str | None:
    """Why the ``when`` conditions the timer hook will evaluate for a change cannot be: one
    that fails or goes past its budget. Checked while deciding, so the change is refused
    (and audited) instead of failing in the hook. ``before``: the data before a change
    within ``state`` (only deadlines whose watched fields changed are re-evaluated); ``None``
    when ``state`` is entered.
    """
    for spec in wf.definition.states[state].deadlines:
        if spec.when is None:
            continue
        if before is not None and all(before.get(f) == data.get(f) for f in watched_fields(spec)):
            continue
        try:
            applies(spec, data)
        except BudgetExceeded as err:
            return f"deadline {spec.id!r}: condition {spec.when!r} stopped: {err}"
        except Exception as err:
            return f"deadline {spec.id!r}: condition {spec.when!r} failed: {err}"
    return None


class DeadlinePlanner:
    """Computes due dates and reminders in the NPM's calendar (see :mod:`calendar`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calendar = settings.calendar

    def _value(self, wf: CompiledWorkflow, name: str, data: Mapping[str, Any]) -> date | None:
        raw = data.get(name)
        if raw is None:
            return None
        if wf.definition.fields[name].type is FieldType.DATETIME:
            return datetime.fromisoformat(raw) if isinstance(raw, str) else raw
        return date.fromisoformat(raw) if isinstance(raw, str) else raw

    def due(
        self,
        wf: CompiledWorkflow,
        spec: DeadlineSpec,
        *,
        entered: datetime,
        data: Mapping[str, Any],
    ) -> datetime | None:
        """When ``spec`` falls due for a stay entered at ``entered``; ``None`` while the date
        field it counts from is empty.

        Raises:
            SettingsError: a ``config:`` key the settings do not define.
        """
        cal = self.calendar
        if spec.published is not None:
            published = self._value(wf, spec.published, data)
            if isinstance(published, datetime):
                return published
            if published is not None:
                return cal.end_of_day(published)
        expr = parse_due(spec.due)
        duration = self.settings.duration(expr.duration)
        sign = 1 if expr.direction == "after" else -1
        base = entered if expr.anchor == ENTERED else self._value(wf, expr.anchor, data)
        if base is None:
            return None
        if duration.unit is Unit.HOURS:
            instant = base if isinstance(base, datetime) else cal.start_of_day(base)
            return instant + timedelta(hours=duration.amount * sign)
        day = cal.local_date(base) if isinstance(base, datetime) else base
        return cal.end_of_day(cal.shift_date(day, duration, sign))

    def reminders(
        self, spec: DeadlineSpec, due_at: datetime, *, after: datetime, occurrence: int = 1
    ) -> list[PlannedTimer]:
        """The reminders of one due date that still lie ahead of ``after``."""
        planned = []
        for text in spec.reminders:
            duration = self.settings.duration(parse_period(text))
            at = self.calendar.shift_instant(due_at, duration, -1)
            if at >= after:
                planned.append(PlannedTimer(spec.id, REMINDER, at, occurrence, text, due_at))
        return planned

    def arm(
        self,
        wf: CompiledWorkflow,
        spec: DeadlineSpec,
        *,
        entered: datetime,
        data: Mapping[str, Any],
        now: datetime,
    ) -> list[PlannedTimer]:
        """The first occurrence of ``spec``: its reminders still ahead, and its due date;
        nothing when its ``when`` condition does not hold."""
        if not applies(spec, data):
            return []
        due_at = self.due(wf, spec, entered=entered, data=data)
        if due_at is None:
            return []
        return [*self.reminders(spec, due_at, after=now), PlannedTimer(spec.id, DUE, due_at)]

    def arm_state(
        self, wf: CompiledWorkflow, state: str, *, entered: datetime, data: Mapping[str, Any]
    ) -> list[PlannedTimer]:
        """Every timer of a stay in ``state`` that begins at ``entered``."""
        planned: list[PlannedTimer] = []
        for spec in wf.definition.states[state].deadlines:
            planned.extend(self.arm(wf, spec, entered=entered, data=data, now=entered))
        return planned

    def repeat(
        self, spec: DeadlineSpec, previous: datetime, occurrence: int, *, now: datetime
    ) -> list[PlannedTimer]:
        """The next occurrence of a repeating deadline after the one due at ``previous``.

        Occurrences that would already be due at ``now`` (missed while nothing ran, or skipped
        by a clock that jumped) are passed over: the check that fired stands for them.
        """
        if spec.every is None:
            return []
        every = self.settings.duration(parse_period(spec.every))
        due_at = previous
        while True:
            due_at = self._step(due_at, every)
            occurrence += 1
            if due_at > now:
                break
        return [
            *self.reminders(spec, due_at, after=now, occurrence=occurrence),
            PlannedTimer(spec.id, DUE, due_at, occurrence),
        ]

    def _step(self, due_at: datetime, every: Duration) -> datetime:
        cal = self.calendar
        if every.unit is Unit.HOURS:
            return due_at + timedelta(hours=every.amount)
        return cal.end_of_day(cal.shift_date(cal.last_day(due_at), every, 1))


def settings_problems(workflows: Iterable[CompiledWorkflow], settings: Settings) -> list[Problem]:
    """``config:`` keys that definitions name and the settings do not define, located."""
    problems = []
    known = settings.deadlines
    for wf in workflows:
        for name, state in wf.definition.states.items():
            for i, spec in enumerate(state.deadlines):
                at = ("states", name, "deadlines", i)
                periods: list[tuple[tuple[str | int, ...], Any]] = [
                    ((*at, "due"), parse_due(spec.due).duration)
                ]
                if spec.every is not None:
                    periods.append(((*at, "every"), parse_period(spec.every)))
                periods += [
                    ((*at, "reminders", j), parse_period(r)) for j, r in enumerate(spec.reminders)
                ]
                for loc, period in periods:
                    if isinstance(period, SettingRef) and period.key not in known:
                        message = (
                            f"no deadline key {period.key!r} in the settings ({settings.source})"
                            + did_you_mean(period.key, known)
                        )
                        problems.append(
                            wf.doc.problem(loc, message)
                            if wf.doc is not None
                            else Problem(f"<{wf.id} v{wf.version}>", 1, 1, message)
                        )
    return problems
