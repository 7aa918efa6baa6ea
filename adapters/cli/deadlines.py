"""Deadline commands: ``tick``, ``worker``, ``simulate`` (``deadlines`` is in ``agenda``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from opcatflow.adapters.anchor import (
    CHECKPOINT_EVERY,
    Anchor,
    Outbound,
    default_witness,
    signing_key,
)
from opcatflow.adapters.cli import agenda as agenda_commands
from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.agenda import instant
from opcatflow.adapters.cli.options import Json, parse_data, settings
from opcatflow.adapters.notifier import worker_jobs
from opcatflow.engine import Engine, FrozenClock, SystemClock
from opcatflow.engine.scheduler import Firing, Scheduler
from opcatflow.engine.simulate import simulate as simulate_timeline
from opcatflow.engine.worker import PeriodicJob, Worker

PRODID = "-//opcatflow//deadlines//EN"


def _instant(text: str, option: str) -> datetime:
    return instant(text, option)


def _print_firing(f: Firing) -> str:
    return (
        f"{out.when(f.due_at)}  {f.kind:<8}  {f.outcome:<8}  {f.workflow}  "
        f"{f.instance_id}  {f.deadline}" + (f"  ({f.trigger})" if f.trigger else "")
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
    checkpoint_send_to: Annotated[
        str | None,
        typer.Option(
            "--checkpoint-send-to",
            metavar="RECIPIENT",
            help="Also send each checkpoint through the outbox to this person or webhook "
            "endpoint of the recipients directory ($OPCATFLOW_NOTIFICATIONS). Exit 5 at start "
            "if the directory has no such recipient.",
        ),
    ] = None,
) -> None:
    """Run the deadline scheduler until stopped (Ctrl-C or SIGTERM), logging each firing; with
    $OPCATFLOW_NOTIFICATIONS set, the notification dispatcher runs in it too.

    On start it catches up on every deadline that fell due while nothing ran. Run several
    workers on one PostgreSQL database if you like: each timer still fires once. SIGHUP loads
    the workflow definitions again (files and deployed versions).
    """
    if checkpoint_send_to is not None and checkpoint_every <= 0:
        raise typer.BadParameter(
            "sends nothing with --checkpoint-every 0", param_hint="--checkpoint-send-to"
        )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with settings(ctx).engine() as engine:
        outbound = (
            Outbound.to(checkpoint_send_to, engine) if checkpoint_send_to is not None else None
        )
        reload_on_hangup(engine)
        jobs: list[PeriodicJob] = []
        if checkpoint_every > 0:
            anchor = Anchor(engine, witness or default_witness(), signing_key(), outbound)
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
    cal = opts.deadline_settings().calendar
    dated = ("due", "escalation", "refused")  # a deadline's end: people read its last day
    if as_json:
        out.print_json(
            [
                {**e.as_json(), "due_on": cal.last_day(e.at).isoformat()}
                if e.kind in dated
                else e.as_json()
                for e in timeline
            ]
        )
        return
    for e in timeline:
        local = cal.local(e.at).strftime("%Y-%m-%d %H:%M %Z")
        day = f" (last day {cal.last_day(e.at)})" if e.kind in dated else ""
        what: dict[str, Any] = {
            "enter": f"enter {e.state}",
            "reminder": f"reminder  {e.deadline} ({e.detail} before)",
            "due": f"due       {e.deadline}{day}",
            "escalation": f"escalate  {e.deadline}{day} -> fires {e.detail}",
            "refused": f"refused   {e.deadline}{day}: {e.detail}",
        }
        out.echo(f"{local}  {what[e.kind]}")


def register(app: typer.Typer) -> None:
    """Add the deadline commands to the ``opcatflow`` app."""
    agenda_commands.register(app)
    for name, command in (
        ("tick", tick),
        ("worker", worker),
        ("simulate", simulate),
    ):
        app.command(name)(command)
