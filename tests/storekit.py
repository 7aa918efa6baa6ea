"""Builders for the store contract suite: the values a unit of work takes, made small."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from opcatflow.engine.audit import GENESIS, AuditRecord, make_record
from opcatflow.engine.deadlines import DUE, REMINDER, PlannedTimer
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import Store, UnitOfWork
from opcatflow.engine.rows import NewMessage, StoredDefinition

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WORKFLOW = ("contract", 1)


def definition(fingerprint: str = "f" * 64) -> StoredDefinition:
    return StoredDefinition(WORKFLOW[0], WORKFLOW[1], fingerprint, "Contract", "id: contract", T0)


def record(instance_id: str, seq: int, prev: str = GENESIS, at: datetime = T0) -> AuditRecord:
    return make_record(
        instance_id=instance_id,
        seq=seq,
        at=at,
        actor="a",
        role="clerk",
        workflow_id=WORKFLOW[0],
        workflow_version=WORKFLOW[1],
        trigger="start" if seq == 1 else "go",
        from_state=None if seq == 1 else "open",
        to_state="open",
        outcome="started" if seq == 1 else "applied",
        reason=None,
        changes="{}",
        prev_hash=prev,
    )


def instance(
    instance_id: str | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    state: str = "open",
    created: datetime = T0,
    parent_id: str | None = None,
) -> Instance:
    instance_id = instance_id or str(uuid.uuid4())
    first = record(instance_id, 1, at=created)
    return Instance(
        id=instance_id,
        workflow_id=WORKFLOW[0],
        workflow_version=WORKFLOW[1],
        state=state,
        data=data or {},
        version=1,
        parent_id=parent_id,
        created_at=created,
        updated_at=created,
        state_entered_at=created,
        audit_seq=1,
        audit_head=first.hash,
    )


def moved(current: Instance, **changes: Any) -> Instance:
    """The next version of an instance (``changes`` replace fields)."""
    return dataclasses.replace(current, **{"version": current.version + 1, **changes})


def started(uow: UnitOfWork, **kwargs: Any) -> Instance:
    """Store a new instance with its first audit record (the definition must be stored)."""
    new = instance(**kwargs)
    uow.instances.insert(new)
    uow.audit.append(record(new.id, 1, at=new.created_at))
    return new


def setup(store: Store) -> None:
    with store.write() as uow:
        uow.definitions.add(definition())


def due(deadline: str, at: datetime, *, reminder: bool = False) -> PlannedTimer:
    if reminder:
        return PlannedTimer(deadline, REMINDER, at, offset="1 day", deadline_due=at + timedelta(1))
    return PlannedTimer(deadline, DUE, at)


def message(key: str, instance_id: str | None = None, **payload: Any) -> NewMessage:
    return NewMessage(
        instance_id=instance_id,
        event="contract.started",
        channel="log",
        recipient="head",
        payload=payload or {"subject": "hello"},
        key=key,
    )
