"""Instances, their audit chains and the stored definitions, as SQL."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from opcatflow.engine.audit import AuditRecord, state_hash
from opcatflow.engine.errors import InstanceNotFound
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import DuplicateKey
from opcatflow.engine.rows import (
    DefinitionOrigin,
    DefinitionStatus,
    ListHolds,
    StoredDefinition,
)
from opcatflow.engine.sql import direct
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.dialect import Dialect

# The hot path's statements, built once: constructing a Core statement per call (coercions,
# cache keys) cost more than executing it on SQLite.
_I = t.instances.c
_A = t.audit.c
_SELECT_INSTANCE = sa.select(t.instances).where(_I.id == sa.bindparam("instance_id"))
_LOCK_INSTANCE = _SELECT_INSTANCE.with_for_update()
_UPDATE_INSTANCE = (
    t.instances.update()
    .where(_I.id == sa.bindparam("b_id"), _I.version == sa.bindparam("b_expected"))
    .values(
        workflow_version=sa.bindparam("workflow_version"),
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
# Ids in [low, high): a range scan of the primary key's index.
IDS_STARTING_WITH = (
    sa.select(_I.id)
    .where(_I.id >= sa.bindparam("low"), _I.id < sa.bindparam("high"))
    .order_by(_I.id)
    .limit(sa.bindparam("limit"))
)


class SqlInstances:
    __slots__ = ("_conn", "_lock", "_lock_for_append", "_pending")

    def __init__(self, conn: Connection, dialect: Dialect, pending: list[AuditRecord]) -> None:
        self._conn = conn
        self._pending = pending  # the unit of work's audit records, inserted at its commit
        locks = dialect.postgresql  # SQLite's writers hold the whole file already
        self._lock = _LOCK_INSTANCE if locks else _SELECT_INSTANCE
        self._lock_for_append = _LOCK_FOR_APPEND if locks else _SELECT_FOR_APPEND

    def lock(self, instance_id: str) -> Instance:
        row = self._conn.execute(self._lock, {"instance_id": instance_id}).first()
        if row is None:
            raise InstanceNotFound(instance_id)
        return _instance_of(row)

    def lock_for_append(self, instance_id: str) -> tuple[Instance, datetime | None]:
        conn = self._conn
        # the write path's read: straight on the driver (engine/sql/direct.py)
        row = direct.first(conn, self._lock_for_append, {"instance_id": instance_id})
        if row is None:
            raise InstanceNotFound(instance_id)
        instance = _instance_of(row)
        at: datetime | None = row[12]  # head_at, after the table's 12 columns
        if at is None:
            # Appended earlier in this unit of work (another member of its batch, or the
            # scheduler's previous timer on the instance): still waiting for the commit.
            for record in reversed(self._pending):
                if record.instance_id == instance_id and record.seq == instance.audit_seq:
                    return instance, record.at
        if at is None:
            # On PostgreSQL a statement that waited for the lock returns the row as the
            # writer it waited for left it, but its subquery reads the audit table as it was
            # when the statement began, without that writer's record: the record's seq is
            # the row's, so it finds nothing. A statement begun now sees it.
            at = conn.execute(
                _RECORD_AT, {"instance_id": instance_id, "seq": instance.audit_seq}
            ).scalar()
        return instance, at

    def get(self, instance_id: str) -> Instance:
        row = self._conn.execute(_SELECT_INSTANCE, {"instance_id": instance_id}).first()
        if row is None:
            raise InstanceNotFound(instance_id)
        return _instance_of(row)

    def insert(self, instance: Instance) -> None:
        try:
            self._conn.execute(
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
        except sa.exc.IntegrityError as err:
            raise DuplicateKey(f"instance {instance.id} exists") from err

    def update(self, instance: Instance, expected_version: int) -> bool:
        conn = self._conn
        values = {
            "b_id": instance.id,
            "b_expected": expected_version,
            "workflow_version": instance.workflow_version,
            "state": instance.state,
            "data": dict(instance.data),
            "version": instance.version,
            "updated_at": instance.updated_at,
            "state_entered_at": instance.state_entered_at,
            "audit_seq": instance.audit_seq,
            "audit_head": instance.audit_head,
        }
        return direct.rowcount(conn, _UPDATE_INSTANCE, values) == 1

    def advance_audit_head(self, instance_id: str, seq: int, head: str) -> bool:
        result = self._conn.execute(
            _ADVANCE_HEAD,
            {"b_id": instance_id, "b_seq": seq - 1, "audit_seq": seq, "audit_head": head},
        )
        return result.rowcount == 1

    def query(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        where: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
        workflow_version: int | None = None,
    ) -> list[Instance]:
        query = page_statement(
            workflow=workflow,
            state=state,
            where=where,
            parent_id=parent_id,
            after=after,
            limit=limit,
            workflow_version=workflow_version,
        )
        return [_instance_of(row) for row in self._conn.execute(query)]

    def count(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        where: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> int:
        query = _filtered(
            sa.select(sa.func.count()).select_from(t.instances),
            workflow=workflow,
            state=state,
            where=where,
            parent_id=parent_id,
            after=after,
        )
        return int(self._conn.execute(query).scalar_one())

    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        if not prefix:
            return []
        low, high = prefix_range(prefix)
        rows = self._conn.execute(IDS_STARTING_WITH, {"low": low, "high": high, "limit": limit})
        # the range decides which index entries are read; this keeps the answer exact
        return [row.id for row in rows if row.id.startswith(prefix)][:limit]

    def audit_heads(self) -> dict[str, tuple[int, str]]:
        c = t.instances.c
        rows = self._conn.execute(sa.select(c.id, c.audit_seq, c.audit_head))
        return {row.id: (row.audit_seq, row.audit_head) for row in rows}

    def state_hashes(self) -> dict[str, str]:
        c = t.instances.c
        query = sa.select(c.id, c.workflow_id, c.workflow_version, c.state, c.version, c.data)
        rows = self._conn.execute(query, execution_options={"stream_results": True})
        return {
            r.id: state_hash(r.workflow_id, r.workflow_version, r.state, r.version, r.data)
            for r in rows
        }

    def census(self) -> dict[tuple[str, int, str], int]:
        c = t.instances.c
        query = sa.select(c.workflow_id, c.workflow_version, c.state, sa.func.count()).group_by(
            c.workflow_id, c.workflow_version, c.state
        )
        return {(w, v, s): int(n) for w, v, s, n in self._conn.execute(query)}


def prefix_range(prefix: str) -> tuple[str, str]:
    """``(low, high)``: every text starting with ``prefix`` sorts in ``[low, high)``.

    Ids are UUIDs: lowercase hexadecimal digits with hyphens at fixed places. Their order,
    and so these bounds, is the same under byte order (SQLite, PostgreSQL's C collations)
    and under the locale collations that ignore hyphens at first (glibc's): trailing
    hyphens are dropped from the bounds so that both read the same index entries.
    """
    low = prefix.rstrip("-") or prefix
    return low, low[:-1] + chr(ord(low[-1]) + 1)


def page_statement(
    *,
    workflow: str | None = None,
    state: str | None = None,
    where: Mapping[str, Any] | None = None,
    parent_id: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 100,
    workflow_version: int | None = None,
) -> sa.Select[Any]:
    """One page of instances in ``(created_at, id)`` order (the ``ix_instances_created``
    index answers it: tests/test_listing_plans.py reads the plans)."""
    c = t.instances.c
    query = _filtered(
        sa.select(t.instances),
        workflow=workflow,
        state=state,
        where=where,
        parent_id=parent_id,
        after=after,
    )
    if workflow_version is not None:
        query = query.where(c.workflow_version == workflow_version)
    return query.order_by(c.created_at, c.id).limit(limit)


def _filtered(
    query: sa.Select[Any],
    *,
    workflow: str | None,
    state: str | None,
    where: Mapping[str, Any] | None,
    parent_id: str | None,
    after: tuple[datetime, str] | None,
) -> sa.Select[Any]:
    c = t.instances.c
    if workflow is not None:
        query = query.where(c.workflow_id == workflow)
    if state is not None:
        query = query.where(c.state == state)
    if parent_id is not None:
        query = query.where(c.parent_id == parent_id)
    if after is not None:
        # a row value: the (created_at, id) index answers it, and a page never skips or
        # repeats a row whatever is inserted meanwhile (new rows sort after older ones)
        query = query.where(sa.tuple_(c.created_at, c.id) > sa.tuple_(*after))
    for name, value in (where or {}).items():
        element = c.data[name]
        if isinstance(value, ListHolds):
            query = query.where(_ListHolds(name, value.value))
            continue
        if isinstance(value, bool):
            query = query.where(element.as_boolean() == value)
        elif isinstance(value, int):
            query = query.where(element.as_integer() == value)
        else:
            query = query.where(element.as_string() == str(value))
    return query


class _ListHolds(sa.sql.expression.ColumnElement[bool]):
    """The instance's list field ``name`` holds the text ``value``: JSONB containment on
    PostgreSQL, a ``json_each`` over the list on SQLite (compiled per dialect below)."""

    inherit_cache = False
    type = sa.Boolean()

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value


@compiles(_ListHolds, "postgresql")
def _list_holds_pg(element: _ListHolds, compiler: SQLCompiler, **kw: Any) -> str:
    value = t.instances.c.data[element.name]
    holds = sa.and_(
        sa.func.jsonb_typeof(value) == "array",
        value.op("@>")(sa.func.jsonb_build_array(element.value)),
    )
    return compiler.process(holds, **kw)


@compiles(_ListHolds)
def _list_holds_sqlite(element: _ListHolds, compiler: SQLCompiler, **kw: Any) -> str:
    # json_each over a scalar yields the scalar itself: only an array's items count
    path = f'$."{element.name}"'
    data = t.instances.c.data
    items = sa.func.json_each(data, path).table_valued("value")
    found = sa.and_(
        sa.func.json_type(data, path) == "array",
        sa.exists(
            sa.select(sa.literal(1)).select_from(items).where(items.c.value == element.value)
        ),
    )
    return compiler.process(found, **kw)


class SqlDefinitions:
    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    def get(self, workflow: str, version: int) -> StoredDefinition | None:
        d = t.definitions.c
        row = self._conn.execute(
            sa.select(t.definitions).where(d.workflow_id == workflow, d.version == version)
        ).first()
        return _definition(row) if row is not None else None

    def listing(self) -> list[StoredDefinition]:
        d = t.definitions.c
        query = sa.select(t.definitions).order_by(d.workflow_id, d.version)
        return [_definition(row) for row in self._conn.execute(query)]

    def set_status(
        self, workflow: str, version: int, status: DefinitionStatus, at: datetime
    ) -> None:
        d = t.definitions.c
        retired_at = at if status is DefinitionStatus.RETIRED else None
        self._conn.execute(
            t.definitions.update()
            .where(d.workflow_id == workflow, d.version == version)
            .values(status=str(status), retired_at=retired_at)
        )

    def set_origin(self, workflow: str, version: int, origin: DefinitionOrigin) -> None:
        d = t.definitions.c
        self._conn.execute(
            t.definitions.update()
            .where(d.workflow_id == workflow, d.version == version)
            .values(origin=str(origin))
        )

    def add(self, definition: StoredDefinition) -> None:
        self._conn.execute(
            self._dialect.insert_new(t.definitions).values(
                workflow_id=definition.workflow_id,
                version=definition.version,
                fingerprint=definition.fingerprint,
                title=definition.title,
                source=definition.source,
                registered_at=definition.registered_at,
                status=str(definition.status),
                origin=str(definition.origin),
                retired_at=definition.retired_at,
            )
        )

    def set_fingerprint(self, workflow: str, version: int, fingerprint: str) -> None:
        d = t.definitions.c
        self._conn.execute(
            t.definitions.update()
            .where(d.workflow_id == workflow, d.version == version)
            .values(fingerprint=fingerprint)
        )


def _definition(row: Row[Any]) -> StoredDefinition:
    return StoredDefinition(
        row.workflow_id,
        row.version,
        row.fingerprint,
        row.title,
        row.source,
        row.registered_at,
        DefinitionStatus(row.status),
        DefinitionOrigin(row.origin),
        row.retired_at,
    )


def _instance_of(row: Sequence[Any]) -> Instance:
    """The instance of a row of ``instances``, by position in the table's column order (a
    ``Row`` of ``select(instances)``, or the plain tuple of the direct path)."""
    data = row[4] if isinstance(row[4], dict) else json.loads(row[4])
    return Instance(
        row[0], row[1], row[2], row[3], data, row[5], row[6], row[7], row[8], row[9], row[10],
        row[11],
    )  # fmt: skip
