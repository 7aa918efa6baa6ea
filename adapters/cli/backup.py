"""``backup FILE`` and ``restore FILE``: a SQLite database copied while the engine writes, put
back, and checked against the witness's checkpoints (docs/operations.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from opcatflow.adapters.anchor import default_witness, signing_key
from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.admin import WitnessOption
from opcatflow.adapters.cli.errors import AUDIT_BROKEN, NOT_FOUND, USAGE, fail
from opcatflow.adapters.cli.options import Json, settings
from opcatflow.adapters.restore import Restored, TrailCheck, after_restore, check_against_witness
from opcatflow.engine.crypto.providers import default_key_file
from opcatflow.engine.erasure_journal import ErasureJournal
from opcatflow.engine.sql.backup import BackupError, backup_sqlite, restore_sqlite
from opcatflow.engine.sql.store import sqlite_file

PG_DOCS = (
    "PostgreSQL is backed up and restored with its own tools: pg_dump --format=custom and "
    "pg_restore --clean (docs/operations.md, 'Backup and restore'), the key file, its "
    ".signing and .erased files backed up apart; after pg_restore run "
    "`opcatflow restore --in-place` to erase again what was erased since and check the trail"
)


def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).")],
    witness: WitnessOption = None,
    as_json: Json = False,
) -> None:
    """Copy the SQLite database to FILE with SQLite's online backup API (consistent while the
    engine writes), then verify the copy against the witness's latest checkpoint. The keys
    are not in it: back up the key file apart. PostgreSQL: exit 2, see pg_dump."""
    config = settings(ctx)
    source = sqlite_file(config.db)
    if source is None:
        raise fail(f"opcatflow backup copies a SQLite file; {PG_DOCS}", USAGE)
    if not Path(source).is_file():
        raise fail(f"no database at {source}", NOT_FOUND)
    try:
        backup_sqlite(Path(source), file)
    except BackupError as err:
        raise fail(str(err), USAGE) from None
    copy = dataclasses.replace(config, db=str(file))
    with copy.engine(existing=True) as engine:
        check = check_against_witness(engine, witness or default_witness(), signing_key())
    _print(f"backup of {out.plural(check.positions, 'position')} written to {file}", check, as_json)
    if not check.ok:
        raise fail(f"the backup's audit trail is broken: {check.breaks[0]}", AUDIT_BROKEN)


def restore(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(help="The backup file (from `opcatflow backup`) to restore."),
    ] = None,
    *,
    in_place: Annotated[
        bool,
        typer.Option(
            "--in-place",
            help="The database at --db was restored by other means (pg_restore): only erase "
            "again, check against the witness and checkpoint.",
        ),
    ] = False,
    witness: WitnessOption = None,
    as_json: Json = False,
) -> None:
    """Restore the SQLite database from FILE (stop serve and worker first), then: verify it
    against the witness's latest checkpoint, stating the positions the restore lost; erase
    again every instance erased since the backup (listed beside the key file); sign a new
    checkpoint. Exit 8 if the restored trail is broken."""
    config = settings(ctx)
    if (file is None) == (not in_place):
        raise fail("give a backup FILE, or --in-place for a database already restored", USAGE)
    if file is not None:
        target = sqlite_file(config.db)
        if target is None:
            raise fail(f"opcatflow restore FILE writes a SQLite file; {PG_DOCS}", USAGE)
        try:
            restore_sqlite(file, Path(target))
        except BackupError as err:
            raise fail(str(err), USAGE) from None
    journal = ErasureJournal.beside(default_key_file())
    with config.engine(existing=True) as engine:
        done = after_restore(engine, witness or default_witness(), signing_key(), journal)
    _report(file, done, as_json)
    if not done.check.ok:
        raise fail(f"the restored audit trail is broken: {done.check.breaks[0]}", AUDIT_BROKEN)


def _print(headline: str, check: TrailCheck, as_json: bool) -> None:
    if as_json:
        out.print_json(check.as_json())
        return
    out.echo(f"{headline}; {check.summary()}")


def _report(file: Path | None, done: Restored, as_json: bool) -> None:
    if as_json:
        out.print_json(done.as_json())
        return
    what = f"restored {file}" if file is not None else "checked the restored database"
    out.echo(f"{what}: {out.plural(done.check.positions, 'position')}; {done.check.summary()}")
    if done.erased_again:
        ids = ", ".join(e.instance_id for e in done.erased_again)
        out.echo(f"erased again (erased after the backup): {ids}")
    if done.checkpoint is not None:
        out.echo(f"new checkpoint written to {done.checkpoint}")
