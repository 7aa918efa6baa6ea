"""The memory store's obligations."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from datetime import datetime

from opcatflow.engine.errors import StoreError
from opcatflow.engine.memory.instances import INSTANCES
from opcatflow.engine.memory.tables import Tables
from opcatflow.engine.ports import DuplicateKey
from opcatflow.engine.rows import NewObligation, Obligation, ObligationStatus

OBLIGATIONS = "obligations"


class MemoryObligations:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._rows: dict[int, Obligation] = tables.table(OBLIGATIONS)

    def _select(self, keep: Callable[[Obligation], bool]) -> list[Obligation]:
        with self._t.lock:
            return [self._out(row) for row in self._rows.values() if keep(self._out(row))]

    def _taken(self, key: tuple[str, str, int], but: int | None = None) -> bool:
        return any(row.key == key and row.id != but for row in self._rows.values())

    def add(self, obligation: NewObligation, now: datetime) -> int:
        found = self._t.table(INSTANCES).get(obligation.instance_id)
        if found is None:  # the SQL store's foreign key
            raise StoreError(f"obligations: no instance {obligation.instance_id!r}")
        instance = found[0]
        key = (obligation.instance_id, obligation.deadline, obligation.occurrence)
        if self._taken(key):
            raise DuplicateKey(f"obligation {key!r} is already stored")
        new_id = self._t.next_id(OBLIGATIONS)
        row = Obligation(
            id=new_id,
            instance_id=obligation.instance_id,
            workflow_id=instance.workflow_id,
            workflow_version=instance.workflow_version,
            state=instance.state,
            deadline=obligation.deadline,
            occurrence=obligation.occurrence,
            scope=obligation.scope,
            anchor=obligation.anchor,
            due_at=obligation.due_at,
            last_day=obligation.last_day,
            status=obligation.status,
            paused_at=None,
            met_at=obligation.met_at,
            met_by=obligation.met_by,
            days_late=obligation.days_late,
            note=obligation.note,
            created_at=now,
            updated_at=now,
        )
        self._t.insert(OBLIGATIONS, new_id, row)
        return new_id

    def _out(self, row: Obligation) -> Obligation:
        # the instance's state now, as the SQL store reads it with the row
        found = self._t.table(INSTANCES).get(row.instance_id)
        return row if found is None else dataclasses.replace(row, state=found[0].state)

    def get(self, obligation_id: int) -> Obligation | None:
        with self._t.lock:
            row = self._rows.get(obligation_id)
            return None if row is None else self._out(row)

    def of_instance(self, instance_id: str, *, deadline: str | None = None) -> list[Obligation]:
        found = self._select(
            lambda o: o.instance_id == instance_id and (deadline is None or o.deadline == deadline)
        )
        return sorted(found, key=lambda o: (o.deadline, o.occurrence))

    def update(self, obligation: Obligation, now: datetime) -> None:
        stored = self._rows.get(obligation.id)
        if stored is None:
            return
        if self._taken(obligation.key, but=obligation.id):
            raise DuplicateKey(f"obligation {obligation.key!r} is already stored")
        row = dataclasses.replace(
            obligation,
            instance_id=stored.instance_id,
            workflow_id=stored.workflow_id,
            workflow_version=stored.workflow_version,
            created_at=stored.created_at,
            updated_at=now,
        )
        self._t.put(OBLIGATIONS, obligation.id, row)

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
        def keep(o: Obligation) -> bool:
            if o.status not in statuses or (due_before is not None and o.due_at > due_before):
                return False
            if after is not None and (o.due_at, o.id) <= after:
                return False
            if workflow is not None and o.workflow_id != workflow:
                return False
            return state is None or o.state == state

        found = self._select(keep)
        found.sort(key=lambda o: (o.due_at, o.id))
        return found[: max(limit, 0)]
