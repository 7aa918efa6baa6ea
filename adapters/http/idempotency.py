"""``Idempotency-Key`` on POST: a retried request gets the first response, not a second effect.

The record is written in the same transaction as the work it describes (the engine's
``start_within`` / ``fire_within``), so either both are stored or neither is. Two copies of
one request racing on PostgreSQL both do the work, but only the first commits: the second's
insert of the same (key id, idempotency key) fails, its whole transaction (its transition
included) rolls back, and it answers with the stored response. On SQLite writers are
serialised, so the second simply finds the record.

A response is kept for the retention period; a reused key with another body is refused
(422), as the IETF ``Idempotency-Key`` draft says. Errors that store nothing (a stale
``If-Match``, a database failure) store no record either, so a retry does the work afresh.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.adapters.http.problems import ApiProblem
from opcatflow.engine.clock import Clock
from opcatflow.engine.errors import OpcatflowError, StoreError
from opcatflow.engine.store import SQLAlchemyStore
from opcatflow.engine.tables import idempotency

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY = 255
_c = idempotency.c


@dataclass(frozen=True)
class Reply:
    """A response as routes build it, and as it is stored for replays."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


# What a unit of work returns: its reply, and what to do once it is committed (logging).
Outcome = tuple[Reply, Callable[[], None] | None]


class _Raced(Exception):
    """Another copy of the request committed its record first."""


def parse_key(raw: str | None) -> str | None:
    """The key of an ``Idempotency-Key`` header (a structured-field string or a bare token).

    Raises:
        ApiProblem: empty, too long, or not printable ASCII.
    """
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value or len(value) > MAX_KEY or not all(" " < ch < "\x7f" for ch in value):
        raise ApiProblem(
            "malformed-request",
            f"{HEADER} must be 1 to {MAX_KEY} printable ASCII characters without spaces",
            status=400,
        )
    return value


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyRecords:
    """Runs a POST's work in one transaction, with its idempotency record when keyed."""

    def __init__(self, store: SQLAlchemyStore, clock: Clock, retention: timedelta) -> None:
        self.store = store
        self.clock = clock
        self.retention = retention

    def run(
        self,
        work: Callable[[Connection], Outcome],
        *,
        key_id: str,
        key: str | None,
        method: str,
        path: str,
        body: Any,
    ) -> Reply:
        """Do ``work`` in a write transaction, or replay the reply stored under ``key``.

        Raises:
            ApiProblem: the key was used for another request (422).
            Whatever ``work`` raises (nothing is stored then).
        """
        if key is None:
            with self.store.write() as conn:
                reply, after = work(conn)
            if after is not None:
                after()
            return reply
        wanted = fingerprint(method, path, body)
        for attempt in range(2):
            try:
                with self.store.write() as conn:
                    stored = self._stored(conn, key_id, key, wanted)
                    if stored is not None:
                        return stored
                    reply, after = work(conn)
                    self._insert(
                        conn,
                        key_id=key_id,
                        key=key,
                        method=method,
                        path=path,
                        wanted=wanted,
                        reply=reply,
                    )
            except _Raced:
                if attempt:
                    raise StoreError("idempotency record raced twice") from None
                continue
            except StoreError:
                raise
            except OpcatflowError:
                # A copy of this request that committed meanwhile (it held the instance's
                # lock) makes ours stale: answer with its reply rather than our error.
                with self.store.read() as conn:
                    stored = self._stored(conn, key_id, key, wanted, expire=False)
                if stored is None:
                    raise
                return stored
            if after is not None:
                after()
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _stored(
        self, conn: Connection, key_id: str, key: str, wanted: str, *, expire: bool = True
    ) -> Reply | None:
        row = conn.execute(
            sa.select(idempotency).where(_c.api_key_id == key_id, _c.key == key)
        ).first()
        if row is None:
            return None
        if row.expires_at <= self.clock.now():
            if expire:
                conn.execute(idempotency.delete().where(_c.api_key_id == key_id, _c.key == key))
            return None
        if row.fingerprint != wanted:
            raise ApiProblem(
                "idempotency-key-reused",
                f"this {HEADER} was used for another request in the last "
                f"{self.retention}; use a new key for a new request",
            )
        return Reply(row.status, json.loads(row.response), {**row.headers, REPLAYED: "true"})

    def _insert(
        self,
        conn: Connection,
        *,
        key_id: str,
        key: str,
        method: str,
        path: str,
        wanted: str,
        reply: Reply,
    ) -> None:
        now = self.clock.now()
        try:
            conn.execute(
                idempotency.insert().values(
                    api_key_id=key_id,
                    key=key,
                    method=method,
                    path=path,
                    fingerprint=wanted,
                    status=reply.status,
                    response=json.dumps(reply.body, ensure_ascii=False),
                    headers=reply.headers,
                    created_at=now,
                    expires_at=now + self.retention,
                )
            )
        except sa.exc.IntegrityError as err:
            raise _Raced() from err

    def purge(self) -> int:
        """Delete the records past their retention; returns how many."""
        with self.store.write() as conn:
            result = conn.execute(idempotency.delete().where(_c.expires_at <= self.clock.now()))
        return int(result.rowcount or 0)
