"""The memory store's notification outbox."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from opcatflow.engine.memory.tables import Tables
from opcatflow.engine.rows import (
    ERASED_PAYLOAD,
    ERASED_RECIPIENT,
    NewMessage,
    OutboxEntry,
    OutboxStatus,
    SendOutcome,
)

OUTBOX = "outbox"  # id -> (entry, payload as JSON text)
OUTBOX_KEYS = "outbox_keys"  # idempotency key -> id: the unique constraint
RETRYABLE = (OutboxStatus.FAILED, OutboxStatus.DEAD, OutboxStatus.PENDING)
CLAIMABLE = (OutboxStatus.PENDING, OutboxStatus.FAILED, OutboxStatus.SENDING)

Stored = tuple[OutboxEntry, str]


def _out(row: Stored) -> OutboxEntry:
    return dataclasses.replace(row[0], payload=json.loads(row[1]))


class MemoryOutbox:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._rows: dict[int, Stored] = tables.table(OUTBOX)

    def _put(self, entry: OutboxEntry, payload: str) -> None:
        self._t.put(OUTBOX, entry.id, (entry, payload))

    def add(self, messages: Sequence[NewMessage], now: datetime) -> None:
        for m in messages:
            message_id = self._t.next_id(OUTBOX)
            self._t.insert(OUTBOX_KEYS, m.key, message_id)
            payload = json.dumps(m.payload)
            entry = OutboxEntry(
                id=message_id,
                instance_id=m.instance_id,
                event=m.event,
                channel=m.channel,
                recipient=m.recipient,
                payload={},
                status=m.status,
                attempts=0,
                next_attempt_at=now,
                idempotency_key=m.key,
                created_at=now,
                sent_at=None,
                last_error=m.last_error,
            )
            self._put(entry, payload)

    def claim(self, *, now: datetime, lease: timedelta, limit: int) -> list[OutboxEntry]:
        # Writers are serialised: a row another dispatcher claimed is ``sending`` under a
        # lease by the time this unit of work can read it, so it is skipped until then.
        with self._t.lock:
            due = [
                row
                for row in self._rows.values()
                if row[0].status in CLAIMABLE and row[0].next_attempt_at <= now
            ]
        due.sort(key=lambda row: (row[0].next_attempt_at, row[0].id))
        token = secrets.token_hex(16)
        claimed = []
        for entry, payload in due[: max(limit, 0)]:
            taken = dataclasses.replace(
                entry,
                status=OutboxStatus.SENDING,
                claim_token=token,
                attempts=entry.attempts + 1,
                next_attempt_at=now + lease,
            )
            self._put(taken, payload)
            claimed.append(_out((taken, payload)))
        return claimed

    def finish(self, outcomes: Sequence[SendOutcome], now: datetime) -> int:
        done = 0
        for o in outcomes:
            row = self._rows.get(o.entry.id)
            if row is None or row[0].claim_token is None:
                continue
            if row[0].claim_token != o.entry.claim_token:
                continue
            ended = dataclasses.replace(
                row[0],
                status=o.status,
                next_attempt_at=o.next_attempt_at or now,
                sent_at=now if o.status == OutboxStatus.SENT else None,
                last_error=o.error[:2000] if o.error else None,
                claim_token=None,
            )
            self._put(ended, row[1])
            done += 1
        return done

    def get(self, message_id: int) -> OutboxEntry | None:
        with self._t.lock:
            row = self._rows.get(message_id)
        return _out(row) if row is not None else None

    def listing(
        self, statuses: Collection[OutboxStatus], *, limit: int = 100, after: int = 0
    ) -> list[OutboxEntry]:
        with self._t.lock:
            found = [
                row for key, row in self._rows.items() if key > after and row[0].status in statuses
            ]
        found.sort(key=lambda row: row[0].id)
        return [_out(row) for row in found[: max(limit, 0)]]

    def counts(self) -> dict[OutboxStatus, int]:
        counted: dict[OutboxStatus, int] = {}
        with self._t.lock:
            for entry, _ in self._rows.values():
                counted[entry.status] = counted.get(entry.status, 0) + 1
        return counted

    def retry(self, message_id: int, now: datetime) -> OutboxEntry | None:
        row = self._rows.get(message_id)
        if row is None:
            return None
        before = _out(row)
        if before.status in RETRYABLE:
            again = dataclasses.replace(
                row[0],
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                claim_token=None,
            )
            self._put(again, row[1])
        return before

    def erase_instance(self, instance_id: str, note: str) -> int:
        with self._t.lock:
            mine = [row for row in self._rows.values() if row[0].instance_id == instance_id]
        for entry, _ in mine:
            emptied = dataclasses.replace(entry, recipient=ERASED_RECIPIENT)
            if entry.status != OutboxStatus.SENT:
                emptied = dataclasses.replace(
                    emptied, status=OutboxStatus.DEAD, last_error=note, claim_token=None
                )
            self._put(emptied, json.dumps(ERASED_PAYLOAD))
        return len(mine)
