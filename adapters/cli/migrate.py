"""``opcatflow migrate PLAN``: move running instances to another definition version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.errors import REFUSED, UNMAPPED, USAGE, fail
from opcatflow.adapters.cli.options import Actor, Json, settings
from opcatflow.engine.migration import InstanceOutcome, Migrator
from opcatflow.engine.migration.convert import UnmappedValues, load_mapping
from opcatflow.workflows import shipped_plans


def _line(o: InstanceOutcome) -> str:
    parts = [f"{o.instance_id}  {o.from_state} -> {o.to_state}  {o.outcome}"]
    if o.reason:
        parts.append(f"because {o.reason}")
    if o.data:
        parts.append("data: " + ", ".join(o.data))
    if o.timers:
        moved = [
            f"{t.deadline} {t.kind} {t.action}"
            + (f" as {t.to}" if t.action == "carried" and t.to != t.deadline else "")
            + (
                f" ({t.reason})"
                if t.due_at is None
                else f" (due {t.due_at.isoformat()}"
                + (f", last day {t.last_day}" if t.last_day else "")
                + f", {t.status})"
            )
            for t in o.timers
        ]
        parts.append("timers: " + ", ".join(moved))
    return "; ".join(parts)


def plan_file(plan: str) -> Path:
    """The file ``plan`` names: a path, else a shipped plan's name.

    Raises:
        typer.Exit: neither (usage, listing the shipped plans).
    """
    path = Path(plan)
    if path.is_file():
        return path
    shipped = shipped_plans()
    if plan in shipped:
        return shipped[plan]
    names = ", ".join(shipped) or "none"
    raise fail(f"no plan file {plan!r}, nor a shipped plan of that name (shipped: {names})", USAGE)


def migrate(
    ctx: typer.Context,
    plan: Annotated[
        str,
        typer.Argument(
            help="The migration plan: a YAML file, or the name of a plan shipped with the "
            "bundled workflows (complaint-3-4).",
            metavar="PLAN",
        ),
    ],
    *,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would happen to each instance; change nothing."),
    ] = False,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=10_000, help="Instances read at a time.")
    ] = 100,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--map",
            help="A mapping file (YAML or JSON: register -> {free text: entry id}) for the "
            "values a plan converts to register ids that match no entry by title.",
            metavar="FILE",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    actor: Actor = "migration",
    as_json: Json = False,
) -> None:
    """Move the running instances of one definition version to another, as PLAN says (a file,
    or a plan shipped with the bundled workflows: `complaint-3-4`): each
    instance in its own transaction, with a `migrated` record in its audit trail. Instances
    the new version refuses are listed and left as they were; run it again after a stop to
    migrate the rest. Exit 3 when any instance was refused. A plan that converts free text
    to register ids lists every value no entry matches and moves nothing (exit 12) until a
    mapping file (--map) gives them."""
    opts = settings(ctx)
    path = plan_file(plan)
    given = load_mapping(mapping.read_text("utf-8"), str(mapping)) if mapping else None
    with opts.engine(existing=True) as engine:
        migrator = Migrator(engine, actor=actor)
        loaded = migrator.load(path.read_text("utf-8"), str(path))
        try:
            report = migrator.run(
                loaded,
                dry_run=dry_run,
                batch=batch,
                on_outcome=None if as_json else lambda o: out.echo(_line(o)),
                mapping=given,
            )
        except UnmappedValues as err:  # every value listed: the operator maps them all at once
            for problem in err.problems:
                out.echo(str(problem))
            raise fail(
                f"{len(err.problems)} value(s) to convert to register ids are not matched or "
                "mapped (listed above); give them in a mapping file (--map FILE): nothing moved",
                UNMAPPED,
            ) from None
    if as_json:
        out.print_json(report.as_json())
    else:
        counts = ", ".join(f"{n} {what}" for what, n in sorted(report.counts().items()))
        kept = f"; {report.finished} finished instance(s) stay on v{report.from_version}"
        out.echo(
            f"{report.workflow} v{report.from_version} -> v{report.to_version}: "
            f"{counts or 'nothing to migrate'}{kept if report.finished else ''}"
        )
    if report.refused:
        raise fail(f"{len(report.refused)} instance(s) refused; see the list above", REFUSED)
