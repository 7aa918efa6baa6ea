"""``opcatflow import recommendations FILE``: a backlog of recommendations, all or nothing.

Every row is checked first (its columns, then each value against its field), then the rows
are entered through the engine in one unit of work as the role ``import``; any problem, and
nothing is imported: each is printed as ``FILE:LINE: message`` (the step that failed
first: ``start``, ``assess``...) on standard error, and the command exits 11, as
``import register`` does. What gets imported is summed up on standard output:
the recommendations by state, and the obligations recorded as already overdue (a reply or a
follow-up check whose last day passed before the import) by deadline.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.errors import refuse_rows
from opcatflow.adapters.cli.options import Actor, Json, Reason, settings
from opcatflow.adapters.recommendation_rows import ROLE, plan_rows
from opcatflow.adapters.rowfile import RowFileError, RowProblem, read_rows
from opcatflow.engine.batch import BatchFailed, Entered, enter_cases


def recommendations(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="A .csv or .json file, one recommendation per row.", metavar="FILE"),
    ],
    *,
    actor: Actor = "import",
    reason: Reason = None,
    as_json: Json = False,
) -> None:
    """Import a backlog of recommendations (columns: docs/recommendations.md): each row
    starts one and fires it to its state as the role `import`, with the dates of the source
    (sent, replied, assessed, closed). Checked whole first: any problem, every one is
    listed with its line and nothing is imported (exit 11)."""
    opts = settings(ctx)
    try:
        rows = read_rows(file)
    except RowFileError as err:
        raise refuse_rows(str(file), err.problems, 0) from None
    cases, problems = plan_rows(rows)
    if problems:
        raise refuse_rows(str(file), problems, len(rows))
    with opts.engine() as engine:
        try:
            entered = enter_cases(engine, cases, actor=actor, role=ROLE, reason=reason)
        except BatchFailed as err:
            failed = [RowProblem(f.line, f"{f.step}: {f.message}") for f in err.failures]
            raise refuse_rows(str(file), failed, len(rows)) from None
    summary = summarise(entered)
    if as_json:
        out.print_json({**asdict(summary), "instances": [e.instance_id for e in entered]})
        return
    states = ", ".join(f"{n} {state}" for state, n in sorted(summary.states.items()))
    out.echo(f"imported {summary.imported} recommendation(s): {states or 'none'}")
    overdue = summary.overdue
    if overdue:
        listed = ", ".join(f"{n} {deadline}" for deadline, n in sorted(overdue.items()))
        out.echo(f"already overdue, recorded as due: {listed} (opcatflow deadlines --overdue)")


@dataclass(frozen=True)
class Summary:
    imported: int
    states: dict[str, int]
    overdue: dict[str, int]


def summarise(entered: list[Entered]) -> Summary:
    """How many were imported, by state, and the obligations overdue once imported (their
    last day passed before the import), by deadline."""
    states = Counter(e.state for e in entered)
    overdue = Counter(deadline for e in entered for deadline in e.overdue)
    return Summary(len(entered), dict(states), dict(overdue))
