"""``audit verify``, ``audit checkpoint``, ``audit export``, ``db upgrade`` and ``db grant``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from opcatflow.adapters.anchor import Anchor, Outbound, default_witness, signing_key
from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.errors import AUDIT_BROKEN, USAGE, fail
from opcatflow.adapters.cli.files import write_text_output
from opcatflow.adapters.cli.options import OPERATOR, Json, Reader, ReadReason, reader, settings
from opcatflow.engine import SQLAlchemyStore
from opcatflow.engine.audit import INTACT
from opcatflow.engine.checkpoint import CheckpointError, read_checkpoint
from opcatflow.engine.errors import OpcatflowError
from opcatflow.engine.readlog import AUDIT_EXPORT_FIELDS, record_reads
from opcatflow.engine.sql.grants import GrantRefused, grant_application_role

audit_app = typer.Typer(help="Check and export the hash-chained audit trail.")
db_app = typer.Typer(help="Manage the database schema.")


WitnessOption = Annotated[
    Path | None,
    typer.Option(
        "--witness",
        help="Folder the checkpoint is written to [default: $OPCATFLOW_WITNESS, else "
        "checkpoints/ beside the key file].",
        file_okay=False,
    ),
]


SendTo = Annotated[
    str | None,
    typer.Option(
        "--send-to",
        metavar="RECIPIENT",
        help="Also send the checkpoint through the outbox to this person or webhook endpoint "
        "of the recipients directory ($OPCATFLOW_NOTIFICATIONS): an outside witness. Exit 5 "
        "if the directory has no such recipient.",
    ),
]


@audit_app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    witness: WitnessOption = None,
    send_to: SendTo = None,
    as_json: Json = False,
) -> None:
    """Sign the audit trail's size and root now (Ed25519, key beside the key file, made on
    first need) and write the checkpoint to the witness folder; with --send-to, queue it for
    that recipient too (the worker or `outbox dispatch` delivers it)."""
    folder = witness or default_witness()
    with settings(ctx).engine(existing=True) as engine:
        # the recipient checked before anything is signed
        outbound = Outbound.to(send_to, engine) if send_to is not None else None
        try:
            taken, path = Anchor(engine, folder, signing_key(), outbound).take()
        except OSError as err:
            raise fail(f"cannot write the checkpoint to {folder}: {err}", USAGE) from None
        except CheckpointError as err:
            raise fail(str(err), USAGE) from None
    if as_json:
        out.print_json({**taken.as_json(), "path": str(path), "sent_to": send_to})
        return
    out.echo(
        f"checkpoint of {out.plural(taken.size, 'record')} (root {taken.root[:16]}...) "
        f"written to {path}" + (f", queued for {send_to}" if send_to is not None else "")
    )


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint file to verify against (repeat for several): proves nothing "
            "up to its size was changed, removed, reordered or rolled back.",
            dir_okay=False,
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Recompute every hash and link of the audit trail, compare every instance with its
    last record, and check the positions against each --checkpoint. Exit 8 names the first
    broken position, record or instance. Without a checkpoint a sound trail is only
    "unanchored": a rewrite of the whole trail would look the same. A record of older data
    stamped earlier than the one before it is a warning (exit 0)."""
    try:
        key = signing_key()
        trusted = key.public_key() if key.path.exists() else None
        anchors = [read_checkpoint(path, trusted) for path in checkpoint or []]
    except CheckpointError as err:
        raise fail(str(err), USAGE) from None
    with settings(ctx).engine(existing=True) as engine:
        report = engine.verify_audit(anchors)
    if as_json:
        out.print_json(report.as_json())
    elif report.ok and report.status == INTACT:
        sizes = ", ".join(str(n) for n in report.anchored_to)
        out.echo(
            f"audit chain {out.green('intact')}: {out.plural(report.records, 'record')} over "
            f"{out.plural(report.instances, 'instance')}, every hash and link recomputed, "
            f"anchored to the checkpoint of position {sizes}"
        )
    elif report.ok:
        out.echo(
            f"audit chain {out.yellow('unanchored')}: "
            f"{out.plural(report.records, 'record')} over "
            f"{out.plural(report.instances, 'instance')}, every hash and link recomputed; "
            "no checkpoint given (--checkpoint FILE proves nothing was rewritten)"
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
    projected, why = _fill_projection(ctx)
    if as_json:
        out.print_json({"before": before, "after": after, "report_projection": projected})
        return
    if before == after:
        out.echo(f"database schema already at revision {after}")
    else:
        out.echo(f"database schema upgraded from revision {before or 'none'} to {after}")
    if projected is not None:
        out.echo(f"report projection built from {out.plural(projected, 'instance')}")
    if why is not None:
        out.echo(out.yellow(f"report projection not built ({why}): the first report builds it"))


def _fill_projection(ctx: typer.Context) -> tuple[int | None, str | None]:
    """Build the report projection if it is not current (a new revision leaves it empty):
    the instances projected, or why it could not be done now (the keys out of reach)."""
    try:
        with settings(ctx).engine(existing=True) as engine:
            return engine.ensure_projection(), None
    except OpcatflowError as err:
        return None, out.shorten(str(err), 200)


@db_app.command("grant")
def grant(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(help="The PostgreSQL role serve and worker log in as.")],
    as_json: Json = False,
) -> None:
    """Set up ROLE (PostgreSQL) to run serve and worker while owning nothing: rows only, the
    audit table SELECT and INSERT alone; it cannot alter or truncate a table or disable a
    trigger. Run it as the owner of the tables, after `db upgrade`."""
    with settings(ctx).store(existing=True) as store, store.connect(write=True) as conn:
        try:
            report = grant_application_role(conn, role)
        except GrantRefused as err:
            raise fail(str(err), USAGE) from None
    if as_json:
        out.print_json({"role": report.role, "created": report.created, "tables": report.tables})
        return
    made = "created and " if report.created else ""
    out.echo(
        f"role {report.role} {made}granted rows on {len(report.tables)} tables "
        "(audit: SELECT and INSERT only); it owns nothing"
    )
