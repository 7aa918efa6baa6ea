"""Upcoming and overdue deadlines, as staff see them: one line per open obligation."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import REMINDER, find_deadline
from opcatflow.engine.definition import DeadlineSpec
from opcatflow.engine.durations import ENTERED, SettingRef, Unit, parse_due
from opcatflow.engine.partial_dates import is_partial
from opcatflow.engine.rows import OPEN_OBLIGATION, Obligation, ObligationStatus
from opcatflow.engine.runtime import Engine
from opcatflow.engine.scheduler import SCHEDULER
from opcatflow.engine.settings import Settings, SettingsError
from opcatflow.engine.summary import summary_of

S = ObligationStatus


@dataclass(frozen=True, slots=True)
class AgendaEntry:
    """One open obligation of one instance (or, with reminders, one of its reminders).

    Attributes:
        due_at: when the obligation is due (for a reminder: the obligation it announces).
        last_day: the last day to meet it, in the NPM's calendar, fixed when the obligation
            was armed (``due_on`` in JSON, beside ``due_at``).
        fires_at: when the scheduler acts on it (a reminder's own time).
        status: the obligation's status (``pending``, ``due``, ``extended``, ``paused``).
        overdue: its due date has passed and it is still owed (listed until met, waived,
            extended or the case closes).
        roles: who can act on it: the roles that may move the instance on from its state,
            those its alerts go to, and those notified of it.
    """

    obligation_id: int
    instance_id: str
    workflow: str
    state: str
    deadline: str
    occurrence: int
    label: str | None
    kind: str
    status: str
    owed_by: str | None
    due_at: datetime
    last_day: date
    fires_at: datetime
    paused: bool
    overdue: bool
    roles: tuple[str, ...]
    summary: str | None = None
    timed: bool = False  # counted in hours: due at a time of day, not at the end of a day

    def as_json(self) -> dict[str, Any]:
        return {
            "obligation_id": self.obligation_id,
            "instance_id": self.instance_id,
            "workflow": self.workflow,
            "state": self.state,
            "deadline": self.deadline,
            "occurrence": self.occurrence,
            "label": self.label,
            "kind": self.kind,
            "status": self.status,
            "owed_by": self.owed_by,
            "due_at": self.due_at.isoformat(),
            "last_day": self.last_day.isoformat(),
            "due_on": self.last_day.isoformat(),
            "fires_at": self.fires_at.isoformat(),
            "paused": self.paused,
            "overdue": self.overdue,
            "roles": list(self.roles),
            "summary": self.summary,
            "timed": self.timed,
        }


def responsible_roles(wf: CompiledWorkflow, state: str, deadline: str) -> tuple[str, ...]:
    """Roles that may act in ``state``, plus those ``deadline``'s alerts go to and those
    notified of it."""
    roles = {
        r for (s, _), options in wf.options.items() if s == state for o in options for r in o.roles
    }
    recipients = [to for n in wf.definition.notifications if n.on.deadline == deadline
                  for to in n.to]  # fmt: skip
    declared = wf.deadlines.get(deadline)
    if declared is not None:
        recipients += [to for step in declared.spec.overdue_alerts for to in step.to]
    for to in recipients:
        role = to if isinstance(to, str) else getattr(to, "role", None)
        if role:
            roles.add(role)
    roles.discard(SCHEDULER)
    return tuple(sorted(roles))


AgendaKey = tuple[datetime, int]
"""Where an obligation sorts in the agenda: ``(due_at, obligation id)`` (a page's cursor)."""

_BATCH = 500  # rows read at a time while filling a page or counting what is left


@dataclass(frozen=True, slots=True)
class AgendaPage:
    """One page of the agenda.

    Attributes:
        entries: the page, soonest first (reminders beside their obligation).
        more: how many more obligations match after it.
        next_key: the key to read the next page after (``None``: nothing more).
    """

    entries: list[AgendaEntry]
    more: int
    next_key: AgendaKey | None


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
    outside: bool = False,
) -> list[AgendaEntry]:
    """Open obligations, soonest first: overdue ones stay listed until met, waived,
    extended or the case closes (the first page of :func:`agenda_page`)."""
    return agenda_page(
        engine, now=now, workflow=workflow, state=state, roles=None if role is None else {role},
        within=within, overdue_only=overdue_only, reminders=reminders, limit=limit, count=False,
        outside=outside,
    ).entries  # fmt: skip


def agenda_page(
    engine: Engine,
    *,
    now: datetime,
    workflow: str | None = None,
    state: str | None = None,
    roles: Collection[str] | None = None,
    within: timedelta | None = None,
    overdue_only: bool = False,
    reminders: bool = False,
    limit: int = 100,
    after: AgendaKey | None = None,
    count: bool = True,
    outside: bool = False,
) -> AgendaPage:
    """A page of open obligations, soonest first, after ``after``.

    Args:
        now: what counts as overdue.
        roles: only those one of these roles can act on or is told of.
        within: only those due before ``now + within`` (overdue ones included).
        overdue_only: only those already due (a milestone never is).
        reminders: include the reminders still to come too.
        count: count what matches after the page (``more``).
        outside: the listing leaves the NPM (a calendar feed), as a message does.

    An obligation whose due date an embargo withholds (``embargoes``: an unannounced
    visit's dates) is left out for ``roles`` it is withheld from, and when ``outside``:
    even its place in the order would tell the date.
    """
    due_before = now if overdue_only else (now + within if within is not None else None)
    # overdue: due, and waiting ones whose due date passed since the last sweep
    statuses = (S.DUE, S.PENDING, S.EXTENDED) if overdue_only else OPEN_OBLIGATION
    entries: list[AgendaEntry] = []
    more = 0
    key = after
    with engine.store.read() as uow:
        summaries: dict[str, str | None] = {}

        def summary(wf: CompiledWorkflow, instance_id: str) -> str | None:
            if wf.definition.summary_field is None:
                return None
            if instance_id not in summaries:
                summaries[instance_id] = summary_of(wf, uow.instances.get(instance_id).data)
            return summaries[instance_id]

        reader = None if outside else roles
        secret: dict[str, frozenset[str]] = {}  # instance -> deadlines withheld, read once

        def embargoed(wf: CompiledWorkflow, row: Obligation) -> bool:
            if not wf.definition.embargoes or (reader is None and not outside):
                return False
            if row.instance_id not in secret:
                instance = uow.instances.get(row.instance_id)
                secret[row.instance_id] = wf.withheld_deadlines(reader, instance)
            return row.deadline in secret[row.instance_id]

        while True:
            rows = uow.obligations.listing(
                statuses, workflow=workflow, state=state, due_before=due_before, limit=_BATCH,
                after=key,
            )  # fmt: skip
            for row in rows:
                wf = engine.workflow(row.workflow_id, row.workflow_version)
                listed = _entry(
                    wf, row, now, overdue_only=overdue_only, roles=roles, settings=engine.settings
                )
                if listed is None or embargoed(wf, row):
                    continue
                if len(entries) >= limit:
                    more += 1
                    continue
                entries.append(replace(listed, summary=summary(wf, row.instance_id)))
            if len(rows) < _BATCH or (more and not count):
                break
            key = (rows[-1].due_at, rows[-1].id)
        timers = []
        if reminders and entries:
            timers = uow.timers.open_timers(
                workflow=workflow,
                state=state,
                reminders=True,
                due_before=entries[-1].due_at,
                limit=len(entries) * 10 + 100,
            )
    by_id = {e.obligation_id: e for e in entries}
    last = (entries[-1].due_at, entries[-1].obligation_id) if entries else None
    for timer in timers:
        owner = by_id.get(timer.obligation_id or -1)
        if timer.kind != REMINDER or owner is None:
            continue
        entries.append(replace(owner, kind=REMINDER, fires_at=timer.due_at))
    entries.sort(key=lambda e: (e.due_at, e.obligation_id, e.kind != "due", e.fires_at))
    return AgendaPage(entries, more, last if more else None)


def _entry(
    wf: CompiledWorkflow,
    row: Obligation,
    now: datetime,
    *,
    overdue_only: bool,
    roles: Collection[str] | None,
    settings: Settings,
) -> AgendaEntry | None:
    responsible = responsible_roles(wf, row.state, row.deadline)
    if roles is not None and not set(roles) & set(responsible):
        return None
    declared = wf.deadlines.get(row.deadline)
    spec = declared.spec if declared is not None else None
    overdue = row.status is S.DUE or (row.status is not S.PAUSED and row.due_at <= now)
    milestone = spec is not None and spec.kind == "milestone"
    if overdue_only and (milestone or not overdue):
        return None  # a milestone is never overdue
    calendar = settings.calendar
    # the day fixed when it was armed; a row from before obligations stored none
    last_day = row.last_day or calendar.last_day(row.due_at)
    timed = spec is not None and _in_hours(spec, settings)
    return AgendaEntry(
        obligation_id=row.id,
        instance_id=row.instance_id,
        workflow=row.workflow_id,
        state=row.state,
        deadline=row.deadline,
        occurrence=row.occurrence,
        label=spec.label if spec is not None else None,
        kind="milestone" if milestone else "due",
        status=str(row.status),
        owed_by=spec.owed_by if spec is not None else None,
        due_at=row.due_at,
        last_day=last_day,
        fires_at=row.due_at,
        paused=row.status is S.PAUSED,
        overdue=overdue and not milestone,
        roles=responsible,
        timed=timed and row.due_at != calendar.end_of_day(last_day),
    )


def _in_hours(spec: DeadlineSpec, settings: Settings) -> bool:
    try:
        return settings.duration(parse_due(spec.due).duration).unit is Unit.HOURS
    except (ValueError, SettingsError):  # a definition stored before: shown as a day
        return False


@dataclass(frozen=True, slots=True)
class DueRule:
    """Where a due date comes from, in words: ``7 months before the session start of
    2027-01-25``. ``estimate`` is true when the anchor date is itself an estimate (flagged by
    a ``<field>_estimated`` value on the instance). ``shown``: the due date as a person
    reads it when the Committee gave only a year or a month (``2019``), else ``None`` (the
    last day). ``source``: where a published date comes from (its ``<field>_source``)."""

    text: str
    estimate: bool
    shown: str | None = None
    source: str | None = None


def due_rule(engine: Engine, entry: AgendaEntry, data: Mapping[str, Any]) -> DueRule:
    """Explain ``entry``'s due date from its deadline declaration and the instance data."""
    wf = engine.workflow(entry.workflow)
    spec = find_deadline(wf, entry.deadline)
    if spec is None:  # a state or deadline since removed from the definition
        return DueRule("armed under an earlier definition", False)
    if spec.published is not None and data.get(spec.published) is not None:
        value = data[spec.published]
        return DueRule(
            f"published date ({_field_label(wf, spec.published)})",
            False,
            shown=value if is_partial(value) else None,
            source=_source(data, spec.published),
        )
    expr = parse_due(spec.due)
    duration = engine.settings.duration(expr.duration)
    source = f" [{expr.duration}]" if isinstance(expr.duration, SettingRef) else ""
    if expr.anchor == ENTERED:
        return DueRule(f"{duration}{source} after entering {entry.state!r}", False)
    estimate = bool(data.get(f"{expr.anchor}_estimated"))
    value = data.get(expr.anchor)
    anchor = f"the {_field_label(wf, expr.anchor)} of {value}"
    if is_partial(value):
        anchor += " (counted from the period's last day)"
    text = f"{duration}{source} {expr.direction} {anchor}"
    return DueRule(
        text + (" (estimated)" if estimate else ""),
        estimate,
        source=_source(data, expr.anchor),
    )


def _source(data: Mapping[str, Any], name: str) -> str | None:
    """The source recorded for a published date: its ``<field>_source`` (a document symbol
    or a URL), if the definition has one and it is filled."""
    value = data.get(f"{name}_source")
    return value if isinstance(value, str) and value else None


def _field_label(wf: CompiledWorkflow, name: str) -> str:
    spec = wf.definition.fields.get(name)
    label = spec.label if spec is not None and spec.label else name.replace("_", " ")
    if label[1:2].isupper():  # an acronym ("SPT report ...") keeps its capitals
        return label
    return label[:1].lower() + label[1:]
