"""``opcatflow report complaints``: counts of complaints by institution, theme... (no personal
data), to choose where to visit."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.options import Json, settings
from opcatflow.workflows.patterns import (
    COMPLAINT,
    DEFAULT_BY,
    all_complaints,
    count_complaints,
    grouping_problems,
    reference_fields,
)

report_app = typer.Typer(
    help="Counts that guide prevention work; they carry no personal data.",
    no_args_is_help=True,
)

NOT_RECORDED = "(not recorded)"


def _since(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"expected a date (YYYY-MM-DD), got {value!r}", param_hint="--since"
        ) from None


@report_app.command("complaints")
def complaints(
    ctx: typer.Context,
    *,
    by: Annotated[
        str,
        typer.Option(
            "--by",
            metavar="FIELD,...",
            help="Fields to count by, comma-separated (plain fields of the complaint workflow: "
            "institution, theme, complaint_type, channel, source, seriousness...).",
        ),
    ] = ",".join(DEFAULT_BY),
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="DATE", help="Only complaints received on or after."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Count complaints by institution, theme or other plain fields: counts only, never who."""
    fields = tuple(name.strip() for name in by.split(",") if name.strip())
    cutoff = _since(since)
    run = settings(ctx)
    problems = grouping_problems(run.catalog().get(COMPLAINT), fields)
    if problems:
        raise typer.BadParameter("; ".join(problems), param_hint="--by")
    refs = reference_fields(run.catalog().get(COMPLAINT), fields)
    with run.engine(existing=True) as engine:
        complaints = list(all_complaints(engine))
        named = {c.data.get(n) for c in complaints for n in refs} - {None}
        entries = engine.registers.titles(str(v) for v in named)
        counts = count_complaints(complaints, fields, cutoff, entries)
    if as_json:
        out.print_json(counts.as_json())
        return
    rows = [
        [*(NOT_RECORDED if v is None else str(counts.titles.get(v, v)) for v in values), str(count)]
        for values, count in counts.groups
    ]
    if rows:
        out.echo("\n".join(out.table([*fields, "complaints"], rows)))
    scope = f" received since {cutoff.isoformat()}" if cutoff else ""
    out.echo(out.dim(f"{out.plural(counts.total, 'complaint')}{scope}"))
