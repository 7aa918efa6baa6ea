"""``SQLAlchemyStore``: the one store implementation, over a SQLite file or PostgreSQL.

Core, not the ORM: the hot path is a handful of compiled statements per transition.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, Row

from opcatflow.engine import tables as t
from opcatflow.engine.audit import AuditRecord
from opcatflow.engine.errors import InstanceNotFound, SchemaMismatch, StoreError
from opcatflow.engine.instance import Instance
from opcatflow.engine.schemalock import (
    SQLITE_BUSY_TIMEOUT_MS,
    database_name,
    schema_lock,
    upgrade_to_head,
)

# The hot path's statements, built once: constructing a Core statement per call (coercions,
# cache keys) cost more than executing it on SQLite.
_I = t.instances.c
_SELECT_INSTANCE = sa.select(t.instances).where(_I.id == sa.bindparam("instance_id"))
_LOCK_INSTANCE = _SELECT_INSTANCE.with_for_update()
_UPDATE_INSTANCE = (
    t.instances.update()
    .where(_I.id == sa.bindparam("b_id"), _I.version == sa.bindparam("b_expected"))
    .values(
        state=sa.bindparam("state"),
        data=sa.bindparam("data", type_=_I.data.type),
        version=sa.bindparam("version"),
        updated_at=sa.bindparam("updated_at", type_=_I.updated_at.type),
        state_entered_at=sa.bindparam("state_entered_at", type_=_I.state_entered_at.type),
        audit_seq=sa.bindparam("audit_seq"),
        audit_head=sa.bindparam("audit_head"),
    )
)
_ADVANCE_HEAD = (
    t.instances.update()
    .where(_I.id == sa.bindparam("b_id"), _I.audit_seq == sa.bindparam("b_seq"))
    .values(audit_seq=sa.bindparam("audit_seq"), audit_head=sa.bindparam("audit_head"))
)
_INSERT_AUDIT = t.audit.insert()
_A = t.audit.c
_RECORD_AT = sa.select(_A.at).where(
    _A.instance_id == sa.bindparam("instance_id"), _A.seq == sa.bindparam("seq")
)
# The instance with the time of the last record of its chain, in one statement.
_SELECT_FOR_APPEND = sa.select(
    t.instances,
    sa.select(_A.at)
    .where(_A.instance_id == _I.id, _A.seq == _I.audit_seq)
    .scalar_subquery()
    .label("head_at"),
).where(_I.id == sa.bindparam("instance_id"))
_LOCK_FOR_APPEND = _SELECT_FOR_APPEND.with_for_update(of=t.instances)
_INSERT_INSTANCE = t.instances.insert()
TIMES_ORDERED_FROM = "audit_times_ordered_from"  # the key of the marker in opcatflow_meta


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and plain file paths; pick our drivers."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


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
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get("readonly") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


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
    """Instances, audit records and definitions in one relational database.

    Args:
        url: a SQLAlchemy URL, ``postgresql://...``, or a path to a SQLite file.
        synchronous: SQLite's ``PRAGMA synchronous`` (FULL survives power loss; NORMAL may
            lose the last commits on power loss but never corrupts).
        schema_lock_timeout: seconds to wait while another process or thread creates or
            upgrades the schema, before ``SchemaLocked``.
    """

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        pool_size: int = 5,
        schema_lock_timeout: float = 60.0,
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
        self._writer: AbstractContextManager[Any] = nullcontext()
        self._writer_lock: threading.RLock | None = None
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine, synchronous.upper())
            self._writer = self._writer_lock = _sqlite_writer(self.engine.url.database)
        self._lock_suffix = self.dialect == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------------------

    def head_revision(self) -> str:
        """The revision this code expects (``tables.SCHEMA_REVISION``; a test keeps it equal to
        the newest migration, so opening a store need not import Alembic)."""
        return t.SCHEMA_REVISION

    def current_revision(self) -> str | None:
        with self.read() as conn:
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

    def _insert_new(self, table: sa.Table) -> Any:
        # INSERT ... ON CONFLICT DO NOTHING: on PostgreSQL it waits for a concurrent insert of
        # the same key and then skips, where a plain insert would fail on the primary key.
        insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        return insert(table).on_conflict_do_nothing()

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One read-write transaction; commits on success, rolls back on any exception."""
        try:
            with self._writer, self.engine.begin() as conn:
                yield conn
        except sa.exc.DBAPIError as err:
            raise StoreError(f"database error: {err.orig!r}") from err

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn.execution_options(readonly=True)

    # -- meta ------------------------------------------------------------------------------

    def secret(self, key: str) -> bytes:
        """A per-database secret, created on first use (e.g. the audit redaction key).

        Processes opening a new database together all get the secret stored first.
        """
        query = sa.select(t.meta.c.value).where(t.meta.c.key == key)
        with self.write() as conn:
            value = conn.execute(query).scalar()
            if value is None:
                conn.execute(self._insert_new(t.meta).values(key=key, value=secrets.token_hex(32)))
                value = conn.execute(query).scalar_one()
        return bytes.fromhex(value)

    # -- definitions -------------------------------------------------------------------------

    def stored_definition(self, conn: Connection, workflow: str, version: int) -> Row[Any] | None:
        d = t.definitions.c
        return conn.execute(
            sa.select(t.definitions).where(d.workflow_id == workflow, d.version == version)
        ).first()

    def insert_definition(
        self,
        conn: Connection,
        *,
        workflow: str,
        version: int,
        fingerprint: str,
        title: str,
        source: str,
        now: datetime,
    ) -> None:
        """Store a definition unless another transaction stored this id and version first
        (read it back to compare)."""
        conn.execute(
            self._insert_new(t.definitions).values(
                workflow_id=workflow,
                version=version,
                fingerprint=fingerprint,
                title=title,
                source=source,
                registered_at=now,
            )
        )

    def update_definition_fingerprint(
        self, conn: Connection, workflow: str, version: int, fingerprint: str
    ) -> None:
        """Replace a fingerprint of an earlier formula (the content is unchanged)."""
        d = t.definitions.c
        conn.execute(
            t.definitions.update()
            .where(d.workflow_id == workflow, d.version == version)
            .values(fingerprint=fingerprint)
        )

    # -- instances -------------------------------------------------------------------------

    def lock_instance(self, conn: Connection, instance_id: str) -> Instance:
        """Read an instance inside a write transaction, locking its row on PostgreSQL.

        Raises:
            InstanceNotFound
        """
        query = _LOCK_INSTANCE if self._lock_suffix else _SELECT_INSTANCE
        row = conn.execute(query, {"instance_id": instance_id}).first()
        if row is None:
            raise InstanceNotFound(instance_id)
        return _instance(row)

    def lock_for_append(
        self, conn: Connection, instance_id: str
    ) -> tuple[Instance, datetime | None]:
        """:meth:`lock_instance`, with the time of the last record of the instance's audit chain
        (``None`` only if that record is missing), so a new record can be stamped after it.

        Raises:
            InstanceNotFound
        """
        query = _LOCK_FOR_APPEND if self._lock_suffix else _SELECT_FOR_APPEND
        row = conn.execute(query, {"instance_id": instance_id}).first()
        if row is None:
            raise InstanceNotFound(instance_id)
        instance = _instance(row)
        at: datetime | None = row.head_at
        if at is None:
            # On PostgreSQL a statement that waited for the lock returns the row as the
            # writer it waited for left it, but its subquery reads the audit table as it was
            # when the statement began, without that writer's record: the record's seq is
            # the row's, so it finds nothing. A statement begun now sees it.
            at = conn.execute(
                _RECORD_AT, {"instance_id": instance_id, "seq": instance.audit_seq}
            ).scalar()
        return instance, at

    def get_instance(self, conn: Connection, instance_id: str) -> Instance:
        row = conn.execute(sa.select(t.instances).where(t.instances.c.id == instance_id)).first()
        if row is None:
            raise InstanceNotFound(instance_id)
        return _instance(row)

    def insert_instance(self, conn: Connection, instance: Instance) -> None:
        conn.execute(
            _INSERT_INSTANCE,
            {
                "id": instance.id,
                "workflow_id": instance.workflow_id,
                "workflow_version": instance.workflow_version,
                "state": instance.state,
                "data": dict(instance.data),
                "version": instance.version,
                "parent_id": instance.parent_id,
                "created_at": instance.created_at,
                "updated_at": instance.updated_at,
                "state_entered_at": instance.state_entered_at,
                "audit_seq": instance.audit_seq,
                "audit_head": instance.audit_head,
            },
        )

    def update_instance(self, conn: Connection, instance: Instance, expected_version: int) -> bool:
        """Write a new state of the instance if its stored version is still ``expected_version``."""
        result = conn.execute(
            _UPDATE_INSTANCE,
            {
                "b_id": instance.id,
                "b_expected": expected_version,
                "state": instance.state,
                "data": dict(instance.data),
                "version": instance.version,
                "updated_at": instance.updated_at,
                "state_entered_at": instance.state_entered_at,
                "audit_seq": instance.audit_seq,
                "audit_head": instance.audit_head,
            },
        )
        return result.rowcount == 1

    def advance_audit_head(self, conn: Connection, instance_id: str, seq: int, head: str) -> bool:
        result = conn.execute(
            _ADVANCE_HEAD,
            {"b_id": instance_id, "b_seq": seq - 1, "audit_seq": seq, "audit_head": head},
        )
        return result.rowcount == 1

    def query_instances(
        self,
        conn: Connection,
        *,
        workflow: str | None = None,
        state: str | None = None,
        where: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[Instance]:
        c = t.instances.c
        query = sa.select(t.instances).order_by(c.created_at, c.id).limit(limit)
        if workflow is not None:
            query = query.where(c.workflow_id == workflow)
        if state is not None:
            query = query.where(c.state == state)
        if parent_id is not None:
            query = query.where(c.parent_id == parent_id)
        if after is not None:
            query = query.where(sa.tuple_(c.created_at, c.id) > sa.tuple_(*after))
        for name, value in (where or {}).items():
            element = c.data[name]
            if isinstance(value, bool):
                query = query.where(element.as_boolean() == value)
            elif isinstance(value, int):
                query = query.where(element.as_integer() == value)
            else:
                query = query.where(element.as_string() == str(value))
        return [_instance(row) for row in conn.execute(query)]

    def audit_heads(self, conn: Connection) -> dict[str, tuple[int, str]]:
        c = t.instances.c
        rows = conn.execute(sa.select(c.id, c.audit_seq, c.audit_head))
        return {row.id: (row.audit_seq, row.audit_head) for row in rows}

    # -- audit -----------------------------------------------------------------------------

    def insert_audit(self, conn: Connection, record: AuditRecord) -> None:
        conn.execute(
            _INSERT_AUDIT,
            {
                "instance_id": record.instance_id,
                "seq": record.seq,
                "at": record.at,
                "actor": record.actor,
                "role": record.role,
                "workflow_id": record.workflow_id,
                "workflow_version": record.workflow_version,
                "trigger": record.trigger,
                "from_state": record.from_state,
                "to_state": record.to_state,
                "outcome": record.outcome,
                "reason": record.reason,
                "changes": record.changes,
                "prev_hash": record.prev_hash,
                "hash": record.hash,
            },
        )

    def audit_times_ordered_from(self) -> int:
        """The global audit id up to which records are older data: every later record was
        written by an engine that stamps a chain's records in order. Set, to the newest id, the
        first time an engine of this release opens the database (0 for a new database).
        """
        m = t.meta.c
        select = sa.select(m.value).where(m.key == TIMES_ORDERED_FROM)
        with self.read() as conn:
            value = conn.execute(select).scalar()
        if value is None:
            newest = sa.func.coalesce(sa.func.max(_A.id), 0)
            insert = (postgresql_insert if self.dialect == "postgresql" else sqlite_insert)(t.meta)
            with self.write() as conn:
                # Several processes may open the database at once: the first one sets it.
                conn.execute(
                    insert.from_select(
                        ["key", "value"],
                        # (the WHERE lets SQLite parse ON CONFLICT after a SELECT)
                        sa.select(sa.literal(TIMES_ORDERED_FROM), sa.cast(newest, sa.Text)).where(
                            sa.true()
                        ),
                    ).on_conflict_do_nothing()
                )
                value = conn.execute(select).scalar_one()
        return int(value)

    def audit_records(
        self, conn: Connection, instance_id: str | None = None, *, batch: int = 2000
    ) -> Iterator[AuditRecord]:
        """Records of one instance, or all, ordered by instance then seq, streamed."""
        c = t.audit.c
        query = sa.select(t.audit).order_by(c.instance_id, c.seq)
        if instance_id is not None:
            query = query.where(c.instance_id == instance_id)
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
        for row in result:
            yield AuditRecord(
                row.instance_id,
                row.seq,
                row.at,
                row.actor,
                row.role,
                row.workflow_id,
                row.workflow_version,
                row.trigger,
                row.from_state,
                row.to_state,
                row.outcome,
                row.reason,
                row.changes,
                row.prev_hash,
                row.hash,
                row.id,
            )


def _revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _instance(row: Row[Any]) -> Instance:
    data = row.data if isinstance(row.data, dict) else json.loads(row.data)
    return Instance(
        id=row.id,
        workflow_id=row.workflow_id,
        workflow_version=row.workflow_version,
        state=row.state,
        data=data,
        version=row.version,
        parent_id=row.parent_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        state_entered_at=row.state_entered_at,
        audit_seq=row.audit_seq,
        audit_head=row.audit_head,
    )
