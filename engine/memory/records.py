"""The memory store's records besides instances: idempotency replies, API keys, data keys,
the subject index and legal holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime

from opcatflow.engine.memory.tables import Tables
from opcatflow.engine.rows import ApiKeyRow, IdempotencyRecord, ReadEntry, WrappedKey

IDEMPOTENCY = "idempotency"  # (api key id, key) -> record
API_KEYS = "api_keys"  # id -> row
DATA_KEYS = "data_keys"  # owner -> wrapped key
META = "meta"  # name -> text
SUBJECTS = "subjects"  # instance id -> blind index of its subject
HOLDS = "legal_holds"  # instance id -> (actor, held at)
READ_LOG = "read_log"  # id -> entry


class MemoryIdempotency:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._rows: dict[tuple[str, str], IdempotencyRecord] = tables.table(IDEMPOTENCY)

    def get(self, api_key_id: str, key: str) -> IdempotencyRecord | None:
        with self._t.lock:
            found = self._rows.get((api_key_id, key))
        return dataclasses.replace(found, headers=dict(found.headers)) if found else None

    def add(self, record: IdempotencyRecord) -> None:
        kept = dataclasses.replace(record, headers=dict(record.headers))
        self._t.insert(IDEMPOTENCY, (record.api_key_id, record.key), kept)

    def remove(self, api_key_id: str, key: str) -> None:
        self._t.delete(IDEMPOTENCY, (api_key_id, key))

    def purge(self, now: datetime) -> int:
        expired = [key for key, record in self._rows.items() if record.expires_at <= now]
        for key in expired:
            self._t.delete(IDEMPOTENCY, key)
        return len(expired)


class MemoryApiKeys:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._rows: dict[str, ApiKeyRow] = tables.table(API_KEYS)

    def add(self, key: ApiKeyRow) -> None:
        self._t.insert(API_KEYS, key.id, dataclasses.replace(key, roles=tuple(key.roles)))

    def get(self, key_id: str) -> ApiKeyRow | None:
        with self._t.lock:
            return self._rows.get(key_id)

    def listing(self, *, include_revoked: bool = False) -> list[ApiKeyRow]:
        with self._t.lock:
            keys = [k for k in self._rows.values() if include_revoked or k.revoked_at is None]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    def revoke(self, key_id: str, at: datetime) -> None:
        kept = self._rows.get(key_id)
        if kept is not None and kept.revoked_at is None:
            self._t.put(API_KEYS, key_id, dataclasses.replace(kept, revoked_at=at))


class MemoryDataKeys:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._rows: dict[str, WrappedKey] = tables.table(DATA_KEYS)
        self._meta: dict[str, str] = tables.table(META)

    def get(self, owner: str) -> WrappedKey | None:
        with self._t.lock:
            return self._rows.get(owner)

    def add(self, key: WrappedKey) -> bool:
        if key.owner in self._rows:
            return False
        self._t.insert(DATA_KEYS, key.owner, key)
        return True

    def rewrap(self, key: WrappedKey, old_kek_id: str) -> bool:
        kept = self._rows.get(key.owner)
        if kept is None or kept.kek_id != old_kek_id:
            return False
        self._t.put(DATA_KEYS, key.owner, dataclasses.replace(key, created_at=kept.created_at))
        return True

    def erase(self, owner: str, at: datetime) -> None:
        kept = self._rows.get(owner)
        created = kept.created_at if kept is not None else at
        self._t.put(DATA_KEYS, owner, WrappedKey(owner, "", b"", created, at))

    def erased_among(self, owners: Collection[str]) -> set[str]:
        with self._t.lock:
            return {o for o in owners if (k := self._rows.get(o)) and k.erased_at is not None}

    def wrapped_with_other(
        self, kek_id: str, *, after: str = "", limit: int = 500
    ) -> list[WrappedKey]:
        with self._t.lock:
            found = [
                k
                for o, k in self._rows.items()
                if o > after and k.kek_id != kek_id and k.erased_at is None
            ]
        return sorted(found, key=lambda k: k.owner)[: max(limit, 0)]

    def kek_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._t.lock:
            for key in self._rows.values():
                if key.erased_at is not None:
                    continue
                counts[key.kek_id] = counts.get(key.kek_id, 0) + 1
        return counts

    def setting(self, name: str) -> str | None:
        with self._t.lock:
            return self._meta.get(name)

    def set_setting(self, name: str, value: str | None) -> None:
        if value is None:
            self._t.delete(META, name)
        else:
            self._t.put(META, name, value)


class MemoryPrivacy:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._subjects: dict[str, str] = tables.table(SUBJECTS)  # instance id -> blind index
        self._holds: dict[str, tuple[str, datetime]] = tables.table(HOLDS)

    def index_subject(self, instance_id: str, blind_index: str | None) -> None:
        if blind_index is None:
            self._t.delete(SUBJECTS, instance_id)
        elif self._subjects.get(instance_id) != blind_index:
            self._t.put(SUBJECTS, instance_id, blind_index)

    def subject_instances(self, blind_index: str) -> list[str]:
        with self._t.lock:
            return sorted(i for i, b in self._subjects.items() if b == blind_index)

    def hold(self, instance_id: str, actor: str, at: datetime) -> bool:
        if instance_id in self._holds:
            return False
        self._t.put(HOLDS, instance_id, (actor, at))
        return True

    def release(self, instance_id: str) -> bool:
        return self._t.delete(HOLDS, instance_id)

    def held_among(self, instance_ids: Collection[str]) -> set[str]:
        with self._t.lock:
            return {i for i in instance_ids if i in self._holds}


class MemoryReadLog:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._rows: dict[int, ReadEntry] = tables.table(READ_LOG)

    def append(self, entries: Sequence[ReadEntry]) -> None:
        for e in entries:
            entry_id = self._t.next_id(READ_LOG)
            # its position is its id: an in-memory store outlives no checkpoint
            placed = dataclasses.replace(e, id=entry_id, position=entry_id)
            self._t.insert(READ_LOG, entry_id, placed)

    def after(self, position: int, limit: int = 1000) -> list[ReadEntry]:
        with self._t.lock:
            found = [e for key, e in sorted(self._rows.items()) if key > position]
        return found[:limit]

    def listing(
        self,
        *,
        instance_id: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[ReadEntry]:
        with self._t.lock:
            found = [
                e
                for key, e in sorted(self._rows.items())
                if key > after
                and (instance_id is None or e.instance_id == instance_id)
                and (actor is None or e.actor == actor)
                and (since is None or e.at >= since)
            ]
        return found[: max(limit, 0)]
