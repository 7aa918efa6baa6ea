"""Deadline timers as SQL: armed and closed with the change, claimed by the scheduler."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from opcatflow.engine.deadlines import DUE, PlannedTimer
from opcatflow.engine.rows import OPEN_TIMER, Timer, TimerStatus
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.dialect import Dialect

_c = t.timers.c
_i = t.instances.c
_WITH_WORKFLOW = sa.select(t.timers, _i.workflow_id, _i.workflow_version).join(
    t.instances, _i.id == _c.instance_id
)


def claim_query(
    dialect: Dialect,
    now: datetime,
    limit: int,
    up_to: int | None = None,
    exclude: Collection[int] = (),
) -> Any:
    """The scheduler's claim statement (the benchmark shows its plan)."""
    query = (
        _WITH_WORKFLOW.where(_c.status == TimerStatus.PENDING, _c.due_at <= now)
        .order_by(_c.due_at, _c.id)
        .limit(limit)
    )
    if up_to is not None:
        query = query.where(_c.id <= up_to)
    if exclude:
        query = query.where(_c.id.not_in(sorted(exclude)))
    if dialect.postgresql:
        # Locking the instance too keeps two workers off one instance (no deadlock between
        # a reminder and a due date of the same case), and skips a case a person is
        # changing right now: it is claimed by the next sweep.
        query = query.with_for_update(skip_locked=True, of=[t.timers, t.instances])
    return query


# Statements the scheduler runs for every timer, built once.
_INSERT = t.timers.insert()
_CLOSE = (
    t.timers.update()
    .where(_c.id == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status"),
        closed_at=sa.bindparam("b_closed_at", type_=t.UTCDateTime),
        attempts=sa.bindparam("b_attempts"),
        note=sa.bindparam("b_note"),
    )
)


_RESCHEDULE = (
    t.timers.update()
    .where(_c.id == sa.bindparam("b_id"))
    .values(
        due_at=sa.bindparam("b_due_at", type_=t.UTCDateTime), attempts=sa.bindparam("b_attempts")
    )
)


def next_due_query() -> Any:
    """The sweep's first probe: the earliest pending due time (an index-only read of
    ``ix_timers_status_due``; the benchmark shows its plan)."""
    return sa.select(_c.due_at).where(_c.status == TimerStatus.PENDING).order_by(_c.due_at).limit(1)


class SqlTimers:
    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    def arm(
        self, instance_id: str, state: str, planned: Sequence[PlannedTimer], now: datetime
    ) -> None:
        if not planned:
            return
        self._conn.execute(
            _INSERT,
            [
                {
                    "instance_id": instance_id,
                    "state": state,
                    "deadline": p.deadline,
                    "kind": p.kind,
                    "occurrence": p.occurrence,
                    "due_at": p.due_at,
                    "status": TimerStatus.PENDING,
                    "attempts": 0,
                    "payload": p.payload(),
                    "created_at": now,
                    "obligation_id": p.obligation_id,
                }
                for p in planned
            ],
        )

    def of_deadline(self, instance_id: str, state: str, deadline: str) -> list[Timer]:
        query = _WITH_WORKFLOW.where(
            _c.instance_id == instance_id, _c.state == state, _c.deadline == deadline
        ).order_by(_c.id)
        return [_timer(row) for row in self._conn.execute(query)]

    def cancel(
        self,
        instance_id: str,
        state: str,
        *,
        at: datetime,
        note: str,
        deadline: str | None = None,
    ) -> None:
        query = t.timers.update().where(
            _c.instance_id == instance_id, _c.state == state, _c.status.in_(OPEN_TIMER)
        )
        if deadline is not None:
            query = query.where(_c.deadline == deadline)
        self._conn.execute(query.values(status=TimerStatus.CANCELLED, closed_at=at, note=note))

    def pause(self, instance_id: str, state: str, deadlines: Collection[str], at: datetime) -> None:
        self._conn.execute(
            t.timers.update()
            .where(
                _c.instance_id == instance_id,
                _c.state == state,
                _c.deadline.in_(sorted(deadlines)),
                _c.status == TimerStatus.PENDING,
            )
            .values(status=TimerStatus.PAUSED, paused_at=at)
        )

    def resume(
        self, instance_id: str, state: str, deadlines: Collection[str], at: datetime
    ) -> None:
        rows = self._conn.execute(
            sa.select(_c.id, _c.due_at, _c.paused_at).where(
                _c.instance_id == instance_id,
                _c.state == state,
                _c.deadline.in_(sorted(deadlines)),
                _c.status == TimerStatus.PAUSED,
            )
        ).all()
        self._resume(rows, at)

    def next_due(self) -> datetime | None:
        value: datetime | None = self._conn.execute(next_due_query()).scalar()
        return value

    def due_count(self, now: datetime) -> int:
        return int(
            self._conn.execute(
                sa.select(sa.func.count())
                .select_from(t.timers)
                .where(_c.status == TimerStatus.PENDING, _c.due_at <= now)
            ).scalar_one()
        )

    def newest_id(self) -> int | None:
        value: int | None = self._conn.execute(sa.select(sa.func.max(_c.id))).scalar()
        return value

    def claim(
        self,
        now: datetime,
        limit: int,
        *,
        up_to: int | None = None,
        exclude: Collection[int] = (),
    ) -> list[Timer]:
        query = claim_query(self._dialect, now, limit, up_to, exclude)
        return [_timer(row) for row in self._conn.execute(query)]

    def status(self, timer_id: int) -> TimerStatus | None:
        value = self._conn.execute(sa.select(_c.status).where(_c.id == timer_id)).scalar()
        return None if value is None else TimerStatus(value)

    def close(
        self,
        timer_id: int,
        status: TimerStatus,
        *,
        attempts: int,
        at: datetime | None,
        note: str | None,
    ) -> None:
        self._conn.execute(
            _CLOSE,
            {
                "b_id": timer_id,
                "b_status": str(status),
                "b_closed_at": at,
                "b_attempts": attempts,
                "b_note": note,
            },
        )

    def rekey(
        self,
        instance_id: str,
        state: str,
        to_state: str,
        deadlines: Mapping[str, str | None],
        *,
        at: datetime,
        note: str,
    ) -> None:
        # A deadline's timers may have been armed in another state of its scope: names change
        # on every timer of the instance, the state only on those its state armed.
        mine = _c.instance_id == instance_id
        dropped = sorted(name for name, new in deadlines.items() if new is None)
        if dropped:
            self._conn.execute(
                t.timers.update()
                .where(mine, _c.deadline.in_(dropped), _c.status.in_(OPEN_TIMER))
                .values(status=TimerStatus.CANCELLED, closed_at=at, note=note)
            )
        renamed = {old: new for old, new in deadlines.items() if new is not None and new != old}
        if renamed:
            # One statement with a CASE, so swapped names (a -> b, b -> a) never collide.
            name: Any = sa.case(renamed, value=_c.deadline, else_=_c.deadline)
            self._conn.execute(t.timers.update().where(mine).values(deadline=name))
        self._conn.execute(t.timers.update().where(mine, _c.state == state).values(state=to_state))

    def reschedule(self, timer_id: int, due_at: datetime, *, attempts: int) -> None:
        self._conn.execute(
            _RESCHEDULE, {"b_id": timer_id, "b_due_at": due_at, "b_attempts": attempts}
        )

    def close_open(self, obligation_ids: Collection[int], *, at: datetime, note: str) -> None:
        if not obligation_ids:
            return
        self._conn.execute(
            t.timers.update()
            .where(_c.obligation_id.in_(sorted(obligation_ids)), _c.status.in_(OPEN_TIMER))
            .values(status=TimerStatus.CANCELLED, closed_at=at, note=note)
        )

    def pause_open(self, obligation_ids: Collection[int], at: datetime) -> None:
        if not obligation_ids:
            return
        self._conn.execute(
            t.timers.update()
            .where(_c.obligation_id.in_(sorted(obligation_ids)), _c.status == TimerStatus.PENDING)
            .values(status=TimerStatus.PAUSED, paused_at=at)
        )

    def resume_open(self, obligation_ids: Collection[int], at: datetime) -> None:
        if not obligation_ids:
            return
        rows = self._conn.execute(
            sa.select(_c.id, _c.due_at, _c.paused_at).where(
                _c.obligation_id.in_(sorted(obligation_ids)), _c.status == TimerStatus.PAUSED
            )
        ).all()
        self._resume(rows, at)

    def _resume(self, rows: Sequence[Any], at: datetime) -> None:
        for row in rows:
            self._conn.execute(
                t.timers.update()
                .where(_c.id == row.id)
                .values(
                    status=TimerStatus.PENDING,
                    paused_at=None,
                    due_at=row.due_at + (at - row.paused_at),
                )
            )

    def open_timers(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        reminders: bool = False,
        due_before: datetime | None = None,
        limit: int = 1000,
    ) -> list[Timer]:
        query = _WITH_WORKFLOW.where(_c.status.in_(OPEN_TIMER)).order_by(_c.due_at, _c.id)
        if not reminders:
            query = query.where(_c.kind == DUE)
        if workflow is not None:
            query = query.where(_i.workflow_id == workflow)
        if state is not None:
            query = query.where(_c.state == state)
        if due_before is not None:
            query = query.where(_c.due_at <= due_before)
        return [_timer(row) for row in self._conn.execute(query.limit(limit))]


def _timer(row: Row[Any]) -> Timer:
    return Timer(
        id=row.id,
        instance_id=row.instance_id,
        workflow_id=row.workflow_id,
        workflow_version=row.workflow_version,
        state=row.state,
        deadline=row.deadline,
        kind=row.kind,
        occurrence=row.occurrence,
        due_at=row.due_at,
        status=TimerStatus(row.status),
        attempts=row.attempts,
        paused_at=row.paused_at,
        closed_at=row.closed_at,
        note=row.note,
        payload=row.payload,
        created_at=row.created_at,
        obligation_id=row.obligation_id,
    )
