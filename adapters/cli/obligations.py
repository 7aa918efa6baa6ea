"""``waive`` and ``extend``: a person's decision on an obligation, with a reason, audited."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.options import Actor, Json, Role, settings
from opcatflow.engine.rows import Obligation

InstanceId = Annotated[
    str, typer.Argument(help="The instance id (or its first 8+ characters).", metavar="ID")
]
Deadline = Annotated[str, typer.Argument(help="The deadline id, e.g. acknowledge.")]
Why = Annotated[str, typer.Option("--reason", help="Why (required; kept in the audit trail).")]
Occurrence = Annotated[
    int | None,
    typer.Option("--occurrence", min=1, help="Which occurrence [default: the open one]."),
]


def _print(row: Obligation, as_json: bool) -> None:
    if as_json:
        out.print_json(row.as_json())
        return
    day = row.last_day.isoformat() if row.last_day else "-"
    out.echo(f"{row.deadline} #{row.occurrence} of {row.instance_id}: {row.status}")
    out.echo(f"  last day  {day}")


def waive(
    ctx: typer.Context,
    instance_id: InstanceId,
    deadline: Deadline,
    *,
    actor: Actor,
    role: Role,
    reason: Why,
    occurrence: Occurrence = None,
    as_json: Json = False,
) -> None:
    """Waive an obligation (a role of its 'waivable_by'): no longer owed, listed or alerted."""
    with settings(ctx).engine(existing=True) as engine:
        instance_id = engine.resolve_id(instance_id)
        row = engine.waive(
            instance_id, deadline, actor=actor, role=role, reason=reason, occurrence=occurrence
        )
    _print(row, as_json)


def extend(
    ctx: typer.Context,
    instance_id: InstanceId,
    deadline: Deadline,
    *,
    to: Annotated[str, typer.Option("--to", help="The new last day (YYYY-MM-DD).", metavar="DATE")],
    actor: Actor,
    role: Role,
    reason: Why,
    occurrence: Occurrence = None,
    as_json: Json = False,
) -> None:
    """Grant an obligation a later last day (a role of its 'extendable_by'): its alerts stop
    until the new day has passed."""
    try:
        last_day = date.fromisoformat(to)
    except ValueError:
        raise typer.BadParameter(f"expected a date (YYYY-MM-DD), got {to!r}", "--to") from None
    with settings(ctx).engine(existing=True) as engine:
        instance_id = engine.resolve_id(instance_id)
        row = engine.extend(
            instance_id, deadline, actor=actor, role=role, reason=reason, last_day=last_day,
            occurrence=occurrence,
        )  # fmt: skip
    _print(row, as_json)


def register(app: typer.Typer) -> None:
    """Add ``waive`` and ``extend`` to the ``opcatflow`` app."""
    app.command("waive")(waive)
    app.command("extend")(extend)
