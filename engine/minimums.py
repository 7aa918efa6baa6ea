"""Minimums: deadlines that say how early something may happen, not how late.

A ``not_before`` deadline (the UPR working group's report adopted at least 48 hours after the
review) is never owed, overdue or alerted: it is checked when what meets it (``met_by``: a
trigger applied, a field becoming set) happens while the case is in its scope. Met before its
earliest instant, it is early:

- ``on_early: warn`` (the default): the fact is recorded (facts stay recordable: an NPM
  records what happened), the caller gets a notice, and the case's audit trail an ``early``
  record naming the earliest instant;
- ``on_early: refuse``: the change is refused, and the refusal audited like any other.

The earliest instant counts like a due date (in the NPM's calendar and time zone): hours
exactly; days, weeks, months and years in local dates, from the start of the earliest day.
A date field that meets it gives the day it was met, so a fact recorded later with its real
date is judged by that date.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import DeadlinePlanner, applies
from opcatflow.engine.definition import FieldType
from opcatflow.engine.durations import ENTERED, Unit, parse_due
from opcatflow.engine.partial_dates import counted_day
from opcatflow.engine.scopes import Declared

EARLY = "early"


@dataclass(frozen=True, slots=True)
class Early:
    """A minimum met before its earliest instant."""

    declared: Declared
    earliest: datetime
    met_at: datetime

    @property
    def refused(self) -> bool:
        return self.declared.spec.on_early == "refuse"

    def words(self, planner: DeadlinePlanner) -> str:
        spec = self.declared.spec
        local = planner.calendar.local(self.earliest)
        when = f"{local:%Y-%m-%d %H:%M} ({planner.calendar.timezone})"
        return (
            f"{spec.label or spec.id!r} may not be before {when} "
            f"(not_before: {spec.not_before}); met at "
            f"{planner.calendar.local(self.met_at):%Y-%m-%d %H:%M}"
        )


def earliest(
    planner: DeadlinePlanner,
    wf: CompiledWorkflow,
    declared: Declared,
    *,
    entered: datetime,
    data: Mapping[str, Any],
) -> datetime | None:
    """The earliest instant ``declared`` may be met (``None``: its anchor field is empty)."""
    assert declared.spec.not_before is not None
    expr = parse_due(declared.spec.not_before)
    duration = planner.settings.duration(expr.duration)
    base: date | datetime | None = entered
    if expr.anchor != ENTERED:
        base = _value(wf, expr.anchor, data)
    if base is None:
        return None
    cal = planner.calendar
    if duration.unit is Unit.HOURS:
        instant = base if isinstance(base, datetime) else cal.start_of_day(base)
        return instant + timedelta(hours=duration.amount)
    day = cal.local_date(base) if isinstance(base, datetime) else base
    return cal.start_of_day(cal.shift_date(day, duration, 1))


def met_early(
    planner: DeadlinePlanner,
    wf: CompiledWorkflow,
    *,
    state: str,
    entered: datetime,
    before: Mapping[str, Any],
    data: Mapping[str, Any],
    trigger: str,
    at: datetime,
) -> list[Early]:
    """The minimums of ``state`` that a change (``trigger``, data ``before`` -> ``data``)
    meets before their earliest instant."""
    found: list[Early] = []
    for declared in wf.deadlines.minimums.values():
        spec = declared.spec
        if not declared.spans(state, wf.deadlines.finals):
            continue
        fields = [
            m.field
            for m in spec.met_by
            if m.field is not None and before.get(m.field) is None and data.get(m.field)
        ]
        if not fields and not any(m.trigger == trigger for m in spec.met_by):
            continue
        if not applies(spec, data):
            continue
        first = earliest(planner, wf, declared, entered=entered, data=data)
        if first is None:
            continue
        met_at = planner.met_instant(wf, fields[0] if fields else None, data, at)
        if met_at < first:
            found.append(Early(declared, first, met_at))
    return found


def _value(wf: CompiledWorkflow, name: str, data: Mapping[str, Any]) -> date | datetime | None:
    raw = data.get(name)
    spec = wf.definition.fields.get(name)
    if raw is None or spec is None:
        return None
    if spec.type is FieldType.DATETIME:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return counted_day(raw)  # a partial date counts as the last day of its period


__all__ = ["EARLY", "Early", "earliest", "met_early"]
