"""``opcatflow report``: counts of complaints by institution, theme... to choose where to
visit; the recommendations and annual reports an NPM publishes (small counts suppressed);
``report rebuild`` builds the report projection again. No personal data in any of them."""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.files import write_text_output
from opcatflow.adapters.cli.options import Json, settings
from opcatflow.adapters.reports.csvfile import report_csv
from opcatflow.adapters.reports.html import report_html
from opcatflow.adapters.reports.text import report_text
from opcatflow.workflows.patterns import (
    COMPLAINT,
    DEFAULT_BY,
    all_complaints,
    count_complaints,
    grouping_problems,
    reference_fields,
)
from opcatflow.workflows.reporting import recommendations as rec
from opcatflow.workflows.reporting import service
from opcatflow.workflows.reporting.model import Report

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


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


FormatOption = Annotated[
    Format,
    typer.Option("--format", help="table (the terminal), json, csv or html (one page, charts)."),
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", metavar="FILE", help="Write it to FILE, not standard output."),
]


def _emit(report: Report, fmt: Format, output: Path | None) -> None:
    document = report.as_json()
    if fmt is Format.json:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    elif fmt is Format.csv:
        text = report_csv(document)
    elif fmt is Format.html:
        text = report_html(document)
    else:
        text = report_text(document)
    if output is None:
        typer.echo(text, nl=False)
        return
    write_text_output(output, "--output", lambda f: f.write(text))  # whole, or not at all
    out.echo(out.dim(f"wrote {output}"))


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"expected a date (YYYY-MM-DD), got {value!r}", param_hint=option
        ) from None


@report_app.command("recommendations")
def recommendations(
    ctx: typer.Context,
    *,
    by: Annotated[
        str,
        typer.Option(
            "--by",
            metavar="DIMENSION,...",
            help="Count by: " + ", ".join(rec.DIMENSIONS) + " (comma-separated).",
        ),
    ] = ",".join(rec.DEFAULT_BY),
    year: Annotated[
        int | None,
        typer.Option("--year", help="Only recommendations sent that year; status on 31 December."),
    ] = None,
    on: Annotated[
        str | None,
        typer.Option("--on", metavar="DATE", help="The day the status is taken (default: today)."),
    ] = None,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
) -> None:
    """Recommendations by place, authority, theme, source, implementation status and year."""
    dimensions = service.parse_by(by)
    day = _day(on, "--on")
    with settings(ctx).engine(existing=True) as engine:
        report = service.recommendations(engine, dimensions, year=year, on=day)
    _emit(report, fmt, output)


@report_app.command("annual")
def annual(
    ctx: typer.Context,
    *,
    year: Annotated[int, typer.Option("--year", help="The year the report covers.")],
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
) -> None:
    """The statistics of the annual report: visits, complaints, recommendations and their
    implementation, reprisal allegations, referrals."""
    with settings(ctx).engine(existing=True) as engine:
        report = service.annual(engine, year)
    _emit(report, fmt, output)


@report_app.command("rebuild")
def rebuild(ctx: typer.Context, as_json: Json = False) -> None:
    """Build the report projection again from every instance (one transaction)."""
    with settings(ctx).engine(existing=True) as engine:
        count = engine.rebuild_projection()
    if as_json:
        out.print_json({"instances": count})
    else:
        out.echo(f"report projection rebuilt from {out.plural(count, 'instance')}")
