"""``SqlUnitOfWork``: one SQLAlchemy transaction behind the repositories of the ports.

Audit records wait in the unit of work until it commits: only then do they get their
positions (one UPDATE of the counter row for all of them, which holds that row until the
commit, so positions follow commit order) and are inserted together (see :meth:`flush`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.engine.audit import AuditRecord
from opcatflow.engine.ports import (
    ApiKeyRepository,
    AuditRepository,
    DataKeyRepository,
    DefinitionRepository,
    DuplicateKey,
    IdempotencyRepository,
    InstanceRepository,
    ObligationRepository,
    OutboxRepository,
    PrivacyRepository,
    ReadLogRepository,
    ReportRepository,
    TimerRepository,
)
from opcatflow.engine.sql import direct
from opcatflow.engine.sql.api import SqlApiKeys, SqlIdempotency
from opcatflow.engine.sql.audit import INSERT_AUDIT_ROW, SqlAudit, audit_row
from opcatflow.engine.sql.dialect import Dialect
from opcatflow.engine.sql.instances import SqlDefinitions, SqlInstances
from opcatflow.engine.sql.keys import SqlDataKeys
from opcatflow.engine.sql.obligations import SqlObligations
from opcatflow.engine.sql.outbox import SqlOutbox
from opcatflow.engine.sql.positions import take_positions
from opcatflow.engine.sql.privacy import SqlPrivacy, SqlReadLog
from opcatflow.engine.sql.reports import SqlReports
from opcatflow.engine.sql.timers import SqlTimers

__all__ = ["SqlUnitOfWork", "take_positions"]


class SqlUnitOfWork:
    """The repositories of one transaction (:class:`opcatflow.engine.ports.UnitOfWork`)."""

    __slots__ = (
        "_conn",
        "_depth",
        "_pending",
        "audit",
        "data_keys",
        "definitions",
        "idempotency",
        "instances",
        "keys",
        "obligations",
        "outbox",
        "privacy",
        "read_log",
        "reports",
        "timers",
    )

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        self._conn = conn
        self._depth = 0  # savepoints open
        self._pending: list[AuditRecord] = []
        self.instances: InstanceRepository = SqlInstances(conn, dialect, self._pending)
        self.audit: AuditRepository = SqlAudit(conn, self._pending)
        self.definitions: DefinitionRepository = SqlDefinitions(conn, dialect)
        self.obligations: ObligationRepository = SqlObligations(conn)
        self.timers: TimerRepository = SqlTimers(conn, dialect)
        self.outbox: OutboxRepository = SqlOutbox(conn, dialect)
        self.idempotency: IdempotencyRepository = SqlIdempotency(conn)
        self.keys: ApiKeyRepository = SqlApiKeys(conn)
        self.data_keys: DataKeyRepository = SqlDataKeys(conn, dialect)
        self.privacy: PrivacyRepository = SqlPrivacy(conn, dialect)
        self.read_log: ReadLogRepository = SqlReadLog(conn)
        self.reports: ReportRepository = SqlReports(conn)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # Named and released on the driver, not with Connection.begin_nested: its two Core
        # round trips cost about 64 us alone and 150 us of CPU in a batch of group commit,
        # where every member runs in one (more than the fire's own statements on SQLite).
        # One name per depth: a savepoint opened after another is released reuses it.
        name = f"opcatflow_{self._depth + 1}"
        mark = len(self._pending)
        conn = self._conn
        direct.driver_sql(conn, f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            del self._pending[mark:]  # the records appended in the block go with it
            with suppress(sa.exc.DBAPIError):  # a broken connection: the error raised says so
                direct.driver_sql(conn, f"ROLLBACK TO SAVEPOINT {name}")
                direct.driver_sql(conn, f"RELEASE SAVEPOINT {name}")
            raise
        else:
            direct.driver_sql(conn, f"RELEASE SAVEPOINT {name}")
        finally:
            self._depth -= 1

    def execute_setting(self, statement: str) -> None:
        """Run a ``SET LOCAL`` (the store's group commit bounds lock waits with it)."""
        self._conn.exec_driver_sql(statement)

    def flush(self) -> None:
        """Give the waiting audit records their positions and insert them: the last writes
        before the commit.

        Raises:
            DuplicateKey: a record's ``(instance_id, seq)`` is taken.
        """
        pending = self._pending
        if not pending:
            return
        conn = self._conn
        # the write path's last statements: straight on the driver (engine/sql/direct.py)
        first = take_positions(conn, len(pending))
        rows = [audit_row(record, first + i) for i, record in enumerate(pending)]
        pending.clear()
        try:
            direct.execute_many(conn, INSERT_AUDIT_ROW, rows)
        except sa.exc.IntegrityError as err:
            raise DuplicateKey(f"audit: a record's seq is taken ({err.orig})") from err
