"""Obligations as SQL: one row per deadline occurrence, listed one status at a time."""

from __future__ import annotations

import heapq
from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from opcatflow.engine.errors import StoreError
from opcatflow.engine.ports import DuplicateKey
from opcatflow.engine.rows import NewObligation, Obligation, ObligationStatus
from opcatflow.engine.sql import tables as t

_c = t.obligations.c
_i = t.instances.c
_WITH_WORKFLOW = sa.select(
    t.obligations, _i.workflow_id, _i.workflow_version, _i.state.label("instance_state")
).join(t.instances, _i.id == _c.instance_id)
_INSERT = t.obligations.insert().returning(_c.id)
# The scheduler reads one obligation per timer it fires: built once, not per call.
_GET = _WITH_WORKFLOW.where(_c.id == sa.bindparam("b_id"))
# Written back by ``update``: everything but the identity of the row and its creation.
_MUTABLE = (
    "deadline", "occurrence", "scope", "anchor", "due_at", "last_day", "status", "paused_at",
    "met_at", "met_by", "days_late", "note",
)  # fmt: skip


def listing_query(
    status: ObligationStatus,
    *,
    workflow: str | None = None,
    state: str | None = None,
    due_before: datetime | None = None,
    limit: int = 100,
    after: tuple[datetime, int] | None = None,
) -> Any:
    """The listing of one status, in due order (the benchmark shows its plan)."""
    query = _WITH_WORKFLOW.where(_c.status == status)
    if workflow is not None:
        query = query.where(_i.workflow_id == workflow)
    if state is not None:
        query = query.where(_i.state == state)
    if due_before is not None:
        query = query.where(_c.due_at <= due_before)
    if after is not None:  # keyset paging: rows sorting after the last one shown
        due, last = after
        query = query.where(sa.or_(_c.due_at > due, sa.and_(_c.due_at == due, _c.id > last)))
    return query.order_by(_c.due_at, _c.id).limit(limit)


class SqlObligations:
    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, obligation: NewObligation, now: datetime) -> int:
        values = {
            "instance_id": obligation.instance_id,
            "deadline": obligation.deadline,
            "occurrence": obligation.occurrence,
            "scope": obligation.scope,
            "anchor": obligation.anchor,
            "due_at": obligation.due_at,
            "last_day": obligation.last_day,
            "status": obligation.status,
            "met_at": obligation.met_at,
            "met_by": obligation.met_by,
            "days_late": obligation.days_late,
            "note": obligation.note,
            "created_at": now,
            "updated_at": now,
        }
        try:
            new_id = self._conn.execute(_INSERT, values).scalar_one()
        except sa.exc.IntegrityError as err:
            if "foreign" in str(err).lower():
                raise StoreError(f"obligations: no instance {obligation.instance_id!r}") from err
            raise DuplicateKey(
                f"obligation {obligation.deadline!r} #{obligation.occurrence} of "
                f"{obligation.instance_id} is already stored"
            ) from err
        return int(new_id)

    def get(self, obligation_id: int) -> Obligation | None:
        row = self._conn.execute(_GET, {"b_id": obligation_id}).first()
        return None if row is None else _obligation(row)

    def of_instance(self, instance_id: str, *, deadline: str | None = None) -> list[Obligation]:
        query = _WITH_WORKFLOW.where(_c.instance_id == instance_id)
        if deadline is not None:
            query = query.where(_c.deadline == deadline)
        rows = self._conn.execute(query.order_by(_c.deadline, _c.occurrence))
        return [_obligation(row) for row in rows]

    def update(self, obligation: Obligation, now: datetime) -> None:
        values: dict[str, Any] = {name: getattr(obligation, name) for name in _MUTABLE}
        try:
            self._conn.execute(
                t.obligations.update()
                .where(_c.id == obligation.id)
                .values(**values, updated_at=now)
            )
        except sa.exc.IntegrityError as err:
            raise DuplicateKey(
                f"obligation {obligation.deadline!r} #{obligation.occurrence} of "
                f"{obligation.instance_id} is already stored"
            ) from err

    def listing(
        self,
        statuses: Collection[ObligationStatus],
        *,
        workflow: str | None = None,
        state: str | None = None,
        due_before: datetime | None = None,
        limit: int = 100,
        after: tuple[datetime, int] | None = None,
    ) -> list[Obligation]:
        # One ordered index range per status, merged: an IN list would sort every match.
        pages = [
            [
                _obligation(row)
                for row in self._conn.execute(
                    listing_query(
                        status,
                        workflow=workflow,
                        state=state,
                        due_before=due_before,
                        limit=limit,
                        after=after,
                    )
                )
            ]
            for status in dict.fromkeys(statuses)
        ]
        merged = heapq.merge(*pages, key=lambda o: (o.due_at, o.id))
        return [o for _, o in zip(range(max(limit, 0)), merged, strict=False)]


def _obligation(row: Row[Any]) -> Obligation:
    return Obligation(
        id=row.id,
        instance_id=row.instance_id,
        workflow_id=row.workflow_id,
        workflow_version=row.workflow_version,
        state=row.instance_state,
        deadline=row.deadline,
        occurrence=row.occurrence,
        scope=row.scope,
        anchor=row.anchor,
        due_at=row.due_at,
        last_day=row.last_day,
        status=ObligationStatus(row.status),
        paused_at=row.paused_at,
        met_at=row.met_at,
        met_by=row.met_by,
        days_late=row.days_late,
        note=row.note,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
