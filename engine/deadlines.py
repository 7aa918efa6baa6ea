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
from opcatflow.engine.durations import (
    ENTERED,
    SettingRef,
    Unit,
    parse_due,
    parse_offset,
    parse_period,
)
from opcatflow.engine.errors import Problem
from opcatflow.engine.expressions import compile_guard
from opcatflow.engine.partial_dates import counted_day
from opcatflow.engine.sandbox import BudgetExceeded
from opcatflow.engine.scopes import watched_fields
from opcatflow.engine.settings import Settings
from opcatflow.engine.suggest import did_you_mean

REMINDER = "reminder"
DUE = "due"
ALERT = "alert"  # one step of an obligation's overdue alerts


@dataclass(frozen=True, slots=True)
class PlannedTimer:
    """One timer to arm: a reminder, a due date or an overdue alert of one occurrence of a
    deadline (``obligation_id``: the obligation it wakes the scheduler for)."""

    deadline: str
    kind: str
    due_at: datetime
    occurrence: int = 1
    offset: str | None = None  # a reminder's period before the due date
    deadline_due: datetime | None = None  # a reminder's (or an alert's) deadline
    obligation_id: int | None = None
    step: int | None = None  # an alert's index in ``overdue_alerts``

    def payload(self) -> dict[str, Any]:
        if self.deadline_due is None:
            return {}
        payload: dict[str, Any] = {"due": self.deadline_due.isoformat()}
        if self.offset is not None:
            payload["offset"] = self.offset
        if self.step is not None:
            payload["step"] = self.step
        return payload


def find_deadline(wf: CompiledWorkflow, deadline: str) -> DeadlineSpec | None:
    """The declaration of ``deadline`` (state-level or workflow-level), or ``None``."""
    found = wf.deadlines.get(deadline)
    return found.spec if found is not None else None


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
    for declared in wf.deadlines.spanning(state):
        spec = declared.spec
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
        return counted_day(raw)  # a partial date counts as the last day of its period

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

    def anchor(
        self,
        wf: CompiledWorkflow,
        spec: DeadlineSpec,
        *,
        entered: datetime,
        data: Mapping[str, Any],
    ) -> str | None:
        """The value ``spec``'s due date counts from, as ISO 8601 text (``None``: a
        published date stands instead)."""
        if spec.published is not None and data.get(spec.published) is not None:
            return None
        anchor = parse_due(spec.due).anchor
        value = entered if anchor == ENTERED else self._value(wf, anchor, data)
        return None if value is None else value.isoformat()

    def met_instant(
        self, wf: CompiledWorkflow, field: str | None, data: Mapping[str, Any], at: datetime
    ) -> datetime:
        """When an obligation was met: the date or time a date field holds (the start of that
        day), else ``at`` (the change that met it)."""
        if field is None or field not in wf.definition.fields:
            return at
        value = self._value(wf, field, data)
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return self.calendar.start_of_day(value)
        return at

    def last_day(self, due_at: datetime) -> date:
        """The last day to meet a deadline due at ``due_at``, in the NPM's calendar."""
        return self.calendar.last_day(due_at)

    def days_late(self, due_at: datetime, met_at: datetime) -> int:
        """Whole days from the last day to the (local) day it was met; 0 when on time."""
        if met_at < due_at:
            return 0
        return max(0, (self.calendar.local_date(met_at) - self.last_day(due_at)).days)

    def reminders(
        self,
        spec: DeadlineSpec,
        due_at: datetime,
        *,
        after: datetime,
        occurrence: int = 1,
        obligation_id: int | None = None,
    ) -> list[PlannedTimer]:
        """The reminders of one due date that still lie ahead of ``after``."""
        planned = []
        for text in spec.reminders:
            duration = self.settings.duration(parse_period(text))
            at = self.calendar.shift_instant(due_at, duration, -1)
            if at >= after:
                planned.append(
                    PlannedTimer(
                        spec.id, REMINDER, at, occurrence, text, due_at, obligation_id=obligation_id
                    )
                )
        return planned

    def timers(
        self,
        spec: DeadlineSpec,
        due_at: datetime,
        *,
        now: datetime,
        occurrence: int,
        obligation_id: int,
    ) -> list[PlannedTimer]:
        """An obligation's reminders still ahead of ``now`` and its due timer."""
        return [
            *self.reminders(
                spec, due_at, after=now, occurrence=occurrence, obligation_id=obligation_id
            ),
            PlannedTimer(spec.id, DUE, due_at, occurrence, obligation_id=obligation_id),
        ]

    def alerts(
        self, spec: DeadlineSpec, due_at: datetime, *, occurrence: int, obligation_id: int
    ) -> list[PlannedTimer]:
        """The first timer of every overdue alert step of an obligation due at ``due_at``
        (those already past fire at the next sweep: once each, however late)."""
        planned = []
        for i, step in enumerate(spec.overdue_alerts):
            text = step.after if step.after is not None else step.every
            assert text is not None
            duration = self.settings.duration(parse_offset(text))
            at = self.calendar.shift_instant(due_at, duration, 1)
            planned.append(
                PlannedTimer(
                    spec.id,
                    ALERT,
                    at,
                    occurrence,
                    text,
                    due_at,
                    obligation_id=obligation_id,
                    step=i,
                )
            )
        return planned

    def next_alert(
        self, spec: DeadlineSpec, step: int, previous: datetime, *, now: datetime
    ) -> datetime | None:
        """When an ``every`` alert step comes round after the one sent at ``previous``
        (rounds missed while nothing ran are passed over); ``None`` for an ``after`` step."""
        every = spec.overdue_alerts[step].every
        if every is None:
            return None
        duration = self.settings.duration(parse_period(every))
        at = previous
        while at <= now:
            at = self.calendar.shift_instant(at, duration, 1)
        return at

    def next_due(self, spec: DeadlineSpec, met_at: datetime) -> datetime | None:
        """The due date of a repeating (``every``) obligation's next occurrence, counted from
        when the previous one was met."""
        if spec.every is None:
            return None
        every = self.settings.duration(parse_period(spec.every))
        cal = self.calendar
        if every.unit is Unit.HOURS:
            return met_at + timedelta(hours=every.amount)
        return cal.end_of_day(cal.shift_date(cal.local_date(met_at), every, 1))


def settings_problems(workflows: Iterable[CompiledWorkflow], settings: Settings) -> list[Problem]:
    """``config:`` keys that definitions name and the settings do not define, located."""
    problems = []
    known = settings.deadlines
    for wf in workflows:
        for loc, period in _periods(wf):
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


def _periods(wf: CompiledWorkflow) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every period a workflow names, where it names it: its deadlines' (due dates,
    minimums, repeats, reminders, alerts) and its period fields' minimums."""
    periods: list[tuple[tuple[str | int, ...], Any]] = []
    index = wf.deadlines
    for declared in [*index.declared.values(), *index.minimums.values()]:
        spec, at = declared.spec, declared.at
        key, text = ("not_before", spec.not_before) if spec.minimum else ("due", spec.due)
        assert text is not None
        periods.append(((*at, key), parse_due(text).duration))
        if spec.every is not None:
            periods.append(((*at, "every"), parse_period(spec.every)))
        periods += [((*at, "reminders", j), parse_period(r)) for j, r in enumerate(spec.reminders)]
        for j, step in enumerate(spec.overdue_alerts):
            step_key = "after" if step.after is not None else "every"
            step_text = step.after if step.after is not None else step.every
            assert step_text is not None
            periods.append(((*at, "overdue_alerts", j, step_key), parse_offset(step_text)))
    periods += [
        (("fields", name, "min"), parse_period(f.min))
        for name, f in wf.definition.fields.items()
        if f.min is not None
    ]
    return periods
