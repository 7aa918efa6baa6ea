"""Backup and restore of a SQLite database file, through SQLite's online backup API.

The backup API copies the database page by page under one read transaction, so the copy is
the database as of one commit even while the engine writes (in WAL mode a reader blocks no
writer), with the WAL's committed pages included. A restore runs the same API the other way:
into the live file, through SQLite's own locking, so the WAL and any reader stay consistent;
no file is swapped under an open connection.

PostgreSQL has its own tools (pg_dump, pg_restore): docs/operations.md.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from opcatflow.engine.errors import OpcatflowError

_REQUIRED = ("audit", "instances", "alembic_version")


class BackupError(OpcatflowError):
    """A backup or restore that cannot be done: nothing was written."""


def backup_sqlite(source: Path, target: Path) -> None:
    """Copy the database ``source`` to the new file ``target``, consistent as of one commit.

    Written beside ``target`` first and renamed when complete: a failed backup leaves no
    half-written file.

    Raises:
        BackupError: ``target`` exists, or cannot be written; ``source`` cannot be read.
    """
    if target.exists():
        raise BackupError(f"{target} exists: a backup never overwrites a file")
    partial = target.with_name(f".{target.name}.partial")
    try:
        with closing(_open_read_only(source)) as src, closing(sqlite3.connect(partial)) as dst:
            src.backup(dst)  # every page in one step: one read transaction, one commit's state
        _fsync(partial)
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as err:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {source} to {target}: {err}") from None


def restore_sqlite(backup: Path, target: Path) -> None:
    """Copy the backup ``backup`` over the database ``target`` (made if missing).

    Stop ``serve`` and ``worker`` first: their next unit of work would otherwise meet a
    different database than the one they read. The backup is checked before anything is
    written: an SQLite file that passes ``quick_check`` and holds opcatflow's tables.

    Raises:
        BackupError: ``backup`` is not such a file, or ``target`` cannot be written.
    """
    try:
        with closing(_open_read_only(backup)) as src:
            _check(src, backup)
            with closing(sqlite3.connect(target, timeout=30)) as dst:
                src.backup(dst)
    except sqlite3.Error as err:
        raise BackupError(f"cannot restore {backup} into {target}: {err}") from None


def _check(conn: sqlite3.Connection, path: Path) -> None:
    try:
        [(verdict,)] = conn.execute("PRAGMA quick_check").fetchall()[:1]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as err:
        raise BackupError(f"{path} is not an SQLite database: {err}") from None
    if verdict != "ok":
        raise BackupError(f"{path} is damaged (quick_check: {verdict})")
    missing = [t for t in _REQUIRED if t not in tables]
    if missing:
        raise BackupError(f"{path} is not an opcatflow database (no {', '.join(missing)} table)")


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise BackupError(f"no database file at {path}")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
