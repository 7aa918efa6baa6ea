"""The memory store's instances, audit trail and stored definitions."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from opcatflow.engine.audit import AuditRecord, state_hash
from opcatflow.engine.errors import InstanceNotFound
from opcatflow.engine.instance import Instance
from opcatflow.engine.memory.tables import Tables
from opcatflow.engine.rows import (
    DefinitionOrigin,
    DefinitionStatus,
    ListHolds,
    StoredDefinition,
)

INSTANCES = "instances"
AUDIT = "audit"  # (instance id, seq) -> record
AUDIT_TOP = "audit_top"  # instance id -> the highest seq of its chain
AUDIT_POSITIONS = "audit_positions"  # position -> (instance id, seq), in position order
DEFINITIONS = "definitions"

# An instance as kept: the instance itself when its values are all flat (text, numbers,
# booleans, null): an instance's data is a read-only view of a dict only that view reaches
# (see Instance), so such an instance is immutable through and through, and the store keeps
# what the engine built and hands it out again without a copy. When a value is a list or an
# object (which a caller could change in place), the data is also kept as JSON text and
# decoded afresh for every read.
Stored = tuple[Instance, str | None]
_FLAT = frozenset({str, int, float, bool, type(None)})


def _freeze(instance: Instance) -> Stored:
    if _FLAT.issuperset(map(type, instance.data.values())):
        return instance, None
    return instance, json.dumps(dict(instance.data))


def _data(row: Stored) -> Mapping[str, Any]:
    return row[0].data if row[1] is None else json.loads(row[1])


def _thaw(row: Stored) -> Instance:
    kept, data = row
    if data is None:
        return kept
    return Instance(
        kept.id,
        kept.workflow_id,
        kept.workflow_version,
        kept.state,
        json.loads(data),
        kept.version,
        kept.parent_id,
        kept.created_at,
        kept.updated_at,
        kept.state_entered_at,
        kept.audit_seq,
        kept.audit_head,
    )


def _matches(value: Any, wanted: Any) -> bool:
    # The SQL store's comparisons: as a boolean, as an integer, else as text.
    if isinstance(wanted, ListHolds):
        return isinstance(value, list) and any(
            isinstance(v, str) and v == wanted.value for v in value
        )
    if isinstance(wanted, bool):
        return isinstance(value, bool) and value == wanted
    if isinstance(wanted, int):
        return not isinstance(value, bool) and isinstance(value, int | float) and value == wanted
    return isinstance(value, str) and value == str(wanted)


class MemoryInstances:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._rows = tables.table(INSTANCES)
        self._audit = tables.table(AUDIT)

    def lock(self, instance_id: str) -> Instance:
        # Writers are serialised: the unit of work holding the store's lock holds every row.
        return self.get(instance_id)

    def lock_for_append(self, instance_id: str) -> tuple[Instance, datetime | None]:
        with self._t.lock:
            row = self._rows.get(instance_id)
            if row is None:
                raise InstanceNotFound(instance_id)
            last = self._audit.get((instance_id, row[0].audit_seq))
        return _thaw(row), last.at if last is not None else None

    def get(self, instance_id: str) -> Instance:
        with self._t.lock:
            row = self._rows.get(instance_id)
        if row is None:
            raise InstanceNotFound(instance_id)
        return _thaw(row)

    def insert(self, instance: Instance) -> None:
        self._t.insert(INSTANCES, instance.id, _freeze(instance))

    def update(self, instance: Instance, expected_version: int) -> bool:
        row = self._rows.get(instance.id)
        if row is None or row[0].version != expected_version:
            return False
        self._t.put(INSTANCES, instance.id, _freeze(instance))
        return True

    def advance_audit_head(self, instance_id: str, seq: int, head: str) -> bool:
        row = self._rows.get(instance_id)
        if row is None or row[0].audit_seq != seq - 1:
            return False
        kept, data = row
        moved = Instance(
            kept.id,
            kept.workflow_id,
            kept.workflow_version,
            kept.state,
            kept.data,
            kept.version,
            kept.parent_id,
            kept.created_at,
            kept.updated_at,
            kept.state_entered_at,
            seq,
            head,
        )
        self._t.put(INSTANCES, instance_id, (moved, data))
        return True

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
        found = self._matching(
            workflow, state, where, parent_id, after, workflow_version=workflow_version
        )
        found.sort(key=lambda item: (item[0], item[1]))
        return [_thaw(row) for _, _, row in found[: max(limit, 0)]]

    def count(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        where: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> int:
        return len(self._matching(workflow, state, where, parent_id, after))

    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        # The memory store has no index: it scans its keys (see its documentation: made for
        # tests and embedding). The SQL store reads a range of the id's index.
        if not prefix:
            return []
        with self._t.lock:
            found = sorted(key for key in self._rows if key.startswith(prefix))
        return found[: max(limit, 0)]

    def _matching(
        self,
        workflow: str | None,
        state: str | None,
        where: Mapping[str, Any] | None,
        parent_id: str | None,
        after: tuple[datetime, str] | None,
        *,
        workflow_version: int | None = None,
    ) -> list[tuple[datetime, str, Stored]]:
        with self._t.lock:
            rows = list(self._rows.values())
        found: list[tuple[datetime, str, Stored]] = []
        for row in rows:
            kept = row[0]
            if workflow is not None and kept.workflow_id != workflow:
                continue
            if workflow_version is not None and kept.workflow_version != workflow_version:
                continue
            if state is not None and kept.state != state:
                continue
            if parent_id is not None and kept.parent_id != parent_id:
                continue
            if after is not None and (kept.created_at, kept.id) <= after:
                continue
            if where:
                data = _data(row)
                if not all(_matches(data.get(k), v) for k, v in where.items()):
                    continue
            found.append((kept.created_at, kept.id, row))
        return found

    def audit_heads(self) -> dict[str, tuple[int, str]]:
        with self._t.lock:
            return {key: (kept.audit_seq, kept.audit_head) for key, (kept, _) in self._rows.items()}

    def state_hashes(self) -> dict[str, str]:
        with self._t.lock:
            rows = [(key, row[0], _data(row)) for key, row in self._rows.items()]
        return {
            key: state_hash(k.workflow_id, k.workflow_version, k.state, k.version, data)
            for key, k, data in rows
        }

    def census(self) -> dict[tuple[str, int, str], int]:
        counts: dict[tuple[str, int, str], int] = {}
        with self._t.lock:
            for kept, _ in self._rows.values():
                key = (kept.workflow_id, kept.workflow_version, kept.state)
                counts[key] = counts.get(key, 0) + 1
        return counts


class MemoryAudit:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._records = tables.table(AUDIT)
        self._top = tables.table(AUDIT_TOP)
        self._positions: dict[int, tuple[str, int]] = tables.table(AUDIT_POSITIONS)

    def append(self, record: AuditRecord) -> None:
        # Writers run one at a time and readers wait for them, so the next position, kept
        # in a table the undo log restores, is handed out in commit order, without gaps.
        key = (record.instance_id, record.seq)
        position = len(self._positions) + 1
        self._t.insert(
            AUDIT,
            key,
            AuditRecord(
                *record[:15], self._t.next_id(AUDIT), position, record.format, record.state_hash
            ),
        )
        self._t.insert(AUDIT_POSITIONS, position, key)
        if record.seq > self._top.get(record.instance_id, 0):
            self._t.put(AUDIT_TOP, record.instance_id, record.seq)

    def after(self, position: int, limit: int = 1000) -> list[AuditRecord]:
        with self._t.lock:
            keys = [
                self._positions[p]
                for p in range(position + 1, position + 1 + limit)
                if p in self._positions
            ]
            return [self._records[key] for key in keys]

    def records(self, instance_id: str | None = None) -> Iterator[AuditRecord]:
        with self._t.lock:
            tops = (
                [(instance_id, self._top.get(instance_id, 0))]
                if instance_id is not None
                else sorted(self._top.items())
            )
            found = [
                self._records[(iid, seq)]
                for iid, top in tops
                for seq in range(1, top + 1)
                if (iid, seq) in self._records
            ]
        yield from found


class MemoryDefinitions:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._rows = tables.table(DEFINITIONS)

    def get(self, workflow: str, version: int) -> StoredDefinition | None:
        with self._t.lock:
            found: StoredDefinition | None = self._rows.get((workflow, version))
        return found

    def add(self, definition: StoredDefinition) -> None:
        key = (definition.workflow_id, definition.version)
        if key not in self._rows:
            self._t.insert(DEFINITIONS, key, definition)

    def set_fingerprint(self, workflow: str, version: int, fingerprint: str) -> None:
        self._replace(workflow, version, fingerprint=fingerprint)

    def listing(self) -> list[StoredDefinition]:
        with self._t.lock:
            return [self._rows[key] for key in sorted(self._rows)]

    def set_status(
        self, workflow: str, version: int, status: DefinitionStatus, at: datetime
    ) -> None:
        retired_at = at if status is DefinitionStatus.RETIRED else None
        self._replace(workflow, version, status=status, retired_at=retired_at)

    def set_origin(self, workflow: str, version: int, origin: DefinitionOrigin) -> None:
        self._replace(workflow, version, origin=origin)

    def _replace(self, workflow: str, version: int, **values: Any) -> None:
        kept: StoredDefinition | None = self._rows.get((workflow, version))
        if kept is not None:
            self._t.put(DEFINITIONS, (workflow, version), dataclasses.replace(kept, **values))
