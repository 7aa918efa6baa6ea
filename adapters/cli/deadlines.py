"""Deadline commands: ``deadlines`` (with ``--ical``), ``tick``, ``worker``, ``simulate``."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from icalendar import Alarm, Calendar, Event

from opcatflow.adapters.anchor import CHECKPOINT_EVERY, Anchor, default_witness, signing_key
from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.files import write_output
from opcatflow.adapters.cli.options import Json, parse_data, settings
from opcatflow.adapters.notifier import worker_jobs
from opcatflow.engine import Engine, FrozenClock, SystemClock
from opcatflow.engine.agenda import AgendaEntry, agenda
from opcatflow.engine.calendar import WorkingCalendar
from opcatflow.engine.durations import parse_duration
from opcatflow.engine.scheduler import Firing, Scheduler
from opcatflow.engine.simulate import simulate as simulate_timeline
from opcatflow.engine.worker import PeriodicJob, Worker

PRODID = "-//opcatflow//deadlines//EN"


def _instant(text: str, option: str) -> datetime:
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
    reminders: Annotated[bool, typer.Option("--reminders", help="List reminders too.")] = False,
    ical: Annotated[
        Path | None,
        typer.Option(
            "--ical", help="Write them as an iCalendar (.ics) file to subscribe to.", metavar="FILE"
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 1000,
    now: Annotated[
        str | None,
        typer.Option("--now", help="As of this instant (ISO 8601) [default: now].", metavar="WHEN"),
    ] = None,
    as_json: Json = False,
) -> None:
    """List open deadlines, soonest first: an overdue one stays listed until it is met,
    waived or extended, or the case closes. Dates are last days in the NPM's calendar."""
    window = _window(within)
    clock = FrozenClock(_instant(now, "--now")) if now is not None else SystemClock()
    with settings(ctx).engine(clock=clock, existing=True) as engine:
        now = engine.clock.now()
        calendar = engine.settings.calendar
        entries = agenda(
            engine,
            now=now,
            workflow=workflow,
            state=state,
            role=role,
            within=window,
            overdue_only=overdue,
            reminders=reminders,
            limit=limit,
        )
    if ical is not None:
        write_output(ical, "--ical", lambda fh: fh.write(to_ical(entries, clock.now(), calendar)))
        count = len({(e.instance_id, e.deadline, e.due_at) for e in entries})
        out.echo(f"wrote {count} deadline(s) to {ical}")
        return
    if as_json:
        out.print_json([e.as_json() for e in entries])
    elif not entries:
        out.echo("no deadlines")
    else:
        rows = [
            [
                e.last_day.isoformat()
                + (f" {calendar.local(e.due_at):%H:%M}" if _timed(e, calendar) else ""),
                out.red("OVERDUE") if e.overdue else (e.status if e.kind == "due" else e.kind),
                e.workflow,
                e.instance_id[:8],
                e.state,
                e.deadline + (f" #{e.occurrence}" if e.occurrence > 1 else ""),
                e.owed_by or "",
                ", ".join(e.roles),
            ]
            for e in entries
        ]
        header = ["last day", "", "workflow", "instance", "state", "deadline", "owed by", "roles"]
        out.echo("\n".join(out.table(header, rows)))
        out.echo(out.dim(f"last days in {calendar.timezone}"))


def to_ical(entries: list[AgendaEntry], now: datetime, calendar: WorkingCalendar) -> bytes:
    """An RFC 5545 calendar: one event per deadline, with its listed reminders as alarms.

    A deadline counted in days is an all-day event on its last day (local date); one counted
    in hours is a 15-minute event at its due time.
    """
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "opcatflow deadlines")
    events: dict[tuple[str, str, int], Event] = {}
    for e in entries:
        key = (e.instance_id, e.deadline, e.occurrence)
        event = events.get(key)
        if event is None:
            event = Event()
            event.add("uid", f"{uuid.uuid5(uuid.NAMESPACE_URL, f'opcatflow:{key}')}@opcatflow")
            event.add("dtstamp", now)
            if not _timed(e, calendar):
                event.add("dtstart", e.last_day)
                event.add("dtend", e.last_day + timedelta(days=1))
            else:
                event.add("dtstart", e.due_at)
                event.add("dtend", e.due_at + timedelta(minutes=15))
            what = "OVERDUE" if e.overdue else ("Milestone" if e.kind == "milestone" else "Due")
            event.add("summary", f"{what}: {e.label or e.deadline} ({e.workflow}, {e.state})")
            event.add(
                "description",
                f"Instance {e.instance_id}\nState: {e.state}\nRoles: {', '.join(e.roles)}\n"
                f"Last day: {e.last_day.isoformat()} ({calendar.timezone})"
                + (f"\nOwed by: {e.owed_by}" if e.owed_by else "")
                + ("\nStill owed: overdue since its last day" if e.overdue else ""),
            )
            if e.paused:
                event.add("status", "TENTATIVE")
            events[key] = event
            cal.add_component(event)
        if e.kind == "reminder":
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", f"Reminder: {e.label or e.deadline}")
            alarm.add("trigger", e.fires_at, parameters={"VALUE": "DATE-TIME"})
            event.add_component(alarm)
    return bytes(cal.to_ical())


def _timed(e: AgendaEntry, calendar: WorkingCalendar) -> bool:
    # A period of hours falls due at a time of day; one of days at the end of its last day.
    return calendar.local(e.due_at).time() != datetime.min.time()


def _print_firing(f: Firing) -> str:
    return (
        f"{out.when(f.due_at)}  {f.kind:<8}  {f.outcome:<8}  {f.workflow}  "
        f"{f.instance_id[:8]}  {f.deadline}" + (f"  ({f.trigger})" if f.trigger else "")
    )


def tick(
    ctx: typer.Context,
    *,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="Process what is due at this instant (ISO 8601) [default: now].",
            metavar="WHEN",
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Timers per transaction.")] = 100,
    as_json: Json = False,
) -> None:
    """Process every deadline due now (or at --now), then exit: for cron and for tests."""
    clock = FrozenClock(_instant(now, "--now")) if now is not None else SystemClock()
    with settings(ctx).engine(clock=clock) as engine:
        report = Scheduler(engine, batch_size=batch).tick()
    if as_json:
        out.print_json({**report.summary(), "firings": [f.as_json() for f in report.firings]})
        return
    for f in report.firings:
        out.echo(_print_firing(f))
    out.echo(f"processed {len(report)} timer(s) due at {out.when(report.now)} UTC")


RELOAD_CHECK = 30.0
ReloadCheck = Annotated[
    float,
    typer.Option(
        "--reload-check",
        min=0.1,
        metavar="SECONDS",
        help="How often to look for definitions deployed or retired in the database (SIGHUP "
        "and POST /admin/reload load them at once).",
    ),
]


def worker(
    ctx: typer.Context,
    *,
    sweep: Annotated[
        float,
        typer.Option("--sweep", min=0.1, help="Seconds between sweeps for timers armed elsewhere."),
    ] = 60.0,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Timers per transaction.")] = 100,
    reload_check: ReloadCheck = RELOAD_CHECK,
    checkpoint_every: Annotated[
        float,
        typer.Option(
            "--checkpoint-every",
            min=0.0,
            metavar="SECONDS",
            help="Sign an audit checkpoint into the witness this often (0: never); a witness "
            "that cannot be written is logged as an error (audit_checkpoint_failed).",
        ),
    ] = CHECKPOINT_EVERY,
    witness: Annotated[
        Path | None,
        typer.Option(
            "--witness",
            file_okay=False,
            help="Folder the checkpoints go to [default: $OPCATFLOW_WITNESS, else "
            "checkpoints/ beside the key file].",
        ),
    ] = None,
) -> None:
    """Run the deadline scheduler until stopped (Ctrl-C or SIGTERM), logging each firing; with
    $OPCATFLOW_NOTIFICATIONS set, the notification dispatcher runs in it too.

    On start it catches up on every deadline that fell due while nothing ran. Run several
    workers on one PostgreSQL database if you like: each timer still fires once. SIGHUP loads
    the workflow definitions again (files and deployed versions).
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with settings(ctx).engine() as engine:
        reload_on_hangup(engine)
        jobs: list[PeriodicJob] = []
        if checkpoint_every > 0:
            anchor = Anchor(engine, witness or default_witness(), signing_key())
            jobs.append(anchor.job(checkpoint_every))
        background(engine, sweep=sweep, batch=batch, reload=reload_check, jobs=jobs).run_until(stop)


def background(
    engine: Engine,
    *,
    sweep: float,
    batch: int,
    jobs: Sequence[PeriodicJob] = (),
    reload: float = RELOAD_CHECK,
) -> Worker:
    """The work that runs beside the requests (``serve``) or alone (``worker``): the deadline
    scheduler, the notification dispatcher when configured, the check for newly deployed
    definitions every ``reload`` seconds, and ``jobs``."""
    dispatcher = worker_jobs(engine)  # the notification dispatcher, when configured
    check = PeriodicJob("definitions-check", engine.refresh, reload)
    return Worker(
        Scheduler(engine, batch_size=batch),
        sweep_seconds=sweep,
        jobs=[*dispatcher, check, *jobs],
    )


def reload_on_hangup(engine: Engine) -> None:
    """SIGHUP loads the definitions again, off the signal handler (it reads the database)."""

    def hangup(*_: object) -> None:
        threading.Thread(target=engine.reload, name="opcatflow-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, hangup)


def poll_catalogue(engine: Engine, seconds: float, stop: threading.Event) -> None:
    """Check for newly deployed definitions every ``seconds`` until ``stop`` is set (an API
    process that runs no worker)."""
    while not stop.wait(seconds):
        try:
            engine.refresh()
        except Exception as err:  # the database away: try again next time
            engine.log.warning("definitions_check_failed", error=str(err))


def simulate(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Workflow id.")],
    *,
    until: Annotated[
        str, typer.Option("--until", help="Show the timeline up to this date.", metavar="DATE")
    ],
    start: Annotated[
        str | None,
        typer.Option("--start", help="When the instance starts [default: now].", metavar="WHEN"),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Start data as JSON or @file (date fields anchor deadlines).",
            metavar="JSON|@FILE",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Show what a new instance would live through if nobody acted: every reminder, due date
    and escalation. Touches no database."""
    opts = settings(ctx)
    began = _instant(start, "--start") if start is not None else datetime.now(UTC)
    end = _instant(until, "--until")
    if len(until) <= 10:
        end = datetime.combine(date.fromisoformat(until), datetime.max.time(), UTC)
    wf = opts.catalog().get(workflow)
    timeline = simulate_timeline(
        wf, opts.deadline_settings(), start=began, until=end, data=parse_data(data)
    )
    if as_json:
        out.print_json([e.as_json() for e in timeline])
        return
    cal = opts.deadline_settings().calendar
    for e in timeline:
        local = cal.local(e.at).strftime("%Y-%m-%d %H:%M %Z")
        what: dict[str, Any] = {
            "enter": f"enter {e.state}",
            "reminder": f"reminder  {e.deadline} ({e.detail} before)",
            "due": f"due       {e.deadline}",
            "escalation": f"escalate  {e.deadline} -> fires {e.detail}",
            "refused": f"refused   {e.deadline}: {e.detail}",
        }
        out.echo(f"{local}  {what[e.kind]}")


def register(app: typer.Typer) -> None:
    """Add the deadline commands to the ``opcatflow`` app."""
    for name, command in (
        ("deadlines", deadlines),
        ("tick", tick),
        ("worker", worker),
        ("simulate", simulate),
    ):
        app.command(name)(command)
