"""``MemoryStore``: the store's contract (:mod:`opcatflow.engine.ports`) kept in memory.

For tests and for embedding where nothing needs to outlive the process: everything is lost
when the store is dropped. Otherwise it keeps the contract of the SQL store: a unit of work is
atomic and isolated (its writes commit together when its block ends, or none of them if it
raises), savepoints, version checks, an append-only audit trail, unique keys, claims that never
hand one row to two workers, and safe use from many threads. Writers are serialised on one
lock, as on SQLite; reads wait for an open writer rather than see its changes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, TypeVar

from opcatflow.engine.errors import StoreError
from opcatflow.engine.memory.instances import AUDIT, MemoryAudit, MemoryDefinitions, MemoryInstances
from opcatflow.engine.memory.obligations import MemoryObligations
from opcatflow.engine.memory.outbox import MemoryOutbox
from opcatflow.engine.memory.records import (
    MemoryApiKeys,
    MemoryDataKeys,
    MemoryIdempotency,
    MemoryPrivacy,
    MemoryReadLog,
)
from opcatflow.engine.memory.reports import MemoryReports
from opcatflow.engine.memory.tables import Tables, Transaction
from opcatflow.engine.memory.timers import MemoryTimers
from opcatflow.engine.ports import (
    ApiKeyRepository,
    AuditRepository,
    DataKeyRepository,
    DefinitionRepository,
    IdempotencyRepository,
    InstanceRepository,
    ObligationRepository,
    OutboxRepository,
    PrivacyRepository,
    ReadLogRepository,
    ReportRepository,
    TimerRepository,
)

if TYPE_CHECKING:
    from opcatflow.engine.ports import Store, UnitOfWork

META = "meta"
TIMES_ORDERED_FROM = "audit_times_ordered_from"
T = TypeVar("T")
URL = "memory:"
SCHEMA = "memory"  # no schema of its own: always the one this code expects


class _ReadOnly(Tables):
    """The store's tables as a read unit of work sees them: every write refused."""

    def __init__(self, tables: Tables) -> None:  # shares the rows, never opens a transaction
        super().__init__()
        self.lock = tables.lock
        self.rows = tables.rows

    def _refuse(self, *_: object) -> None:
        raise StoreError("a read unit of work cannot write")

    insert = put = _refuse  # type: ignore[assignment]

    def delete(self, name: str, key: object) -> bool:
        self._refuse()
        return False

    def next_id(self, name: str) -> int:
        self._refuse()
        return 0


class MemoryUnitOfWork:
    """The repositories of one unit of work (see :class:`~opcatflow.engine.ports.UnitOfWork`).

    Repositories hold no state of their own, so the store keeps one writing and one reading
    set and hands them to every unit of work.
    """

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self.instances: InstanceRepository = MemoryInstances(tables)
        self.audit: AuditRepository = MemoryAudit(tables)
        self.definitions: DefinitionRepository = MemoryDefinitions(tables)
        self.obligations: ObligationRepository = MemoryObligations(tables)
        self.timers: TimerRepository = MemoryTimers(tables)
        self.outbox: OutboxRepository = MemoryOutbox(tables)
        self.idempotency: IdempotencyRepository = MemoryIdempotency(tables)
        self.keys: ApiKeyRepository = MemoryApiKeys(tables)
        self.data_keys: DataKeyRepository = MemoryDataKeys(tables)
        self.privacy: PrivacyRepository = MemoryPrivacy(tables)
        self.read_log: ReadLogRepository = MemoryReadLog(tables)
        self.reports: ReportRepository = MemoryReports(tables)

    def savepoint(self) -> AbstractContextManager[None]:
        return self._tables.savepoint()


class MemoryStore:
    """Instances, audit trail, timers, outbox and the HTTP API's records, in this process's
    memory (see :mod:`opcatflow.engine.ports` for the contract).

    Nothing is durable: a store lives as long as the object. ``url`` is ``memory:``.
    """

    url = URL
    dialect = "memory"

    def __init__(self) -> None:
        self._tables = Tables()
        self._writing = MemoryUnitOfWork(self._tables)
        self._reading = MemoryUnitOfWork(_ReadOnly(self._tables))

    def write(self) -> Transaction[MemoryUnitOfWork]:
        return Transaction(self._tables, self._writing)

    def read(self) -> nullcontext[MemoryUnitOfWork]:
        return nullcontext(self._reading)

    def submit(self, work: Callable[[MemoryUnitOfWork], T]) -> T:
        # No flush to share: each caller's unit of work commits on its own.
        with Transaction(self._tables, self._writing) as uow:
            return work(uow)

    def submit_soon(self, work: Callable[[MemoryUnitOfWork], T]) -> Future[T]:
        # Nothing to wait for: run now, in the caller's thread, and hand back a settled future.
        future: Future[T] = Future()
        try:
            future.set_result(self.submit(work))
        except BaseException as err:
            future.set_exception(err)
        return future

    def secret(self, key: str) -> bytes:
        with self._tables.transaction():
            value = self._tables.table(META).get(key)
            if value is None:
                value = secrets.token_hex(32)
                self._tables.insert(META, key, value)
        return bytes.fromhex(value)

    def audit_times_ordered_from(self) -> int:
        with self._tables.transaction():
            value = self._tables.table(META).get(TIMES_ORDERED_FROM)
            if value is None:
                records = self._tables.table(AUDIT).values()
                value = str(max((r.id for r in records), default=0))
                self._tables.insert(META, TIMES_ORDERED_FROM, value)
        return int(value)

    def head_revision(self) -> str:
        return SCHEMA

    def current_revision(self) -> str | None:
        return SCHEMA

    def ensure_schema(self, *, create: bool = True) -> None:
        """Nothing to create: the tables exist from the start."""

    def close(self) -> None:
        """Nothing to release (the data goes with the object)."""


if TYPE_CHECKING:  # mypy checks the store against the ports it implements

    def _implements(store: MemoryStore, uow: MemoryUnitOfWork) -> tuple[Store, UnitOfWork]:
        return store, uow
