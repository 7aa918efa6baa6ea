"""``keys rotate``, ``keys export-audit-key``, ``keys new`` and ``db encrypt``."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.errors import AUDIT_BROKEN, USAGE, fail
from opcatflow.adapters.cli.options import Json, settings
from opcatflow.engine.conversion import encrypt_database
from opcatflow.engine.crypto.providers import new_key_line
from opcatflow.engine.rotation import rotate as rotate_keys

keys_app = typer.Typer(help="Key-encryption keys: rotate them, move the old audit key out.")

LEGACY_AUDIT_KEY = "audit_key"  # where older releases kept the database-wide audit key

Operator = Annotated[
    str | None,
    typer.Option(
        "--actor",
        envvar="OPCATFLOW_ACTOR",
        help="Who does it (kept in the audit trail). [default: the system user]",
        metavar="NAME",
    ),
]


def _operator(actor: str | None) -> str:
    return actor or getpass.getuser()


@keys_app.command("rotate")
def rotate(
    ctx: typer.Context,
    *,
    actor: Operator = None,
    new_key: Annotated[
        bool,
        typer.Option(
            "--new-key/--current-key",
            help="Add a new key to the key file and move to it (default), or move to the "
            "provider's current key (one you added to $OPCATFLOW_KEK or your KMS).",
        ),
    ] = True,
    retire: Annotated[
        bool,
        typer.Option(
            "--retire",
            help="Afterwards remove from the key file the keys no data key of this database "
            "uses (only if the file serves no other database).",
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Re-wrap every data key with a new key-encryption key. Sealed values are not touched;
    each instance's chain gets a `rekeyed` record. Run it again after an interruption: it
    goes on where it stopped."""
    with settings(ctx).engine(existing=True) as engine:
        report = rotate_keys(engine, actor=_operator(actor), new_key=new_key, retire=retire)
    if as_json:
        out.print_json(
            {
                "target": report.target,
                "resumed": report.resumed,
                "rewrapped": report.rewrapped,
                "unused": report.unused,
                "retired": report.retired,
            }
        )
        return
    verb = "resumed and finished" if report.resumed else "finished"
    out.echo(
        f"rotation {verb}: {out.plural(report.rewrapped, 'data key')} re-wrapped with "
        f"{report.target}"
    )
    if report.retired:
        out.echo(f"retired: {', '.join(report.retired)}")
    elif report.unused:
        out.echo(
            f"no data key here uses {', '.join(report.unused)} any more: keep it until every "
            "backup of this database made before now is gone, or run again with --retire"
        )


@keys_app.command("export-audit-key")
def export_audit_key(
    ctx: typer.Context,
    *,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The file to write it to (must not exist; made 0600)."),
    ],
    as_json: Json = False,
) -> None:
    """Move the database-wide audit key of older releases out of the database, into a
    file: with it in the database, anyone holding a copy can test a guessed name against
    the keyed hashes of the records it wrote. Keep the file with the key-encryption keys."""
    with settings(ctx).engine(existing=True) as engine:
        with engine.store.read() as uow:
            key = uow.data_keys.setting(LEGACY_AUDIT_KEY)
        if key is None:
            message = "no database-wide audit key in this database (none to move out)"
            if as_json:
                out.print_json({"exported": False})
            else:
                out.echo(message)
            return
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as err:
            raise fail(f"--output {output}: {err.strerror}", USAGE) from None
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(
                f"# opcatflow: the audit key of records written before keys per instance\n{key}\n"
            )
            fh.flush()
            os.fsync(fh.fileno())
        with engine.store.write() as uow:  # removed only once the file is safely written
            uow.data_keys.set_setting(LEGACY_AUDIT_KEY, None)
        engine.log.info("legacy_audit_key_exported", output=str(output))
    if as_json:
        out.print_json({"exported": True, "output": str(output)})
    else:
        out.echo(f"audit key written to {output} and removed from the database")


@keys_app.command("new")
def new() -> None:
    """Print a new key-encryption key as a line of the key file's format (to add to
    $OPCATFLOW_KEK before `keys rotate --current-key`)."""
    out.echo(new_key_line())


def encrypt(ctx: typer.Context, *, actor: Operator = None, as_json: Json = False) -> None:
    """Seal every personal value a database written by an older release holds in clear
    (instance data, audit reasons, outbox payloads, idempotency replies), then erase the
    clear copies from the database's files. Stop the server first. Resumable: run it again
    after an interruption."""
    with settings(ctx).engine(existing=True) as engine:
        report = encrypt_database(engine, actor=_operator(actor))
    if as_json:
        out.print_json(
            {
                "instances": report.instances,
                "skipped": report.skipped,
                "broken": report.broken,
                "messages": report.messages,
                "replies": report.replies,
                "legacy_audit_key": report.legacy_audit_key,
            }
        )
    else:
        out.echo(
            f"sealed {out.plural(report.instances, 'instance')} "
            f"({report.skipped} already sealed), {out.plural(report.messages, 'message')}, "
            f"{report.replies} idempotency repl{'y' if report.replies == 1 else 'ies'}; "
            "free space erased"
        )
        if report.legacy_audit_key:
            out.echo(
                "the audit key of older releases is still in the database: move it out with "
                "`opcatflow keys export-audit-key --output FILE`"
            )
    if report.broken:
        raise fail(
            f"{len(report.broken)} audit chain(s) do not verify and were left unsealed "
            f"(first: instance {report.broken[0]}); run `opcatflow audit verify`",
            AUDIT_BROKEN,
        )
