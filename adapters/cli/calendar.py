"""``opcatflow calendar``: every engagement deadline across all cycles, with its rule."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.agenda import to_ical
from opcatflow.adapters.cli.files import write_output
from opcatflow.adapters.cli.options import Json, settings
from opcatflow.engine import Engine
from opcatflow.engine.agenda import AgendaEntry, DueRule, agenda, due_rule
from opcatflow.workflows.engagement import CYCLES


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected a date (YYYY-MM-DD), got {text!r}", param_hint=option
        ) from None


def engagement_calendar(
    engine: Engine, *, start: date | None, end: date | None, now: datetime
) -> list[tuple[AgendaEntry, DueRule]]:
    """Open obligations of the engagement cycles whose last day is between ``start`` and
    ``end`` (local days, inclusive), overdue ones included, soonest first, each with the rule
    it comes from."""
    result = []
    data: dict[str, Any] = {}
    for entry in agenda(engine, now=now, limit=1_000_000, outside=True):  # syncs outside
        day = entry.last_day
        if entry.workflow not in CYCLES or (start and day < start) or (end and day > end):
            continue
        if entry.instance_id not in data:
            data[entry.instance_id] = dict(engine.get(entry.instance_id).data)
        result.append((entry, due_rule(engine, entry, data[entry.instance_id])))
    return result


def calendar(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--from", help="From this day (YYYY-MM-DD).", metavar="DATE")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="Up to this day (YYYY-MM-DD).", metavar="DATE")
    ] = None,
    as_json: Json = False,
    ical: Annotated[
        Path | None, typer.Option("--ical", help="Write an iCalendar (RFC 5545) file instead.")
    ] = None,
) -> None:
    """Every engagement deadline (SPT, CAT, UPR, special procedures) in date order, with the
    rule each date comes from."""
    start, end = _day(since, "--from"), _day(until, "--to")
    with settings(ctx).engine(existing=True) as engine:
        now = engine.clock.now()
        entries = engagement_calendar(engine, start=start, end=end, now=now)
        cal = engine.settings.calendar
    if ical is not None:
        write_output(
            ical, "--ical", lambda fh: fh.write(to_ical([e for e, _ in entries], now, cal))
        )
        out.echo(f"wrote {out.plural(len(entries), 'deadline')} to {ical}")
    elif as_json:
        out.print_json(
            [
                {
                    **e.as_json(),
                    "rule": r.text,
                    "estimate": r.estimate,
                    "due_shown": r.shown or e.last_day.isoformat(),
                    "source": r.source,
                }
                for e, r in entries
            ]
        )
    elif not entries:
        out.echo("no engagement deadlines")
    else:
        rows = [
            [
                (r.shown or e.last_day.isoformat())
                + ("~" if r.estimate else "")
                + (" " + out.red("OVERDUE") if e.overdue else ""),
                e.workflow,
                e.instance_id,
                e.label or e.deadline,
                r.text,
                r.source or "",
            ]
            for e, r in entries
        ]
        header = [f"LAST DAY ({cal.timezone})", "CYCLE", "ID", "DEADLINE", "RULE", "SOURCE"]
        out.echo("\n".join(out.table(header, rows)))
        if any(r.estimate for _, r in entries):
            out.echo(out.dim("~ counted from an estimated date: enter the published one to fix it"))
