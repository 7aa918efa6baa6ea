"""The audit trail as SQL: records wait in their unit of work and are inserted, with their
positions, when it commits (``SqlUnitOfWork.flush`` in :mod:`opcatflow.engine.sql.unit`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from opcatflow.engine.audit import AuditRecord
from opcatflow.engine.sql import tables as t

_A = t.audit.c
_AFTER = (
    sa.select(t.audit)
    .where(_A.position > sa.bindparam("position"))
    .order_by(_A.position)
    .limit(sa.bindparam("limit"))
)
# One record with every column of :func:`audit_row` bound by name and typed as its column
# (the direct path, engine/sql/direct.py, compiles it once: a plain ``insert()`` takes its
# columns from the parameters of each call).
_ROW_COLUMNS = (
    "instance_id", "seq", "at", "actor", "role", "workflow_id", "workflow_version", "trigger",
    "from_state", "to_state", "outcome", "reason", "changes", "prev_hash", "hash", "format",
    "state_hash", "position",
)  # fmt: skip
INSERT_AUDIT_ROW = t.audit.insert().values(
    {name: sa.bindparam(name, type_=t.audit.c[name].type) for name in _ROW_COLUMNS}
)


def audit_row(record: AuditRecord, position: int) -> dict[str, Any]:
    """The row of ``record`` at ``position`` (its ``id`` is the database's)."""
    return {
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
        "format": record.format,
        "state_hash": record.state_hash,
        "position": position,
    }


def _record(row: Row[Any]) -> AuditRecord:
    # By index, in the table's column order (id, the 15 hashed fields and the hash,
    # position, format, state_hash): several times cheaper than 19 lookups by name, and
    # verify reads every record.
    v = tuple(row)
    return AuditRecord(
        v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13],
        v[14], v[15], v[0], v[16], v[17], v[18],
    )  # fmt: skip


class SqlAudit:
    __slots__ = ("_conn", "_pending")

    def __init__(self, conn: Connection, pending: list[AuditRecord]) -> None:
        self._conn = conn
        self._pending = pending

    def append(self, record: AuditRecord) -> None:
        # Inserted at the commit, with its position; a taken seq is a DuplicateKey then.
        self._pending.append(record)

    def records(
        self, instance_id: str | None = None, *, batch: int = 2000
    ) -> Iterator[AuditRecord]:
        query = sa.select(t.audit).order_by(_A.instance_id, _A.seq)
        if instance_id is not None:
            query = query.where(_A.instance_id == instance_id)
        # Options on the statement, not the connection: Connection.execution_options changes
        # the connection in place, and a write unit of work reading its chain (db encrypt)
        # would then send its INSERTs through a server-side cursor, which PostgreSQL refuses.
        result = self._conn.execute(
            query, execution_options={"stream_results": True, "yield_per": batch}
        )
        stored = (_record(row) for row in result)
        waiting = [r for r in self._pending if instance_id in (None, r.instance_id)]
        if not waiting:
            yield from stored
            return
        # This unit of work's own records, not inserted yet, in their place.
        yield from sorted([*stored, *waiting], key=lambda r: (r.instance_id, r.seq))

    def after(self, position: int, limit: int = 1000) -> list[AuditRecord]:
        rows = self._conn.execute(_AFTER, {"position": position, "limit": limit}).all()
        return [_record(row) for row in rows]
