"""Upcoming and overdue deadlines, as staff see them: one line per armed due date."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import find_deadline
from opcatflow.engine.durations import ENTERED, SettingRef, parse_due
from opcatflow.engine.rows import TimerStatus
from opcatflow.engine.runtime import Engine
from opcatflow.engine.scheduler import SCHEDULER


@dataclass(frozen=True, slots=True)
class AgendaEntry:
    """One armed deadline (or, with reminders, one reminder) of one instance.

    Attributes:
        due_at: when the deadline is due (for a reminder: the deadline it announces).
        fires_at: when the scheduler acts on this row (the reminder's own time).
        roles: who can act on it: the roles that may move the instance on from its state,
            and those notified of this deadline.
    """

    timer_id: int
    instance_id: str
    workflow: str
    state: str
    deadline: str
    label: str | None
    kind: str
    due_at: datetime
    fires_at: datetime
    paused: bool
    overdue: bool
    roles: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "timer_id": self.timer_id,
            "instance_id": self.instance_id,
            "workflow": self.workflow,
            "state": self.state,
            "deadline": self.deadline,
            "label": self.label,
            "kind": self.kind,
            "due_at": self.due_at.isoformat(),
            "fires_at": self.fires_at.isoformat(),
            "paused": self.paused,
            "overdue": self.overdue,
            "roles": list(self.roles),
        }


def responsible_roles(wf: CompiledWorkflow, state: str, deadline: str) -> tuple[str, ...]:
    """Roles that may act in ``state``, plus the roles notified of ``deadline``."""
    roles = {
        r for (s, _), options in wf.options.items() if s == state for o in options for r in o.roles
    }
    for n in wf.definition.notifications:
        if n.on.deadline == deadline:
            for to in n.to:
                role = to if isinstance(to, str) else getattr(to, "role", None)
                if role:
                    roles.add(role)
    roles.discard(SCHEDULER)
    return tuple(sorted(roles))


def agenda(
    engine: Engine,
    *,
    now: datetime,
    workflow: str | None = None,
    state: str | None = None,
    role: str | None = None,
    within: timedelta | None = None,
    overdue_only: bool = False,
    reminders: bool = False,
    limit: int = 1000,
) -> list[AgendaEntry]:
    """Armed deadlines, soonest first.

    Args:
        now: what counts as overdue.
        within: only those due before ``now + within`` (overdue ones included).
        overdue_only: only those already due.
        reminders: include reminder rows too.
    """
    due_before = now if overdue_only else (now + within if within is not None else None)
    entries: list[AgendaEntry] = []
    with engine.store.read() as uow:
        rows = uow.timers.open_timers(
            workflow=workflow,
            state=state,
            reminders=reminders,
            due_before=due_before,
            limit=limit if role is None else limit * 10,
        )
    for row in rows:
        wf = engine.workflow(row.workflow_id, row.workflow_version)
        roles = responsible_roles(wf, row.state, row.deadline)
        if role is not None and role not in roles:
            continue
        spec = find_deadline(wf, row.state, row.deadline)
        entries.append(
            AgendaEntry(
                timer_id=row.id,
                instance_id=row.instance_id,
                workflow=row.workflow_id,
                state=row.state,
                deadline=row.deadline,
                label=spec.label if spec is not None else None,
                kind=row.kind,
                due_at=row.deadline_due,
                fires_at=row.due_at,
                paused=row.status == TimerStatus.PAUSED,
                overdue=row.status != TimerStatus.PAUSED and row.deadline_due <= now,
                roles=roles,
            )
        )
        if len(entries) >= limit:
            break
    return entries


@dataclass(frozen=True, slots=True)
class DueRule:
    """Where a due date comes from, in words: ``7 months before the session start of
    2027-01-25``. ``estimate`` is true when the anchor date is itself an estimate (flagged by
    a ``<field>_estimated`` value on the instance)."""

    text: str
    estimate: bool


def due_rule(engine: Engine, entry: AgendaEntry, data: Mapping[str, Any]) -> DueRule:
    """Explain ``entry``'s due date from its deadline declaration and the instance data."""
    wf = engine.workflow(entry.workflow)
    spec = find_deadline(wf, entry.state, entry.deadline)
    if spec is None:  # a state or deadline since removed from the definition
        return DueRule("armed under an earlier definition", False)
    if spec.published is not None and data.get(spec.published) is not None:
        return DueRule(f"published date ({_field_label(wf, spec.published)})", False)
    expr = parse_due(spec.due)
    duration = engine.settings.duration(expr.duration)
    source = f" [{expr.duration}]" if isinstance(expr.duration, SettingRef) else ""
    if expr.anchor == ENTERED:
        return DueRule(f"{duration}{source} after entering {entry.state!r}", False)
    estimate = bool(data.get(f"{expr.anchor}_estimated"))
    anchor = f"the {_field_label(wf, expr.anchor)} of {data.get(expr.anchor)}"
    text = f"{duration}{source} {expr.direction} {anchor}"
    return DueRule(text + (" (estimated)" if estimate else ""), estimate)


def _field_label(wf: CompiledWorkflow, name: str) -> str:
    spec = wf.definition.fields.get(name)
    label = spec.label if spec is not None and spec.label else name.replace("_", " ")
    return label[:1].lower() + label[1:]
