"""One schema change at a time: per database across processes, and per process for Alembic.

Creating or upgrading a schema runs in one transaction that first takes the database's schema
lock, then reads the revision again: a process that waited finds the schema another one just
created, instead of creating it a second time. The lock is

- on SQLite, the file's write lock (``BEGIN IMMEDIATE``, bounded by ``busy_timeout``), after
  the process's own queue of writers on that file (``store._sqlite_writer``);
- on PostgreSQL, a transaction-scoped advisory lock keyed by the schema the tables go into,
  bounded by ``lock_timeout``.

Alembic keeps its migration context and ``op`` in module globals, so two threads migrating
even different databases would run each other's operations on each other's connections (a
segmentation fault with pysqlite). Migrations therefore also take one lock per process.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from opcatflow.engine.errors import SchemaLocked

MIGRATIONS = Path(__file__).parent.parent / "migrations"

# The advisory lock's first key says "opcatflow schema" (ASCII "opcs"); the second is the
# schema's name, so databases that host several deployments do not wait on each other.
_PG_LOCK_CLASS = 0x6F706373
_PG_LOCK_NOT_AVAILABLE = "55P03"
SQLITE_BUSY_TIMEOUT_MS = 30000  # every SQLite connection's, outside the schema lock
_ALEMBIC = threading.Lock()


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self._end - time.monotonic())


def database_name(engine: Engine) -> str:
    """How an error names the database: a SQLite path, or the URL without its password."""
    if engine.dialect.name == "sqlite":
        return engine.url.database or ":memory:"
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def schema_lock(
    engine: Engine, writer: threading.RLock | None, timeout: float
) -> Iterator[tuple[Connection, _Deadline]]:
    """A transaction holding the database's schema lock; commits on success.

    Raises:
        SchemaLocked: the lock was not free within ``timeout`` seconds.
    """
    deadline = _Deadline(timeout)
    name = database_name(engine)
    if writer is not None and not writer.acquire(timeout=deadline.left()):
        raise SchemaLocked(name, timeout)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                transaction = _begin_sqlite(conn, deadline, name)
            elif engine.dialect.name == "postgresql":
                transaction = _begin_postgresql(conn, deadline, name)
            else:  # pragma: no cover - the store opens only these two
                transaction = conn.begin()
            with transaction:
                yield conn, deadline
    finally:
        if writer is not None:
            writer.release()


def upgrade_to_head(conn: Connection, deadline: _Deadline, database: str) -> None:
    """Run Alembic's upgrade on ``conn`` (inside ``schema_lock``), one thread at a time.

    Raises:
        SchemaLocked: another thread's migration outlasted the deadline.
    """
    from alembic import command
    from alembic.config import Config

    if not _ALEMBIC.acquire(timeout=deadline.left()):
        raise SchemaLocked(database, deadline.seconds)
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    finally:
        _ALEMBIC.release()


def _begin_sqlite(conn: Connection, deadline: _Deadline, name: str) -> sa.RootTransaction:
    # Set on the driver's connection: a statement through `conn` would begin a transaction.
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute(f"PRAGMA busy_timeout={int(deadline.left() * 1000)}")
    try:
        return conn.begin()  # BEGIN IMMEDIATE (store._sqlite_setup): the file's write lock
    except sa.exc.OperationalError as err:
        if isinstance(err.orig, sqlite3.Error) and err.orig.sqlite_errorcode & 0xFF == 5:
            raise SchemaLocked(name, deadline.seconds) from err  # SQLITE_BUSY
        raise
    finally:
        raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _begin_postgresql(conn: Connection, deadline: _Deadline, name: str) -> sa.RootTransaction:
    transaction = conn.begin()
    try:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar() or ""
        previous = conn.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar()
        _set_lock_timeout(conn, f"{max(1, int(deadline.left() * 1000))}ms")
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:kind, :schema)"),
            {"kind": _PG_LOCK_CLASS, "schema": _int4(zlib.crc32(schema.encode()))},
        )
        _set_lock_timeout(conn, str(previous))  # the migration itself keeps the usual bound
    except sa.exc.OperationalError as err:
        transaction.rollback()
        if getattr(err.orig, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE:
            raise SchemaLocked(name, deadline.seconds) from err
        raise
    except BaseException:
        transaction.rollback()
        raise
    return transaction


def _set_lock_timeout(conn: Connection, value: str) -> None:
    conn.execute(sa.text("SELECT set_config('lock_timeout', :value, true)"), {"value": value})


def _int4(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value
