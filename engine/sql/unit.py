"""``SqlUnitOfWork``: one SQLAlchemy transaction behind the repositories of the ports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

from opcatflow.engine.ports import (
    ApiKeyRepository,
    AuditRepository,
    DefinitionRepository,
    IdempotencyRepository,
    InstanceRepository,
    ObligationRepository,
    OutboxRepository,
    TimerRepository,
)
from opcatflow.engine.sql.api import SqlApiKeys, SqlIdempotency
from opcatflow.engine.sql.dialect import Dialect
from opcatflow.engine.sql.instances import SqlAudit, SqlDefinitions, SqlInstances
from opcatflow.engine.sql.obligations import SqlObligations
from opcatflow.engine.sql.outbox import SqlOutbox
from opcatflow.engine.sql.timers import SqlTimers


class SqlUnitOfWork:
    """The repositories of one transaction (:class:`opcatflow.engine.ports.UnitOfWork`)."""

    __slots__ = (
        "_conn",
        "audit",
        "definitions",
        "idempotency",
        "instances",
        "keys",
        "obligations",
        "outbox",
        "timers",
    )

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        self._conn = conn
        self.instances: InstanceRepository = SqlInstances(conn, dialect)
        self.audit: AuditRepository = SqlAudit(conn)
        self.definitions: DefinitionRepository = SqlDefinitions(conn, dialect)
        self.obligations: ObligationRepository = SqlObligations(conn)
        self.timers: TimerRepository = SqlTimers(conn, dialect)
        self.outbox: OutboxRepository = SqlOutbox(conn, dialect)
        self.idempotency: IdempotencyRepository = SqlIdempotency(conn)
        self.keys: ApiKeyRepository = SqlApiKeys(conn)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self._conn.begin_nested():
            yield
