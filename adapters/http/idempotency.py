"""``Idempotency-Key`` on POST: a retried request gets the first response, not a second effect.

The record is written in the same transaction as the work it describes (the ``also``
callback of the engine's ``start`` / ``fire``), so either both are stored or neither is. Two
copies of one request racing on PostgreSQL both do the work, but only the first commits: the
second's insert of the same (key id, idempotency key) fails, its whole transaction (its
transition included) rolls back, and it answers with the stored response. On SQLite writers
are serialised, so the second finds the record when it writes its own.

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

from opcatflow.adapters.http.problems import ApiProblem
from opcatflow.engine.clock import Clock
from opcatflow.engine.errors import OpcatflowError, StoreError
from opcatflow.engine.ports import DuplicateKey, Store, UnitOfWork
from opcatflow.engine.rows import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY = 255


@dataclass(frozen=True)
class Reply:
    """A response as routes build it, and as it is stored for replays."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


# Stores a keyed request's reply in the unit of work of its change.
Record = Callable[[UnitOfWork, Reply], None]


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
    """Runs a POST's work, with its idempotency record stored in the same unit of work when
    the request is keyed."""

    def __init__(self, store: Store, clock: Clock, retention: timedelta) -> None:
        self.store = store
        self.clock = clock
        self.retention = retention

    def run(
        self,
        work: Callable[[Record | None], Reply],
        *,
        key_id: str,
        key: str | None,
        method: str,
        path: str,
        body: Any,
    ) -> Reply:
        """Do ``work``, or replay the reply stored under ``key``.

        ``work`` makes one engine call and passes its ``also`` callback the unit of work and
        the reply through the :data:`Record` it is given (``None``: unkeyed, store nothing).
        (A caller that must not block takes the same steps itself: :meth:`stored`, then its
        work with :meth:`recorder`, then :meth:`after` if the work raised.)

        Raises:
            ApiProblem: the key was used for another request (422).
            Whatever ``work`` raises (nothing is stored then).
        """
        if key is None:
            return work(None)
        wanted = fingerprint(method, path, body)
        stored = self.stored(key_id, key, wanted)
        if stored is not None:
            return stored
        try:
            return work(self.recorder(key_id, key, method, path, wanted))
        except Exception as err:
            if not answers(err):
                raise
            return self.after(err, key_id, key, wanted)

    def stored(self, key_id: str, key: str, wanted: str) -> Reply | None:
        """The reply to replay for ``key`` (``wanted``: the request's :func:`fingerprint`).

        Raises:
            ApiProblem: the key was used for another request (422).
        """
        with self.store.read() as uow:
            return self._stored(uow, key_id, key, wanted)

    def recorder(self, key_id: str, key: str, method: str, path: str, wanted: str) -> Record:
        """What stores the reply in the unit of work of the change it describes."""

        def record(uow: UnitOfWork, reply: Reply) -> None:
            now = self.clock.now()
            found = uow.idempotency.get(key_id, key)
            if found is not None:
                if found.expires_at > now:
                    raise _Raced()  # a copy of this request committed since our read
                uow.idempotency.remove(key_id, key)
            uow.idempotency.add(
                IdempotencyRecord(
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

        return record

    def after(self, err: Exception, key_id: str, key: str, wanted: str) -> Reply:
        """The reply of a copy of this request that committed while this one's work failed
        with ``err`` (one that :func:`answers`).

        Raises:
            StoreError: this one lost the race for the record, yet none is stored.
            err: no copy committed (the error is this request's own).
        """
        with self.store.read() as uow:
            stored = self._stored(uow, key_id, key, wanted, expire=False)
        if stored is not None:
            return stored
        if isinstance(err, _Raced | DuplicateKey):
            raise StoreError("idempotency record raced") from err
        raise err

    def _stored(
        self, uow: UnitOfWork, key_id: str, key: str, wanted: str, *, expire: bool = True
    ) -> Reply | None:
        found = uow.idempotency.get(key_id, key)
        if found is None or (expire and found.expires_at <= self.clock.now()):
            return None
        if found.fingerprint != wanted:
            raise ApiProblem(
                "idempotency-key-reused",
                f"this {HEADER} was used for another request in the last "
                f"{self.retention}; use a new key for a new request",
            )
        return Reply(found.status, json.loads(found.response), {**found.headers, REPLAYED: "true"})

    def purge(self) -> int:
        """Delete the records past their retention; returns how many."""
        with self.store.write() as uow:
            return uow.idempotency.purge(self.clock.now())


def answers(err: Exception) -> bool:
    """Whether a keyed request whose work raised ``err`` may be answered by a copy of it
    that committed meanwhile (:meth:`IdempotencyRecords.after`): it lost the race for the
    record (its change rolled back with it), or the copy made it stale (it held the
    instance's lock). A store failure is this request's own."""
    if isinstance(err, _Raced | DuplicateKey):
        return True
    return isinstance(err, OpcatflowError) and not isinstance(err, StoreError)
