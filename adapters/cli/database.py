"""Where the database is, and refusing one that is not there.

Opening a SQLite file that does not exist creates it, so a mistyped ``--db`` would silently
give a read command an empty database ("no instances"). Commands that only read (and ``fire``,
which needs an existing instance) open the database with :func:`require_existing` first:
exit 5, naming the path. Commands that create data create the database, but a missing folder
is still named rather than reported as SQLite's "unable to open database file".
"""

from __future__ import annotations

from pathlib import Path

from opcatflow.adapters.cli.errors import NOT_FOUND, fail
from opcatflow.engine.sql import SQLAlchemyStore, displayed_url, sqlite_file

CREATES = "`opcatflow start` or `opcatflow db upgrade` creates one"


def sqlite_path(db: str) -> Path | None:
    """The file of a SQLite ``--db`` (``None``: a server database, or in memory)."""
    path = sqlite_file(db)
    return None if path is None else Path(path)


def shown(db: str) -> str:
    """``db`` as it may be printed: a server URL without its password."""
    if sqlite_path(db) is not None or "://" not in db:
        return db
    return displayed_url(db)


def has_database(db: str) -> bool:
    """Whether ``db`` holds an opcatflow database already (a SQLite file that exists, or a
    server database with the schema), for commands that use one only if there is one."""
    path = sqlite_path(db)
    if path is not None:
        return path.is_file()
    store = SQLAlchemyStore(db)
    try:
        return store.current_revision() is not None
    finally:
        store.close()


def require_folder(db: str) -> None:
    """Refuse a SQLite file whose folder does not exist, or that is a folder (exit 5), naming
    them."""
    path = sqlite_path(db)
    if path is not None and not path.parent.is_dir():
        raise fail(f"no database at {path}: the folder {path.parent} does not exist", NOT_FOUND)
    if path is not None and path.is_dir():
        raise fail(f"no database at {path}: it is a folder, not a database file", NOT_FOUND)


def require_existing(db: str) -> None:
    """Refuse a SQLite ``db`` that is not an existing file (exit 5), naming the path. A server
    database is checked when opened (no opcatflow schema: :func:`missing_tables`)."""
    require_folder(db)
    path = sqlite_path(db)
    if path is not None and not path.is_file():
        raise fail(f"no database at {path} (no such file; {CREATES})", NOT_FOUND)


def missing_tables(db: str) -> Exception:
    """The refusal for a server database without opcatflow's schema (exit 5)."""
    return fail(f"no opcatflow database at {shown(db)} (no opcatflow schema; {CREATES})", NOT_FOUND)
