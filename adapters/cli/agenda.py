"""``deadlines``: open obligations a page at a time (or as iCalendar), and ``deadlines rearm``.

Every date a person reads here is an obligation's last day in the NPM's calendar and time
zone, as fixed when the obligation was armed; the column header names the zone. Ids are
printed whole (``show``, ``fire``, ``history``, ``waive`` take them, or 8+ characters of them).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from icalendar import Alarm, Calendar, Event

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.files import write_output
from opcatflow.adapters.cli.options import Actor, Json, Role, settings
from opcatflow.adapters.paging import (
    BadCursor,
    decode_agenda_cursor,
    encode_agenda_cursor,
    more_text,
)
from opcatflow.engine import Engine, FrozenClock, SystemClock
from opcatflow.engine.agenda import AgendaEntry, AgendaKey, agenda_page
from opcatflow.engine.calendar import WorkingCalendar
from opcatflow.engine.durations import parse_duration
from opcatflow.engine.filters import check_role, check_state, check_workflow
from opcatflow.engine.rearm import rearm as rearm_obligations

PRODID = "-//opcatflow//deadlines//EN"


def instant(text: str, option: str) -> datetime:
    """An ISO 8601 instant from the command line (a date alone: its start, in UTC)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"not an ISO 8601 date or time: {text!r}", param_hint=option
        ) from None
    if value.tzinfo is None:
        if len(text) <= 10:  # a date: its start, in UTC
            return value.replace(tzinfo=UTC)
        raise typer.BadParameter(
            "give a UTC offset, e.g. 2026-03-02T09:00+00:00", param_hint=option
        )
    return value.astimezone(UTC)


def _window(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        duration = parse_duration(text)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--within") from None
    days = {"hours": 1 / 24, "days": 1, "working_days": 1.4, "weeks": 7, "months": 31, "years": 366}
    return timedelta(days=duration.amount * days[duration.unit.value])


def _after(text: str | None) -> AgendaKey | None:
    if text is None:
        return None
    try:
        return decode_agenda_cursor(text)
    except BadCursor as err:
        raise typer.BadParameter(str(err), param_hint="--after") from None


def check_filters(
    engine: Engine, workflow: str | None, state: str | None, roles: list[str]
) -> None:
    """A workflow, state or role no workflow has is an error (exit 2), not an empty list."""
    scope = list(engine.catalog)
    if workflow is not None:
        check_workflow(workflow, (wf.id for wf in scope))
        scope = [wf for wf in scope if wf.id == workflow]
    if state is not None:
        check_state(state, scope)
    for role in roles:
        check_role(role, scope)


def deadlines(
    ctx: typer.Context,
    *,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only in this state.")] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="Only those this role can act on or is told of.")
    ] = None,
    within: Annotated[
        str | None,
        typer.Option(
            "--within", help="Only due within this period, e.g. '14 days'.", metavar="PERIOD"
        ),
    ] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only those already due.")] = False,
    reminders: Annotated[
        bool, typer.Option("--reminders", help="List reminders too, with when they fire.")
    ] = False,
    ical: Annotated[
        Path | None,
        typer.Option(
            "--ical", help="Write them as an iCalendar (.ics) file to subscribe to.", metavar="FILE"
        ),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(
            "--after", help="The next page: the cursor the previous page printed.", metavar="CURSOR"
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="At most this many.")
    ] = 100,
    now: Annotated[
        str | None,
        typer.Option("--now", help="As of this instant (ISO 8601) [default: now].", metavar="WHEN"),
    ] = None,
    as_json: Json = False,
) -> None:
    """List open deadlines, soonest first, a page at a time: an overdue one stays listed until
    it is met, waived or extended, or the case closes. Dates are last days in the NPM's
    calendar and time zone, fixed when each obligation was armed.

    A workflow, state or role no workflow has is an error (exit 2), not an empty list.
    """
    if ctx.invoked_subcommand is not None:
        return
    window = _window(within)
    key = _after(after)
    clock = FrozenClock(instant(now, "--now")) if now is not None else SystemClock()
    with settings(ctx).engine(clock=clock, existing=True) as engine:
        check_filters(engine, workflow, state, [role] if role else [])
        at = engine.clock.now()
        calendar = engine.settings.calendar
        page = agenda_page(
            engine, now=at, workflow=workflow, state=state, roles=[role] if role else None,
            within=window, overdue_only=overdue, reminders=reminders, limit=limit, after=key,
            outside=ical is not None,  # a calendar syncs to services outside the NPM
        )  # fmt: skip
    entries = page.entries
    cursor = encode_agenda_cursor(page.next_key) if page.next_key is not None else None
    if ical is not None:
        write_output(ical, "--ical", lambda fh: fh.write(to_ical(entries, at, calendar)))
        count = len({(e.instance_id, e.deadline, e.occurrence) for e in entries})
        out.echo(f"wrote {out.plural(count, 'deadline')} to {ical}")
        if cursor is not None:
            out.echo(out.dim(f"{more_text(page.more)}: repeat with --after {cursor}"))
        return
    if as_json:
        out.print_json(
            {"items": [e.as_json() for e in entries], "more": page.more, "next_cursor": cursor}
        )
        return
    if not entries:
        out.echo("no deadlines")
        return
    out.echo("\n".join(agenda_table(entries, calendar)))
    if cursor is not None:
        out.echo(out.dim(f"{more_text(page.more)}: repeat with --after {cursor}"))


def agenda_table(entries: list[AgendaEntry], calendar: WorkingCalendar) -> list[str]:
    """The deadlines as a table: the last day (a reminder's row: when it fires), whole ids,
    and a SUMMARY column when a workflow declares a ``summary_field``."""
    zone = calendar.timezone
    rows = []
    for e in entries:
        if e.kind == "reminder":
            day = f"{calendar.local(e.fires_at):%Y-%m-%d %H:%M}"
            status = f"reminder of {e.last_day.isoformat()}"
        else:
            day = e.last_day.isoformat() + (f" {calendar.local(e.due_at):%H:%M}" if e.timed else "")
            status = out.red("OVERDUE") if e.overdue else (e.status if e.kind == "due" else e.kind)
        rows.append(
            [
                day,
                status,
                e.instance_id,
                e.workflow,
                e.state,
                e.deadline + (f" #{e.occurrence}" if e.occurrence > 1 else ""),
                e.owed_by or "",
                ", ".join(e.roles),
            ]
        )
    header = [f"LAST DAY ({zone})", "", "ID", "WORKFLOW", "STATE", "DEADLINE", "OWED BY", "ROLES"]
    if any(e.summary for e in entries):
        header.append("SUMMARY")
        rows = [[*r, e.summary or ""] for r, e in zip(rows, entries, strict=True)]
    return out.table(header, rows)


def to_ical(entries: list[AgendaEntry], now: datetime, calendar: WorkingCalendar) -> bytes:
    """An RFC 5545 calendar: one event per obligation, with its listed reminders as alarms.

    A deadline counted in days is an all-day event on its last day (the local date fixed
    when it was armed); one counted in hours is a 15-minute event at its due time. Each
    event's UID is its obligation's (instance, deadline, occurrence), and its title names
    the case (its summary, else the start of its id), so two cases never look alike.
    """
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "opcatflow deadlines")
    cal.add("x-wr-timezone", calendar.timezone)
    events: dict[tuple[str, str, int], Event] = {}
    for e in entries:
        key = (e.instance_id, e.deadline, e.occurrence)
        event = events.get(key)
        if event is None:
            event = _event(e, key, now, calendar)
            events[key] = event
            cal.add_component(event)
        if e.kind == "reminder":
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", f"Reminder: {e.label or e.deadline}")
            alarm.add("trigger", e.fires_at, parameters={"VALUE": "DATE-TIME"})
            event.add_component(alarm)
    return bytes(cal.to_ical())


def _event(
    e: AgendaEntry, key: tuple[str, str, int], now: datetime, calendar: WorkingCalendar
) -> Event:
    event = Event()
    event.add("uid", f"{uuid.uuid5(uuid.NAMESPACE_URL, f'opcatflow:{key}')}@opcatflow")
    event.add("dtstamp", now)
    if not e.timed:
        event.add("dtstart", e.last_day)
        event.add("dtend", e.last_day + timedelta(days=1))
    else:
        event.add("dtstart", e.due_at)
        event.add("dtend", e.due_at + timedelta(minutes=15))
    what = "OVERDUE" if e.overdue else ("Milestone" if e.kind == "milestone" else "Due")
    case = e.summary or e.instance_id[:8]
    occurrence = f" #{e.occurrence}" if e.occurrence > 1 else ""
    event.add("summary", f"{what}: {e.label or e.deadline}{occurrence} ({e.workflow} {case})")
    event.add(
        "description",
        f"Instance {e.instance_id}\nState: {e.state}\nRoles: {', '.join(e.roles)}\n"
        f"Last day: {e.last_day.isoformat()} ({calendar.timezone})"
        + (f"\nOwed by: {e.owed_by}" if e.owed_by else "")
        + ("\nStill owed: overdue since its last day" if e.overdue else ""),
    )
    if e.paused:
        event.add("status", "TENTATIVE")
    return event


def rearm(
    ctx: typer.Context,
    *,
    reason: Annotated[
        str, typer.Option("--reason", help="Why (required; kept in each case's audit trail).")
    ],
    actor: Actor,
    role: Role,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow.")] = None,
    instance_id: Annotated[
        str | None,
        typer.Option("--instance", help="Only this case (its id, or 8+ characters of it)."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="As of this instant (ISO 8601) [default: now].", metavar="WHEN"),
    ] = None,
    as_json: Json = False,
) -> None:
    """Count waiting obligations again under the settings as they are now (changed durations,
    holidays or time zone), store each new last day and audit it with the reason.

    Armed obligations keep their last day until this is run: overdue, extended and paused
    ones are left as they are.
    """
    if not reason.strip():
        raise typer.BadParameter("give a reason: re-arming is audited", param_hint="--reason")
    clock = FrozenClock(instant(now, "--now")) if now is not None else SystemClock()
    with settings(ctx).engine(clock=clock, existing=True) as engine:
        if workflow is not None:
            check_filters(engine, workflow, None, [])
        case = engine.resolve_id(instance_id) if instance_id is not None else None
        done = rearm_obligations(
            engine, reason=reason, actor=actor, role=role, workflow=workflow, instance_id=case
        )
        zone = engine.settings.calendar.timezone
    if as_json:
        out.print_json({"rearmed": [r.as_json() for r in done], "timezone": zone})
        return
    for r in done:
        late = "  " + out.red("OVERDUE") if r.overdue else ""
        out.echo(
            f"{r.instance_id}  {r.deadline} #{r.occurrence}  last day {r.was or '-'} "
            f"{out.ARROW} {r.now}{late}"
        )
    out.echo(f"re-armed {out.plural(len(done), 'obligation')} (last days in {zone})")


def register(app: typer.Typer) -> None:
    """Add ``deadlines`` (listing by default) and ``deadlines rearm`` to the app."""
    group = typer.Typer(
        name="deadlines",
        invoke_without_command=True,
        no_args_is_help=False,
        help=deadlines.__doc__,
    )
    group.callback(invoke_without_command=True)(deadlines)
    group.command("rearm")(rearm)
    app.add_typer(group, name="deadlines")
