"""``audit verify``, ``audit export`` and ``db upgrade``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.errors import AUDIT_BROKEN, fail
from opcatflow.adapters.cli.files import write_text_output
from opcatflow.adapters.cli.options import OPERATOR, Json, Reader, ReadReason, reader, settings
from opcatflow.engine import SQLAlchemyStore
from opcatflow.engine.readlog import AUDIT_EXPORT_FIELDS, record_reads

audit_app = typer.Typer(help="Check and export the hash-chained audit trail.")
db_app = typer.Typer(help="Manage the database schema.")


@audit_app.command("verify")
def verify(ctx: typer.Context, as_json: Json = False) -> None:
    """Recompute every hash and link of the audit trail. Exit 8 names the first broken record;
    a record of older data stamped earlier than the one before it is a warning (exit 0)."""
    with settings(ctx).engine(existing=True) as engine:
        report = engine.verify_audit()
    if as_json:
        out.print_json(report.as_json())
    elif report.ok:
        out.echo(
            f"audit chain {out.green('intact')}: {out.plural(report.records, 'record')} over "
            f"{out.plural(report.instances, 'instance')}, every hash and link recomputed"
        )
    else:
        out.echo(f"audit chain {out.red('BROKEN')}: {len(report.breaks)} break(s)")
        for b in report.breaks:
            out.echo(f"  {b}")
    if report.warnings and not as_json:
        # Older data only (the engine no longer writes these): shown, not failed on.
        out.echo(f"{out.plural(len(report.warnings), 'warning')} on records of older data:")
        for w in report.warnings:
            out.echo(f"  {w}")
    if report.first_break is not None:
        raise fail(f"audit chain broken at {report.first_break}", AUDIT_BROKEN)


@audit_app.command("export")
def export(
    ctx: typer.Context,
    *,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
    instance: Annotated[
        str | None,
        typer.Option(
            "--instance", help="Only this instance's records (its id or an 8+ character prefix)."
        ),
    ] = None,
    as_json: Json = False,
    actor: Reader = None,
    reason: ReadReason = None,
) -> None:
    """Write the audit trail as JSON Lines (personal values appear only as keyed hashes);
    the export is logged in the read log."""
    with settings(ctx).engine(existing=True) as engine:
        if instance is not None:
            # a typo says "not found", not export nothing
            instance = engine.resolve_id(instance)
        record_reads(
            engine, actor=reader(actor), role=OPERATOR, channel="cli", what="audit-export",
            reads=[(instance, AUDIT_EXPORT_FIELDS)], reason=reason,
        )  # fmt: skip
        if output is None:
            engine.export_audit(sys.stdout, instance)
            return
        count = write_text_output(output, "--output", lambda fh: engine.export_audit(fh, instance))
    if as_json:
        out.print_json({"records": count, "output": str(output)})
    else:
        out.echo(f"wrote {count} audit records to {output}")


@db_app.command("upgrade")
def upgrade(ctx: typer.Context, as_json: Json = False) -> None:
    """Migrate the database to the schema this version of opcatflow needs."""
    store = SQLAlchemyStore(settings(ctx).db)
    try:
        before, after = store.upgrade()
    finally:
        store.close()
    if as_json:
        out.print_json({"before": before, "after": after})
    elif before == after:
        out.echo(f"database schema already at revision {after}")
    else:
        out.echo(f"database schema upgraded from revision {before or 'none'} to {after}")
