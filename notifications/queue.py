"""The outbox table's statements: write, claim, finish, list, retry.

Claiming marks rows ``sending`` with a lease (``next_attempt_at`` becomes the lease's end) and
a claim token, in a short transaction; sending happens outside any transaction; finishing
updates only rows still holding the same token. A dispatcher that dies mid-batch leaves its
rows ``sending``; when the lease runs out another dispatcher claims them again (at least
once). On PostgreSQL the claim reads with ``FOR UPDATE SKIP LOCKED``, so concurrent
dispatchers take disjoint rows without waiting on each other; SQLite serialises writers
(``BEGIN IMMEDIATE``), which gives the same result.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from opcatflow.engine.tables import outbox
from opcatflow.notifications.model import (
    DEAD,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    NewMessage,
    OutboxEntry,
)

RETRYABLE = (FAILED, DEAD, PENDING)

_c = outbox.c


def insert(conn: Connection, messages: Sequence[NewMessage], now: datetime) -> None:
    """Write messages in the caller's transaction."""
    if not messages:
        return
    conn.execute(
        outbox.insert(),
        [
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
        ],
    )


def entry(row: Row[Any]) -> OutboxEntry:
    payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
    return OutboxEntry(
        id=row.id,
        instance_id=row.instance_id,
        event=row.event,
        channel=row.channel,
        recipient=row.recipient,
        payload=payload,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        idempotency_key=row.idempotency_key,
        created_at=row.created_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
        claim_token=row.claim_token,
    )


def claim(
    conn: Connection, *, now: datetime, lease: timedelta, limit: int, skip_locked: bool
) -> list[OutboxEntry]:
    """Take up to ``limit`` due rows for this dispatcher (in the caller's transaction)."""
    due = sa.and_(_c.status.in_((PENDING, FAILED, SENDING)), _c.next_attempt_at <= now)
    query = sa.select(outbox).where(due).order_by(_c.next_attempt_at, _c.id).limit(limit)
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    rows = [entry(r) for r in conn.execute(query)]
    if not rows:
        return []
    token = secrets.token_hex(16)
    conn.execute(
        outbox.update()
        .where(_c.id.in_([r.id for r in rows]))
        .values(
            status=SENDING,
            claim_token=token,
            attempts=_c.attempts + 1,
            next_attempt_at=now + lease,
        )
    )
    return [
        OutboxEntry(
            **{
                **{f: getattr(r, f) for f in OutboxEntry.__dataclass_fields__},
                "status": SENDING,
                "attempts": r.attempts + 1,
                "claim_token": token,
                "next_attempt_at": now + lease,
            }
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one claimed row ends this round."""

    entry: OutboxEntry
    status: str  # sent | failed | dead
    next_attempt_at: datetime | None = None
    error: str | None = None


def finish(conn: Connection, outcomes: Iterable[Outcome], now: datetime) -> int:
    """Record outcomes; rows another dispatcher has claimed since are left alone.

    Returns:
        how many rows were updated.
    """
    params = []
    for o in outcomes:
        params.append(
            {
                "b_id": o.entry.id,
                "b_token": o.entry.claim_token,
                "b_status": o.status,
                "b_next": o.next_attempt_at or now,
                "b_sent": now if o.status == SENT else None,
                "b_error": o.error[:2000] if o.error else None,
            }
        )
    if not params:
        return 0
    statement = (
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
    result = conn.execute(statement, params)
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(params)


def get(conn: Connection, message_id: int) -> OutboxEntry | None:
    row = conn.execute(sa.select(outbox).where(_c.id == message_id)).first()
    return entry(row) if row is not None else None


def listing(
    conn: Connection, statuses: Sequence[str], *, limit: int = 100, after: int = 0
) -> list[OutboxEntry]:
    query = (
        sa.select(outbox)
        .where(_c.status.in_(list(statuses)), _c.id > after)
        .order_by(_c.id)
        .limit(limit)
    )
    return [entry(r) for r in conn.execute(query)]


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(sa.select(_c.status, sa.func.count()).group_by(_c.status))
    return {status: int(n) for status, n in rows}


def retry(conn: Connection, message_id: int, now: datetime) -> OutboxEntry | None:
    """Make a failed or dead row due now with a fresh count of attempts.

    Returns:
        the row as it was before, or ``None`` if there is no such row.
    """
    before = get(conn, message_id)
    if before is None or before.status not in RETRYABLE:
        return before
    conn.execute(
        outbox.update()
        .where(_c.id == message_id, _c.status.in_(RETRYABLE))
        .values(status=PENDING, attempts=0, next_attempt_at=now, claim_token=None)
    )
    return before
