"""``SQLAlchemyStore``: :class:`~opcatflow.engine.ports.Store` over a SQLite file or PostgreSQL.

Core, not the ORM: the hot path is a handful of compiled statements per transition.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from structlog.typing import FilteringBoundLogger

from opcatflow.engine.errors import SchemaMismatch, StoreError
from opcatflow.engine.groupcommit import GroupCommit
from opcatflow.engine.logs import default_logger
from opcatflow.engine.sql import direct
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.dialect import Dialect
from opcatflow.engine.sql.schemalock import (
    SQLITE_BUSY_TIMEOUT_MS,
    database_name,
    schema_lock,
    upgrade_to_head,
)
from opcatflow.engine.sql.unit import SqlUnitOfWork

TIMES_ORDERED_FROM = "audit_times_ordered_from"  # the key of the marker in opcatflow_meta
T = TypeVar("T")
# How long a member of a batch other than its first may wait for a row lock on PostgreSQL
# before it is deferred to a later batch (see engine/groupcommit.py): long enough for the
# holder's commit to finish, short enough that two batches waiting on each other's rows
# part at once instead of after PostgreSQL's deadlock check (1 s).
BATCH_LOCK_WAIT = "25ms"
_PG_BUSY = frozenset({"55P03", "40P01"})  # lock_not_available, deadlock_detected


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and plain file paths; pick our drivers."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


def sqlite_file(url: str) -> str | None:
    """The file a database URL (or path) names, if it is a SQLite file (else ``None``)."""
    parsed = sa.make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def displayed_url(url: str) -> str:
    """A database URL as it may be printed: without its password."""
    return sa.make_url(url).render_as_string(hide_password=True)


def _sqlite_setup(engine: Engine, synchronous: str) -> None:
    # SQLAlchemy's documented recipe: stop pysqlite from deferring BEGIN, then emit our own.
    # Writers take BEGIN IMMEDIATE so two writers queue on busy_timeout instead of failing
    # with SQLITE_BUSY when a read lock cannot be upgraded.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # First: turning a new file to WAL needs a lock another process may be holding.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("readonly")
        direct.driver_sql(conn, "BEGIN DEFERRED" if readonly else "BEGIN IMMEDIATE")


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    # Switching to WAL (or finding it on) can answer "database is locked" at once, without the
    # busy handler, while another connection runs WAL recovery on a file it just opened: seen
    # with 8 threads opening one new file. Retry within the busy timeout.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


# One writer lock per SQLite file, shared by every store on it in this process. SQLite lets one
# writer in at a time; a thread refused by BEGIN IMMEDIATE sleeps in SQLite's busy handler
# (1, 2, 5 ... 100 ms steps) and the lock can sit free while it sleeps. Queuing this
# process's writers on a Python lock hands the database over at once; busy_timeout still
# arbitrates between processes. (No at-fork handling: SQLite forbids carrying connections
# across fork(), and a child forked during a write could not write even through new
# connections when we tried; fork before opening a store, or spawn.)
_SQLITE_WRITERS: dict[str, threading.RLock] = {}
_SQLITE_WRITERS_GUARD = threading.Lock()


def _sqlite_writer(database: str | None) -> threading.RLock:
    key = os.path.realpath(database) if database and database != ":memory:" else ""
    with _SQLITE_WRITERS_GUARD:
        return _SQLITE_WRITERS.setdefault(key, threading.RLock())


class SQLAlchemyStore:
    """The store (:class:`~opcatflow.engine.ports.Store`) in one relational database.

    Args:
        url: a SQLAlchemy URL, ``postgresql://...``, or a path to a SQLite file.
        synchronous: SQLite's ``PRAGMA synchronous`` (FULL survives power loss; NORMAL may
            lose the last commits on power loss but never corrupts).
        schema_lock_timeout: seconds to wait while another process or thread creates or
            upgrades the schema, before ``SchemaLocked``.
        pool_size: PostgreSQL connections kept open per store (as many again may open
            under load). Writers of one process share a connection per batch (group
            commit), so the pool mostly serves reads: keep ``processes x 2 x pool_size``
            below the server's ``max_connections`` minus its reserved ones (a store warns
            when one process alone would pass it).
        logger: where the batches of group commit are logged (debug) and the pool warning.
    """

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        pool_size: int = 5,
        schema_lock_timeout: float = 60.0,
        logger: FilteringBoundLogger | None = None,
    ) -> None:
        self.url = normalise_url(url)
        self.schema_lock_timeout = schema_lock_timeout
        if synchronous.upper() not in ("FULL", "NORMAL", "OFF", "EXTRA"):
            raise ValueError(f"unknown synchronous mode {synchronous!r}")
        kwargs: dict[str, Any] = {}
        if self.url.startswith("postgresql"):
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine = sa.create_engine(self.url, **kwargs)
        self.dialect = self.engine.dialect.name
        self._writer_lock: threading.RLock | None = None
        # SQLite: this store's writes take turns on one connection, kept out of the pool (see
        # connect); None until the first write, and again after the driver gave up on it
        self._write_conn: Connection | None = None
        # an in-memory SQLite database is one per connection: its writes keep to the pool's
        self._file = self.engine.url.database not in (None, "", ":memory:")
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine, synchronous.upper())
            self._writer_lock = _sqlite_writer(self.engine.url.database)
        self._dialect = Dialect(self.dialect)
        self.pool_size = pool_size
        self.log = logger or default_logger("opcatflow")
        postgresql = self._dialect.postgresql
        self.group: GroupCommit[SqlUnitOfWork] = GroupCommit(
            self.write,
            SqlUnitOfWork.savepoint,
            translate=_translate,
            is_busy=_pg_busy if postgresql else _never,
            share=_bound_lock_waits if postgresql else _nothing,
            unshare=_unbound_lock_waits if postgresql else _nothing,
            logger=self.log,
        )

    def close(self) -> None:
        """Wait for the batch in flight and the writers queued for the next (refusing new
        ones), then close the connections."""
        self.group.close()
        if self._writer_lock is not None:
            with self._writer_lock:
                if self._write_conn is not None:
                    self._write_conn.close()
                    self._write_conn = None
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------------------

    def head_revision(self) -> str:
        """The revision this code expects (``tables.SCHEMA_REVISION``; a test keeps it equal to
        the newest migration, so opening a store need not import Alembic)."""
        return t.SCHEMA_REVISION

    def current_revision(self) -> str | None:
        with self.connect() as conn:
            return _revision(conn)

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate to the newest schema; returns (before, after) revisions.

        Raises:
            SchemaLocked: another process held the schema lock past ``schema_lock_timeout``.
        """
        with schema_lock(self.engine, self._writer_lock, self.schema_lock_timeout) as (
            conn,
            deadline,
        ):
            before = _revision(conn)
            upgrade_to_head(conn, deadline, database_name(self.engine))
        return before, self.head_revision()

    def ensure_schema(self, *, create: bool = True) -> None:
        """Create the schema in an empty database; refuse a database at another revision.

        A database another process is creating or upgrading is waited for (up to
        ``schema_lock_timeout``), then checked again.

        Raises:
            SchemaMismatch: naming the found and expected revisions.
            SchemaLocked: another process held the schema lock past ``schema_lock_timeout``.
        """
        expected = self.head_revision()
        if self._dialect.postgresql:
            self._check_pool()
        if self.current_revision() == expected:
            return
        with schema_lock(self.engine, self._writer_lock, self.schema_lock_timeout) as (
            conn,
            deadline,
        ):
            found = _revision(conn)
            if found == expected:
                return
            if found is None and create and not sa.inspect(conn).get_table_names():
                upgrade_to_head(conn, deadline, database_name(self.engine))
                return
        raise SchemaMismatch(found, expected)

    def _check_pool(self) -> None:
        # The pool may open 2 x pool_size connections (pool_size + max_overflow): one process
        # alone must fit in what the server lets ordinary roles open.
        allowed = (
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
        )
        with self.connect() as conn:
            available = int(conn.execute(sa.text(allowed)).scalar_one())
        if 2 * self.pool_size > available:
            self.log.warning(
                "pool_exceeds_max_connections",
                pool_size=self.pool_size,
                may_open=2 * self.pool_size,
                server_allows=available,
            )

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[SqlUnitOfWork]:
        with self.connect(write=True) as conn:
            uow = SqlUnitOfWork(conn, self._dialect)
            yield uow
            uow.flush()

    def submit(self, work: Callable[[SqlUnitOfWork], T]) -> T:
        return self.group.run(work)

    def submit_soon(self, work: Callable[[SqlUnitOfWork], T]) -> Future[T]:
        return self.group.run_soon(work)

    @contextmanager
    def read(self) -> Iterator[SqlUnitOfWork]:
        with self.connect() as conn:
            yield SqlUnitOfWork(conn, self._dialect)

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[Connection]:
        """A transaction as a SQLAlchemy connection, for tools that speak SQL themselves
        (tests, benchmarks, migrations); opcatflow's own code uses :meth:`write` and
        :meth:`read`. A write transaction commits on success and rolls back on any
        exception; driver errors become :class:`StoreError`."""
        try:
            if not write:
                with self.engine.connect() as conn:
                    yield conn.execution_options(readonly=True)
                return
            if self._writer_lock is None:
                with self.engine.begin() as conn:
                    yield conn
                return
            writing = self._sqlite_writing() if self._file else self.engine.begin()
            with self._writer_lock, writing as conn:
                yield conn
        except sa.exc.SQLAlchemyError as err:
            raise driver_error(err) from err

    @contextmanager
    def _sqlite_writing(self) -> Iterator[Connection]:
        # SQLite lets one writer in at a time, and this process's writers already queue on
        # the file's lock: they take turns on one connection rather than check one out of the
        # pool and back for each transaction (18 us of a fire's 300 on SQLite NORMAL).
        conn = self._write_conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._write_conn = self.engine.connect()
        try:
            with conn.begin():
                yield conn
        except BaseException:
            if conn.invalidated:  # the driver gave up on it: the next write opens another
                conn.close()
                self._write_conn = None
            raise

    # -- meta ------------------------------------------------------------------------------

    def secret(self, key: str) -> bytes:
        query = sa.select(t.meta.c.value).where(t.meta.c.key == key)
        with self.connect(write=True) as conn:
            value = conn.execute(query).scalar()
            if value is None:
                new = self._dialect.insert_new(t.meta)
                conn.execute(new.values(key=key, value=secrets.token_hex(32)))
                value = conn.execute(query).scalar_one()
        return bytes.fromhex(value)

    # -- audit -----------------------------------------------------------------------------

    def audit_times_ordered_from(self) -> int:
        m = t.meta.c
        select = sa.select(m.value).where(m.key == TIMES_ORDERED_FROM)
        with self.connect() as conn:
            value = conn.execute(select).scalar()
        if value is None:
            newest = sa.func.coalesce(sa.func.max(t.audit.c.id), 0)
            with self.connect(write=True) as conn:
                # Several processes may open the database at once: the first one sets it.
                conn.execute(
                    self._dialect.insert(t.meta)
                    .from_select(
                        ["key", "value"],
                        # (the WHERE lets SQLite parse ON CONFLICT after a SELECT)
                        sa.select(sa.literal(TIMES_ORDERED_FROM), sa.cast(newest, sa.Text)).where(
                            sa.true()
                        ),
                    )
                    .on_conflict_do_nothing()
                )
                value = conn.execute(select).scalar_one()
        return int(value)


def _translate(err: BaseException) -> BaseException:
    return driver_error(err) if isinstance(err, sa.exc.SQLAlchemyError) else err


def _pg_busy(err: BaseException) -> bool:
    orig = getattr(err, "orig", None)
    return getattr(orig, "sqlstate", None) in _PG_BUSY


def _never(err: BaseException) -> bool:
    return False


def _nothing(uow: SqlUnitOfWork) -> None:
    pass


def _bound_lock_waits(uow: SqlUnitOfWork) -> None:
    uow.execute_setting(f"SET LOCAL lock_timeout = '{BATCH_LOCK_WAIT}'")


def _unbound_lock_waits(uow: SqlUnitOfWork) -> None:
    uow.execute_setting("SET LOCAL lock_timeout TO DEFAULT")  # the counter row waits freely


def _revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def driver_error(err: sa.exc.SQLAlchemyError) -> StoreError:
    """A driver error as the engine's :class:`StoreError`: its first line, so callers (the
    CLI, the HTTP API) name the database's complaint without knowing SQLAlchemy."""
    orig = getattr(err, "orig", None)
    lines = str(orig if orig is not None else err).strip().splitlines()
    return StoreError(f"database error: {lines[0] if lines else type(err).__name__}")
