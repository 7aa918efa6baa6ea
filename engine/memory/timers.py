"""The memory store's deadline timers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta

from opcatflow.engine.deadlines import DUE, PlannedTimer
from opcatflow.engine.errors import StoreError
from opcatflow.engine.memory.instances import INSTANCES
from opcatflow.engine.memory.tables import Tables
from opcatflow.engine.rows import OPEN_TIMER, Timer, TimerStatus

TIMERS = "timers"


def _out(timer: Timer) -> Timer:
    # The payload is the only mutable part of a row: hand out a copy.
    return dataclasses.replace(timer, payload=dict(timer.payload or {}))


class MemoryTimers:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._rows: dict[int, Timer] = tables.table(TIMERS)

    def _select(self, keep: Callable[[Timer], bool]) -> list[Timer]:
        with self._t.lock:
            return [timer for timer in self._rows.values() if keep(timer)]

    def _change(self, timers: Sequence[Timer], **values: object) -> None:
        for timer in timers:
            self._t.put(TIMERS, timer.id, dataclasses.replace(timer, **values))  # type: ignore[arg-type]

    def arm(
        self, instance_id: str, state: str, planned: Sequence[PlannedTimer], now: datetime
    ) -> None:
        if not planned:
            return
        row = self._t.table(INSTANCES).get(instance_id)
        if row is None:  # the SQL store's foreign key
            raise StoreError(f"timers: no instance {instance_id!r}")
        instance = row[0]
        for p in planned:
            timer_id = self._t.next_id(TIMERS)
            self._t.insert(
                TIMERS,
                timer_id,
                Timer(
                    id=timer_id,
                    instance_id=instance_id,
                    workflow_id=instance.workflow_id,
                    workflow_version=instance.workflow_version,
                    state=state,
                    deadline=p.deadline,
                    kind=p.kind,
                    occurrence=p.occurrence,
                    due_at=p.due_at,
                    status=TimerStatus.PENDING,
                    attempts=0,
                    paused_at=None,
                    closed_at=None,
                    note=None,
                    payload=p.payload(),
                    created_at=now,
                    obligation_id=p.obligation_id,
                ),
            )

    def of_deadline(self, instance_id: str, state: str, deadline: str) -> list[Timer]:
        found = self._select(
            lambda t: t.instance_id == instance_id and t.state == state and t.deadline == deadline
        )
        return [_out(t) for t in sorted(found, key=lambda t: t.id)]

    def cancel(
        self,
        instance_id: str,
        state: str,
        *,
        at: datetime,
        note: str,
        deadline: str | None = None,
    ) -> None:
        found = self._select(
            lambda t: (
                t.instance_id == instance_id
                and t.state == state
                and t.status in OPEN_TIMER
                and (deadline is None or t.deadline == deadline)
            )
        )
        self._change(found, status=TimerStatus.CANCELLED, closed_at=at, note=note)

    def pause(self, instance_id: str, state: str, deadlines: Collection[str], at: datetime) -> None:
        found = self._select(
            lambda t: (
                t.instance_id == instance_id
                and t.state == state
                and t.deadline in deadlines
                and t.status == TimerStatus.PENDING
            )
        )
        self._change(found, status=TimerStatus.PAUSED, paused_at=at)

    def resume(
        self, instance_id: str, state: str, deadlines: Collection[str], at: datetime
    ) -> None:
        found = self._select(
            lambda t: (
                t.instance_id == instance_id
                and t.state == state
                and t.deadline in deadlines
                and t.status == TimerStatus.PAUSED
            )
        )
        for t in found:
            stopped = at - t.paused_at if t.paused_at is not None else timedelta(0)
            self._change([t], status=TimerStatus.PENDING, paused_at=None, due_at=t.due_at + stopped)

    def reschedule(self, timer_id: int, due_at: datetime, *, attempts: int) -> None:
        timer = self._rows.get(timer_id)
        if timer is not None:
            self._change([timer], due_at=due_at, attempts=attempts)

    def close_open(self, obligation_ids: Collection[int], *, at: datetime, note: str) -> None:
        found = self._select(lambda t: t.obligation_id in obligation_ids and t.status in OPEN_TIMER)
        self._change(found, status=TimerStatus.CANCELLED, closed_at=at, note=note)

    def pause_open(self, obligation_ids: Collection[int], at: datetime) -> None:
        found = self._select(
            lambda t: t.obligation_id in obligation_ids and t.status == TimerStatus.PENDING
        )
        self._change(found, status=TimerStatus.PAUSED, paused_at=at)

    def resume_open(self, obligation_ids: Collection[int], at: datetime) -> None:
        found = self._select(
            lambda t: t.obligation_id in obligation_ids and t.status == TimerStatus.PAUSED
        )
        for t in found:
            stopped = at - t.paused_at if t.paused_at is not None else timedelta(0)
            self._change([t], status=TimerStatus.PENDING, paused_at=None, due_at=t.due_at + stopped)

    def next_due(self) -> datetime | None:
        pending = self._select(lambda t: t.status == TimerStatus.PENDING)
        return min((t.due_at for t in pending), default=None)

    def due_count(self, now: datetime) -> int:
        return len(self._select(lambda t: t.status == TimerStatus.PENDING and t.due_at <= now))

    def newest_id(self) -> int | None:
        with self._t.lock:
            return max(self._rows, default=None)

    def claim(
        self,
        now: datetime,
        limit: int,
        *,
        up_to: int | None = None,
        exclude: Collection[int] = (),
    ) -> list[Timer]:
        # Writers are serialised, so no other open unit of work holds a row to skip.
        found = self._select(
            lambda t: (
                t.status == TimerStatus.PENDING
                and t.due_at <= now
                and (up_to is None or t.id <= up_to)
                and t.id not in exclude
            )
        )
        found.sort(key=lambda t: (t.due_at, t.id))
        return [_out(t) for t in found[: max(limit, 0)]]

    def status(self, timer_id: int) -> TimerStatus | None:
        with self._t.lock:
            timer = self._rows.get(timer_id)
        return timer.status if timer is not None else None

    def close(
        self,
        timer_id: int,
        status: TimerStatus,
        *,
        attempts: int,
        at: datetime | None,
        note: str | None,
    ) -> None:
        timer = self._rows.get(timer_id)
        if timer is not None:
            self._change([timer], status=status, attempts=attempts, closed_at=at, note=note)

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
        row = self._t.table(INSTANCES).get(instance_id)
        version = row[0].workflow_version if row is not None else None
        for timer in self._select(lambda t: t.instance_id == instance_id):
            # The SQL store joins the instance for its version: keep every row's in step.
            values: dict[str, object] = {"workflow_version": version or timer.workflow_version}
            if timer.state == state:
                values["state"] = to_state
            # A deadline's timers may have been armed in another state of its scope.
            new = deadlines.get(timer.deadline, timer.deadline)
            if new is None:
                if timer.status in OPEN_TIMER:
                    values.update(status=TimerStatus.CANCELLED, closed_at=at, note=note)
            else:
                values["deadline"] = new
            self._change([timer], **values)

    def open_timers(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        reminders: bool = False,
        due_before: datetime | None = None,
        limit: int = 1000,
    ) -> list[Timer]:
        found = self._select(
            lambda t: (
                t.status in OPEN_TIMER
                and (reminders or t.kind == DUE)
                and (workflow is None or t.workflow_id == workflow)
                and (state is None or t.state == state)
                and (due_before is None or t.due_at <= due_before)
            )
        )
        found.sort(key=lambda t: (t.due_at, t.id))
        return [_out(t) for t in found[: max(limit, 0)]]
