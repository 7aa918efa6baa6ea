"""What ``opcatflow db encrypt`` does that no unit of work may: rewrite audit records, and
take the space cleartext left behind out of the database's files.

Only the conversion of a database an older release wrote calls these. The audit table's
append-only triggers are suspended inside the conversion's own transaction and restored
before it commits, so no other transaction ever sees them missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.engine.audit import AuditRecord
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.store import SQLAlchemyStore

_SQLITE_TRIGGERS = {
    event: f"CREATE TRIGGER audit_append_only_{event.lower()} BEFORE {event} ON audit "
    f"BEGIN SELECT RAISE(ABORT, 'the audit table is append-only ({event} refused)'); END"
    for event in ("UPDATE", "DELETE")
}
_A = t.audit.c
_REWRITE = (
    t.audit.update()
    .where(_A.id == sa.bindparam("b_id"))
    .values(
        reason=sa.bindparam("reason"),
        format=sa.bindparam("format"),
        prev_hash=sa.bindparam("prev_hash"),
        hash=sa.bindparam("hash"),
    )
)


@contextmanager
def audit_rewritable(conn: Connection) -> Iterator[None]:
    """Suspend the audit table's append-only triggers for the block, in its transaction."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
        yield
        conn.exec_driver_sql("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
        return
    for event in _SQLITE_TRIGGERS:
        conn.exec_driver_sql(f"DROP TRIGGER audit_append_only_{event.lower()}")
    yield
    for create in _SQLITE_TRIGGERS.values():
        conn.exec_driver_sql(create)


def rewrite_audit(conn: Connection, records: Sequence[AuditRecord]) -> None:
    """Store new reason, format and hashes for records already stored (by their ``id``)."""
    params = [
        {
            "b_id": r.id,
            "reason": r.reason,
            "format": r.format,
            "prev_hash": r.prev_hash,
            "hash": r.hash,
        }
        for r in records
    ]
    if params:
        with audit_rewritable(conn):
            conn.execute(_REWRITE, params)


def outbox_payloads(conn: Connection, after: int, limit: int) -> list[Any]:
    """``(id, instance_id, idempotency_key, payload)`` of outbox rows above ``after``."""
    c = t.outbox.c
    query = (
        sa.select(c.id, c.instance_id, c.idempotency_key, c.payload)
        .where(c.id > after)
        .order_by(c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def set_outbox_payload(conn: Connection, message_id: int, payload: Any) -> None:
    c = t.outbox.c
    conn.execute(t.outbox.update().where(c.id == message_id).values(payload=payload))


def open_replies(conn: Connection, limit: int) -> list[Any]:
    """``(api_key_id, key, response)`` of idempotency replies still in clear."""
    c = t.idempotency.c
    query = (
        sa.select(c.api_key_id, c.key, c.response)
        .where(sa.not_(c.response.startswith("sealed:")))
        .limit(limit)
    )
    return list(conn.execute(query))


def set_reply(conn: Connection, api_key_id: str, key: str, response: str) -> None:
    c = t.idempotency.c
    conn.execute(
        t.idempotency.update()
        .where(c.api_key_id == api_key_id, c.key == key)
        .values(response=response)
    )


def erase_freed_space(store: SQLAlchemyStore) -> None:
    """Take the cleartext that updates left behind out of the database's files.

    SQLite (opened with ``secure_delete``, which zeroes what a write frees): the WAL is
    checkpointed and truncated, ``VACUUM`` rewrites the file with live rows only, and the
    WAL it wrote through is truncated again. PostgreSQL: ``VACUUM FULL`` rewrites each table
    that held personal values, without its dead rows (its write-ahead log and earlier base
    backups are the operator's: docs/operations.md says what to do with them).
    """
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA secure_delete=ON")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            raw.execute("VACUUM")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with store.engine.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("instances", "audit", "outbox", "idempotency", "opcatflow_meta"):
            auto.exec_driver_sql(f"VACUUM FULL {table}")
