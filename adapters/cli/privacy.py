"""``erase``, ``subject erase|export``, ``retention`` and ``hold set|clear``: erasure by
crypto-shredding, subject access and retention (docs/privacy.md)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.files import write_text_output
from opcatflow.adapters.cli.options import Actor, Json, ReadReason, settings
from opcatflow.engine.erasure import Erasure, erase, erase_subject
from opcatflow.engine.readlog import read_log
from opcatflow.engine.retention import apply_retention, due, hold, release
from opcatflow.engine.subject_access import export_subject

subject_app = typer.Typer(help="Find, export or erase everything about one person.")
hold_app = typer.Typer(help="Legal holds: a held case is not erased by retention.")

InstanceId = Annotated[str, typer.Argument(help="The instance id (or an 8+ character prefix).")]
Subject = Annotated[
    str,
    typer.Argument(
        help="The person's id as the workflows' subject field holds it (a name, a file "
        "number); compared ignoring case and extra spaces.",
        metavar="SUBJECT",
    ),
]
Why = Annotated[
    str,
    typer.Option(
        "--reason",
        help="Why (required; kept in clear in the audit trail: do not name the person).",
        metavar="TEXT",
    ),
]
Basis = Annotated[
    str,
    typer.Option(
        "--legal-basis",
        help="The law or decision the erasure rests on (required; kept in clear).",
        metavar="TEXT",
    ),
]
AdminRole = Annotated[
    str,
    typer.Option(
        "--role",
        envvar="OPCATFLOW_ROLE",
        help="The role the actor acts in: admin, or one of the workflow's 'erasable_by'.",
        metavar="ROLE",
    ),
]


def _print_erasures(erasures: list[Erasure], as_json: bool) -> None:
    if as_json:
        out.print_json({"erased": [e.as_json() for e in erasures]})
        return
    for e in erasures:
        out.echo(
            f"erased {e.instance_id} ({e.workflow}): {out.plural(len(e.fields), 'field')}, "
            f"{out.plural(e.messages, 'message')} emptied, "
            f"{out.plural(e.cancelled, 'obligation')} cancelled"
        )
        if e.children:
            out.echo(
                out.dim(
                    f"  it opened {', '.join(c[:8] for c in e.children)}: not erased with it "
                    "(erase them by id, or by subject)"
                )
            )
    if not erasures:
        out.echo("nothing to erase: no case concerns this subject")


def erase_instance(
    ctx: typer.Context,
    instance_id: InstanceId,
    *,
    actor: Actor,
    reason: Why,
    legal_basis: Basis,
    role: AdminRole = "admin",
    as_json: Json = False,
) -> None:
    """Erase one case by crypto-shredding: its keys are destroyed, its personal values read
    as [erased], its unsent messages are dropped; its audit trail still verifies."""
    with settings(ctx).engine(existing=True) as engine:
        found = engine.resolve_id(instance_id)
        done = erase(engine, found, actor=actor, role=role, reason=reason, legal_basis=legal_basis)
    _print_erasures([done], as_json)


@subject_app.command("erase")
def subject_erase(
    ctx: typer.Context,
    subject: Subject,
    *,
    actor: Actor,
    reason: Why,
    legal_basis: Basis,
    role: AdminRole = "admin",
    as_json: Json = False,
) -> None:
    """Erase every case whose subject field holds this person (found by its blind index)."""
    with settings(ctx).engine(existing=True) as engine:
        done = erase_subject(
            engine, subject, actor=actor, role=role, reason=reason, legal_basis=legal_basis
        )
    _print_erasures(done, as_json)


@subject_app.command("export")
def subject_export(
    ctx: typer.Context,
    subject: Subject,
    *,
    actor: Actor,
    role: AdminRole = "admin",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
    reason: ReadReason = None,
) -> None:
    """Everything held about one person (subject access), decrypted, as JSON: each case,
    its audit trail and the cases it opened; logged in the read log."""
    with settings(ctx).engine(existing=True) as engine:
        found = export_subject(
            engine, subject, actor=actor, role=role, channel="cli", reason=reason
        )
    if output is None:
        out.print_json(found)
        return
    text = json.dumps(found, indent=2, ensure_ascii=False) + "\n"
    write_text_output(output, "--output", lambda fh: fh.write(text))
    out.echo(f"wrote {out.plural(len(found['cases']), 'case')} to {output}")


def retention(
    ctx: typer.Context,
    *,
    show_due: Annotated[
        bool, typer.Option("--due", help="List the cases retention will erase (the default).")
    ] = False,
    within: Annotated[
        int,
        typer.Option("--within", min=0, help="With --due: how many days ahead to look."),
    ] = 30,
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Erase now what is due (the scheduler does it daily)."),
    ] = False,
    as_json: Json = False,
) -> None:
    """Cases whose retention ('retention: 5 years after closed') ends: listed ahead of time
    with their last day kept, or erased with --apply."""
    if apply and show_due:
        raise typer.BadParameter("give --due or --apply, not both", param_hint="--apply")
    with settings(ctx).engine(existing=True) as engine:
        if apply:
            done = apply_retention(engine)
        else:
            today = engine.settings.calendar.local_date(engine.clock.now())
            listed = due(engine, through=today + timedelta(days=within))
    if apply:
        _print_erasures(done, as_json)
        return
    if as_json:
        out.print_json({"due": [d.as_json() for d in listed]})
        return
    for d in listed:
        held = out.red("  held") if d.held else ""
        out.echo(
            f"{d.instance_id}  {d.workflow:<16} kept until {d.kept_until}  "
            f"(closed {d.closed_on}, {d.retention}){held}"
        )
    out.echo(out.dim(f"{out.plural(len(listed), 'case')} due within {within} days"))


@hold_app.command("set")
def hold_set(
    ctx: typer.Context,
    instance_id: InstanceId,
    *,
    actor: Actor,
    reason: Why,
    role: AdminRole = "admin",
) -> None:
    """Put a case under a legal hold: retention will not erase it."""
    with settings(ctx).engine(existing=True) as engine:
        found = engine.resolve_id(instance_id)
        changed = hold(engine, found, actor=actor, role=role, reason=reason)
    out.echo(f"{found}: {'held' if changed else 'already held'}")


@hold_app.command("clear")
def hold_clear(
    ctx: typer.Context,
    instance_id: InstanceId,
    *,
    actor: Actor,
    reason: Why,
    role: AdminRole = "admin",
) -> None:
    """Lift a case's legal hold: retention applies again."""
    with settings(ctx).engine(existing=True) as engine:
        found = engine.resolve_id(instance_id)
        changed = release(engine, found, actor=actor, role=role, reason=reason)
    out.echo(f"{found}: {'released' if changed else 'was not held'}")


def access_log(
    ctx: typer.Context,
    *,
    instance: Annotated[
        str | None,
        typer.Option("--instance", help="Only reads of this instance (id or 8+ prefix)."),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only reads by this actor.", metavar="NAME")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only reads from this day on (YYYY-MM-DD, in the NPM's time zone).",
            metavar="DATE",
        ),
    ] = None,
    after: Annotated[int, typer.Option("--after", min=0, help="Only entries after this id.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    as_json: Json = False,
) -> None:
    """The read log: who read personal values, in which role, of which case, which fields,
    and why (oldest first; page with --after the last id)."""
    try:
        day = date.fromisoformat(since) if since is not None else None
    except ValueError:
        raise typer.BadParameter(
            f"expected a date (YYYY-MM-DD), got {since!r}", "--since"
        ) from None
    with settings(ctx).engine(existing=True) as engine:
        found = engine.resolve_id(instance) if instance is not None else None
        start = engine.settings.calendar.start_of_day(day) if day is not None else None
        entries = read_log(
            engine, instance_id=found, actor=actor, since=start, after=after, limit=limit
        )
    if as_json:
        out.print_json({"entries": [e.as_json() for e in entries]})
        return
    for e in entries:
        why = f"  why: {e.reason}" if e.reason else ""
        out.echo(
            f"{e.id:>6}  {out.when(e.at)}  {e.actor} ({e.role}) {e.channel} {e.what} "
            f"{e.instance_id or 'all instances'}: {', '.join(e.fields)}{why}"
        )
    out.echo(out.dim(f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'}"))


def register(app: typer.Typer) -> None:
    app.command("access-log")(access_log)
    app.command("erase")(erase_instance)
    app.add_typer(subject_app, name="subject")
    app.command("retention")(retention)
    app.add_typer(hold_app, name="hold")
