"""Many due timers, and scheduler workers to fire them: shared by the multi-process test and
importable by spawned worker processes (tests/ is on their sys.path)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog

from opcatflow.engine import (
    DeadlineEvent,
    Engine,
    FrozenClock,
    Registry,
    SQLAlchemyStore,
    TransactionHook,
    TransitionEvent,
    load_catalog,
)
from opcatflow.engine.audit import GENESIS, STARTED, Redactor, make_record
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.settings import Settings
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.unit import take_positions
from opcatflow.notifications import OutboxWriter
from opcatflow.notifications.directory import parse_directory

TIMERLOAD = Path(__file__).parent / "definitions" / "timerload"


def quiet_logger() -> Any:
    return structlog.wrap_logger(
        structlog.ReturnLogger(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


def open_engine(
    url: str,
    clock: FrozenClock,
    hooks: Sequence[TransactionHook] = (),
    folder: Path = TIMERLOAD,
    settings: Settings | None = None,
) -> Engine:
    """An engine with extra hooks (built directly: ``Engine.open`` takes no hooks)."""
    store = SQLAlchemyStore(url)
    store.ensure_schema()
    catalog = load_catalog([folder], Registry())
    return Engine(
        store,
        catalog,
        Registry(),
        clock=clock,
        logger=quiet_logger(),
        hooks=hooks,
        settings=settings,
    )


DIRECTORY = """
people:
  - {id: clerk1, name: Clerk One, email: clerk1@npm.example, roles: [clerk], channel: log}
"""


def seed_due_tickets(
    url: str, count: int, created: datetime, due: datetime, *, alerting_every: int = 10
) -> None:
    """``count`` ticket instances in 'waiting', each with its start audit record and a
    pending obligation 'answer' (which escalates), and one in ``alerting_every`` also a
    'reply' (which alerts), with their due timers, bulk-inserted (the rows ``Engine.start``
    writes but the audit records of the obligations, far faster)."""
    with open_engine(url, FrozenClock(created)) as engine:
        wf = engine.workflow("ticket")
        redactor = Redactor(b"seed")
        instances, records, obligations = [], [], []
        for n in range(count):
            instance_id = str(uuid.uuid4())
            data = {"n": n}
            record = make_record(
                instance_id=instance_id,
                seq=1,
                at=created,
                actor="seed",
                role="clerk",
                workflow_id=wf.id,
                workflow_version=wf.version,
                trigger="start",
                from_state=None,
                to_state="waiting",
                outcome=STARTED,
                reason=None,
                changes=redactor.changes({}, data, frozenset()),
                prev_hash=GENESIS,
            )
            instances.append(
                {
                    "id": instance_id,
                    "workflow_id": wf.id,
                    "workflow_version": wf.version,
                    "state": "waiting",
                    "data": data,
                    "version": 1,
                    "parent_id": None,
                    "created_at": created,
                    "updated_at": created,
                    "state_entered_at": created,
                    "audit_seq": 1,
                    "audit_head": record.hash,
                }
            )
            records.append(
                {k: getattr(record, k) for k in t.audit.c.keys() if k != "id"}  # noqa: SIM118
            )
            owed = [("answer", "waiting")]
            if n % alerting_every == 0:
                owed.append(("reply", "escalated waiting"))
            for deadline, scope in owed:
                obligations.append(
                    {
                        "instance_id": instance_id, "deadline": deadline, "occurrence": 1,
                        "scope": scope, "anchor": created.isoformat(), "due_at": due,
                        "last_day": due.date(), "status": "pending", "created_at": created,
                        "updated_at": created,
                    }
                )  # fmt: skip
        with engine.store.connect(write=True) as conn:
            first = take_positions(conn, len(records))
            for n, row in enumerate(records):
                row["position"] = first + n
            for table, rows in (
                (t.instances, instances),
                (t.audit, records),
                (t.obligations, obligations),
            ):
                for start in range(0, len(rows), 2000):
                    conn.execute(table.insert(), rows[start : start + 2000])
            o = t.obligations.c
            timers = [
                {
                    "instance_id": row.instance_id,
                    "state": "waiting",
                    "deadline": row.deadline,
                    "kind": "due",
                    "occurrence": 1,
                    "due_at": due,
                    "status": "pending",
                    "attempts": 0,
                    "payload": {},
                    "created_at": created,
                    "obligation_id": row.id,
                }
                for row in conn.execute(sa.select(o.id, o.instance_id, o.deadline))
            ]
            for start in range(0, len(timers), 2000):
                conn.execute(t.timers.insert(), timers[start : start + 2000])


class Stall:
    """A hook that, after ``after`` deadline events in this process, says so and never
    returns: the worker is then stuck in the middle of a batch, for the test to kill."""

    def __init__(self, after: int, reached: Any) -> None:
        self.after = after
        self.reached = reached
        self.seen = 0

    def on_change(self, uow: UnitOfWork, event: TransitionEvent) -> None:
        pass

    def on_deadline(self, uow: UnitOfWork, event: DeadlineEvent) -> None:
        self.seen += 1
        if self.seen == self.after:
            self.reached.set()
            threading.Event().wait()  # blocks until SIGKILL


def run_worker(
    url: str, now: datetime, batch: int, stall_after: int = 0, reached: Any = None
) -> int:
    """Fire due timers until none is pending at ``now``; returns how many this worker fired."""
    hooks: list[TransactionHook] = [OutboxWriter(parse_directory(DIRECTORY, "<directory>"))]
    if stall_after:
        hooks.append(Stall(stall_after, reached))
    fired = 0
    with open_engine(url, FrozenClock(now), hooks) as engine:
        scheduler = Scheduler(engine, batch_size=batch)
        while True:
            fired += sum(f.outcome == "applied" for f in scheduler.tick().firings)
            if scheduler.due_count(now) == 0:
                return fired
