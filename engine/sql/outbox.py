"""The outbox as SQL: write with the change, claim under a lease, finish, list, retry.

On PostgreSQL the claim reads with ``FOR UPDATE SKIP LOCKED``, so concurrent dispatchers take
disjoint rows without waiting on each other; SQLite serialises writers (``BEGIN
IMMEDIATE``), which gives the same result.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from opcatflow.engine.ports import DuplicateKey
from opcatflow.engine.rows import (
    ERASED_PAYLOAD,
    ERASED_RECIPIENT,
    RETRYABLE_OUTBOX,
    NewMessage,
    OutboxEntry,
    OutboxStatus,
    SendOutcome,
)
from opcatflow.engine.sql.dialect import Dialect
from opcatflow.engine.sql.tables import outbox

RETRYABLE = RETRYABLE_OUTBOX
_DUE = (OutboxStatus.PENDING, OutboxStatus.FAILED, OutboxStatus.SENDING)
_c = outbox.c
_FINISH = (
    outbox.update()
    .where(_c.id == sa.bindparam("b_id"), _c.claim_token == sa.bindparam("b_token"))
    .values(
        status=sa.bindparam("b_status"),
        next_attempt_at=sa.bindparam("b_next"),
        sent_at=sa.bindparam("b_sent"),
        last_error=sa.bindparam("b_error"),
        claim_token=None,
    )
)


class SqlOutbox:
    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    def add(self, messages: Sequence[NewMessage], now: datetime) -> None:
        if not messages:
            return
        rows = [
            {
                "instance_id": m.instance_id,
                "event": m.event,
                "channel": m.channel,
                "recipient": m.recipient,
                "payload": m.payload,
                "status": m.status,
                "attempts": 0,
                "next_attempt_at": now,
                "idempotency_key": m.key,
                "created_at": now,
                "last_error": m.last_error,
            }
            for m in messages
        ]
        try:
            self._conn.execute(outbox.insert(), rows)
        except sa.exc.IntegrityError as err:
            raise DuplicateKey("an outbox message with this key exists") from err

    def claim(self, *, now: datetime, lease: timedelta, limit: int) -> list[OutboxEntry]:
        due = sa.and_(_c.status.in_(_DUE), _c.next_attempt_at <= now)
        query = sa.select(outbox).where(due).order_by(_c.next_attempt_at, _c.id).limit(limit)
        if self._dialect.postgresql:
            query = query.with_for_update(skip_locked=True)
        rows = [_entry(r) for r in self._conn.execute(query)]
        if not rows:
            return []
        token = secrets.token_hex(16)
        self._conn.execute(
            outbox.update()
            .where(_c.id.in_([r.id for r in rows]))
            .values(
                status=OutboxStatus.SENDING,
                claim_token=token,
                attempts=_c.attempts + 1,
                next_attempt_at=now + lease,
            )
        )
        return [
            replace(
                r,
                status=OutboxStatus.SENDING,
                attempts=r.attempts + 1,
                claim_token=token,
                next_attempt_at=now + lease,
            )
            for r in rows
        ]

    def finish(self, outcomes: Sequence[SendOutcome], now: datetime) -> int:
        params = [
            {
                "b_id": o.entry.id,
                "b_token": o.entry.claim_token,
                "b_status": o.status,
                "b_next": o.next_attempt_at or now,
                "b_sent": now if o.status == OutboxStatus.SENT else None,
                "b_error": o.error[:2000] if o.error else None,
            }
            for o in outcomes
        ]
        if not params:
            return 0
        result = self._conn.execute(_FINISH, params)
        count = result.rowcount
        return count if count is not None and count >= 0 else len(params)

    def get(self, message_id: int) -> OutboxEntry | None:
        row = self._conn.execute(sa.select(outbox).where(_c.id == message_id)).first()
        return _entry(row) if row is not None else None

    def listing(
        self, statuses: Collection[OutboxStatus], *, limit: int = 100, after: int = 0
    ) -> list[OutboxEntry]:
        query = (
            sa.select(outbox)
            .where(_c.status.in_(list(statuses)), _c.id > after)
            .order_by(_c.id)
            .limit(limit)
        )
        return [_entry(r) for r in self._conn.execute(query)]

    def counts(self) -> dict[OutboxStatus, int]:
        rows = self._conn.execute(sa.select(_c.status, sa.func.count()).group_by(_c.status))
        return {OutboxStatus(status): int(n) for status, n in rows}

    def retry(self, message_id: int, now: datetime) -> OutboxEntry | None:
        before = self.get(message_id)
        if before is None or before.status not in RETRYABLE:
            return before
        self._conn.execute(
            outbox.update()
            .where(_c.id == message_id, _c.status.in_(RETRYABLE))
            .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, claim_token=None)
        )
        return before

    def erase_instance(self, instance_id: str, note: str) -> int:
        mine = _c.instance_id == instance_id
        self._conn.execute(
            outbox.update()
            .where(mine, _c.status != OutboxStatus.SENT)
            .values(status=OutboxStatus.DEAD, last_error=note, claim_token=None)
        )
        result = self._conn.execute(
            outbox.update().where(mine).values(payload=ERASED_PAYLOAD, recipient=ERASED_RECIPIENT)
        )
        return int(result.rowcount)


def _entry(row: Row[Any]) -> OutboxEntry:
    payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
    return OutboxEntry(
        id=row.id,
        instance_id=row.instance_id,
        event=row.event,
        channel=row.channel,
        recipient=row.recipient,
        payload=payload,
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        idempotency_key=row.idempotency_key,
        created_at=row.created_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
        claim_token=row.claim_token,
    )
