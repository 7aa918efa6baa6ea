"""``SealedStore``: the store seen through the keyring, above the store port.

The engine wraps whatever store it is given (memory, SQLite, PostgreSQL) in this one, so
every store holds ciphertext and every caller of ``engine.store`` (the engine, the
scheduler, the outbox dispatcher, the HTTP API's idempotency records) reads and writes clear
values. What it seals on the way in and opens on the way out:

- instance data: the fields a definition marks ``personal`` or ``confidential`` (a records
  field with personal sub-fields whole), each value on its own, so a change re-seals only
  the values that changed;
- outbox payloads and idempotency replies, whole;
- audit reasons are sealed by the engine before the record is hashed (the hash covers the
  stored form, so ``audit verify`` needs no key), and opened by ``Engine.history``.

Deadline timers and obligations hold no personal value (a due time, an offset, the date they
count from, fixed words; a waiver's reason goes to the audit record, sealed), and definitions,
API keys and the rest are the NPM's own configuration: they pass unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Any, TypeVar

from opcatflow.engine.audit import state_hash
from opcatflow.engine.crypto.cipher import (
    ERASED,
    ERASED_KEY,
    ErasedValue,
    OwnerKeys,
    blind_index,
    data_place,
    is_erased,
    is_sealed,
    is_sealed_text,
    outbox_place,
    reply_place,
)
from opcatflow.engine.crypto.keyring import (
    STORE_OWNER,
    STORE_OWNERS,
    SUBJECT_OWNER,
    Fresh,
    Keyring,
)
from opcatflow.engine.errors import InstanceErased, KeyUnavailable
from opcatflow.engine.instance import Instance
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
    Store,
    TimerRepository,
    UnitOfWork,
)
from opcatflow.engine.rows import (
    IdempotencyRecord,
    NewMessage,
    OutboxEntry,
    OutboxStatus,
    ReadEntry,
    SendOutcome,
)

T = TypeVar("T")

# (workflow id, version) -> the names of the fields sealed in its instances' data
SealedFields = Callable[[str, int], frozenset[str]]
# (workflow id, version) -> the field naming its instances' data subject, if it declares one
SubjectField = Callable[[str, int], str | None]


# (the raw unit of work, an instance as written, its data clear) -> None: the report
# projection's rows for it, written in the same transaction
Project = Callable[[UnitOfWork, Instance], None]


def _no_subject(workflow: str, version: int) -> str | None:
    return None


def _no_projection(uow: UnitOfWork, instance: Instance) -> None:
    return None


class SealedUnitOfWork:
    """A unit of work whose repositories seal and open values (see the module's notes)."""

    def __init__(
        self,
        raw: UnitOfWork,
        keyring: Keyring,
        sealed_fields: SealedFields,
        subject_field: SubjectField = _no_subject,
        project: Project = _no_projection,
    ) -> None:
        self.raw = raw
        self.keyring = keyring
        self.fresh: Fresh = {}
        self._live: set[str] = set()  # owners whose row this unit of work saw not erased
        self.sealed_instances = SealedInstances(
            raw.instances, self, sealed_fields, subject_field, project
        )
        self.instances: InstanceRepository = self.sealed_instances
        self.audit: AuditRepository = raw.audit
        self.definitions: DefinitionRepository = raw.definitions
        self.obligations: ObligationRepository = raw.obligations  # no personal value in them
        self.timers: TimerRepository = raw.timers
        self.keys: ApiKeyRepository = raw.keys
        self.data_keys: DataKeyRepository = raw.data_keys
        self.privacy: PrivacyRepository = raw.privacy
        self.reports: ReportRepository = raw.reports  # non-personal values only

    # Made on first use: most units of work (a fire) never touch them.
    @cached_property
    def outbox(self) -> OutboxRepository:
        return SealedOutbox(self.raw.outbox, self)

    @cached_property
    def idempotency(self) -> IdempotencyRepository:
        return SealedIdempotency(self.raw.idempotency, self)

    @cached_property
    def read_log(self) -> ReadLogRepository:
        return SealedReadLog(self.raw.read_log, self)

    def keys_of(self, owner: str) -> OwnerKeys | None:
        """The keys of ``owner``, ``None`` if it has none. Raises: KeyUnavailable."""
        return self.keyring.find(self.data_keys, owner, self.fresh)

    def ensure_keys(self, owner: str, now: datetime) -> OwnerKeys:
        """The keys of ``owner``, made in this unit of work if it has none.

        Before the first seal for an instance, the unit of work reads its key's row, even
        when this process has the keys cached: another process may have erased them since,
        and a value sealed with a destroyed key would be lost, or an erased owner given new
        keys.

        Raises:
            KeyUnavailable
            InstanceErased: the owner's keys were erased (nothing is made).
        """
        if owner not in self._live and owner not in STORE_OWNERS and owner not in self.fresh:
            row = self.data_keys.get(owner)
            if row is not None and row.erased_at is not None:
                self.keyring.forget(owner)
                raise InstanceErased(owner)
            self._live.add(owner)
            if row is None:  # a new instance: no second read to find none
                return self.keyring.create(self.data_keys, owner, now, self.fresh)
        keys = self.keyring.find(self.data_keys, owner, self.fresh)
        if keys is None:
            keys = self.keyring.create(self.data_keys, owner, now, self.fresh)
        return keys

    def required_keys(self, owner: str, where: str) -> OwnerKeys:
        keys = self.keys_of(owner)
        if keys is None:
            raise KeyUnavailable(
                "(none)",
                f"{where} holds sealed values but {owner} has no data key in the database",
                "restore the database from its backup; see docs/operations.md",
            )
        return keys

    def state_hash_to_write(self, instance: Instance) -> str:
        """The :func:`~opcatflow.engine.audit.state_hash` of ``instance`` as it will be
        stored: its sealed values are sealed now, and the insert or update that follows in
        this unit of work stores these very ciphertexts (unchanged values keep theirs)."""
        return row_state_hash(self.sealed_instances.sealed(instance))

    def state_hash_as_stored(self, instance: Instance) -> str:
        """The state hash of ``instance`` as last read or written in this unit of work (a
        record that changes nothing on the row: a refusal, a deadline, a key change)."""
        return row_state_hash(self.sealed_instances.as_stored(instance))

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # Keys made inside a savepoint that rolls back are gone with it.
        before = dict(self.fresh)
        try:
            with self.raw.savepoint():
                yield
        except BaseException:
            self.fresh.clear()
            self.fresh.update(before)
            raise


class SealedInstances:
    """Instances with their sealed fields opened; a write re-seals only changed values."""

    def __init__(
        self,
        raw: InstanceRepository,
        uow: SealedUnitOfWork,
        sealed_fields: SealedFields,
        subject_field: SubjectField = _no_subject,
        project: Project = _no_projection,
    ) -> None:
        self._raw = raw
        self._uow = uow
        self._sealed_fields = sealed_fields
        self._subject_field = subject_field
        self._project = project
        # instance id -> (data as stored, data opened), as last read or written here
        self._seen: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}

    def _open(self, instance: Instance) -> Instance:
        stored = instance.data
        sealed = [name for name, value in stored.items() if is_sealed(value)]
        erased = [name for name, value in stored.items() if is_erased(value)]
        if not sealed and not erased:
            return instance
        data = dict(stored)
        for name in erased:
            data[name] = ERASED
        if sealed:
            keys = self._uow.required_keys(instance.id, f"instance {instance.id}")
            for name in sealed:
                data[name] = keys.open(stored[name], data_place(instance.id, name))
        opened = _with_data(instance, data)
        self._seen[instance.id] = (stored, opened.data)
        return opened

    def _seal(self, instance: Instance, now: datetime, *, new: bool = False) -> Instance:
        data = instance.data
        seen = self._seen.get(instance.id)
        if seen is not None and not new and (seen[1] is data or seen[1] == data):
            # The values as last read or sealed here (a fire hashes the row it will store,
            # then stores it): each keeps its ciphertext, and the subject's index stands.
            return instance if seen[0] is seen[1] else _with_data(instance, dict(seen[0]))
        names = self._sealed_fields(instance.workflow_id, instance.workflow_version)
        stored_before, opened_before = seen or ({}, {})
        self._index_subject(instance, opened_before, now, new)
        targets = [n for n in names if data.get(n) is not None]
        if not targets:
            self._seen[instance.id] = (data, data)  # stored as it is
            return instance
        out = dict(data)
        keys: OwnerKeys | None = None
        for name in targets:
            value = out[name]
            kept = stored_before.get(name)
            if isinstance(value, ErasedValue):
                # kept erased (a new value for an erased field is refused by ensure_keys)
                out[name] = kept if is_erased(kept) else {ERASED_KEY: now.isoformat()}
            elif kept is not None and is_sealed(kept) and opened_before.get(name) == value:
                out[name] = kept  # unchanged: keep its ciphertext
            else:
                keys = keys or self._uow.ensure_keys(instance.id, now)
                out[name] = keys.seal(value, data_place(instance.id, name))
        sealed = _with_data(instance, out)
        self._seen[instance.id] = (sealed.data, data)
        return sealed

    def sealed(self, instance: Instance) -> Instance:
        """``instance`` as :meth:`insert` or :meth:`update` will store it."""
        return self._seal(instance, instance.updated_at)

    def as_stored(self, instance: Instance) -> Instance:
        """``instance`` as it was last read or written here, its sealed values sealed."""
        seen = self._seen.get(instance.id)
        if seen is None or seen[1] != instance.data:
            return instance  # read with no sealed value: stored as it is
        return _with_data(instance, dict(seen[0]))

    def lock(self, instance_id: str) -> Instance:
        return self._open(self._raw.lock(instance_id))

    def lock_for_append(self, instance_id: str) -> tuple[Instance, datetime | None]:
        instance, at = self._raw.lock_for_append(instance_id)
        return self._open(instance), at

    def get(self, instance_id: str) -> Instance:
        return self._open(self._raw.get(instance_id))

    def _index_subject(
        self, instance: Instance, before: Mapping[str, Any], now: datetime, new: bool
    ) -> None:
        # The blind index follows the subject field's value: written when it changes.
        name = self._subject_field(instance.workflow_id, instance.workflow_version)
        if name is None:
            return
        value = instance.data.get(name)
        if not new and value == before.get(name):
            return
        if value is None or isinstance(value, ErasedValue):
            if not new:
                self._uow.privacy.index_subject(instance.id, None)
            return
        keys = self._uow.ensure_keys(SUBJECT_OWNER, now)
        self._uow.privacy.index_subject(instance.id, blind_index(keys, value))

    def erased_data(self, current: Instance, names: Collection[str]) -> dict[str, Any]:
        """The data :meth:`erase` stores for ``current`` (whose ``updated_at`` is the
        erasure's time): every value of ``names`` and every sealed value erased."""
        marker = {ERASED_KEY: current.updated_at.isoformat()}
        stored = self._seen.get(current.id, (current.data, current.data))[0]
        out = {
            name: marker if name in names or is_sealed(value) or is_erased(value) else value
            for name, value in stored.items()
        }
        out.update((name, marker) for name in names)
        return out

    def erase(self, current: Instance, names: Collection[str], *, seq: int, head: str) -> Instance:
        """Store ``current`` (locked in this unit of work) with every value of ``names``, and
        every sealed value, replaced by an erased one (``updated_at`` is the erasure's time),
        its audit head at ``(seq, head)``; returns it as read."""
        at = current.updated_at
        out = self.erased_data(current, names)
        erased = Instance(
            current.id, current.workflow_id, current.workflow_version, current.state, out,
            current.version + 1, current.parent_id, current.created_at, at,
            current.state_entered_at, seq, head,
        )  # fmt: skip
        if not self._raw.update(erased, current.version):
            raise InstanceErased(current.id)  # (cannot happen: the row is locked)
        self._uow.privacy.index_subject(current.id, None)
        opened = self._open(erased)
        self._project(self._uow.raw, opened)
        return opened

    def insert(self, instance: Instance) -> None:
        self._raw.insert(self._seal(instance, instance.created_at, new=True))
        self._project(self._uow.raw, instance)

    def update(self, instance: Instance, expected_version: int) -> bool:
        if not self._raw.update(self._seal(instance, instance.updated_at), expected_version):
            return False
        self._project(self._uow.raw, instance)
        return True

    def advance_audit_head(self, instance_id: str, seq: int, head: str) -> bool:
        return self._raw.advance_audit_head(instance_id, seq, head)

    def query(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        where: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
        workflow_version: int | None = None,
    ) -> list[Instance]:
        found = self._raw.query(
            workflow=workflow,
            state=state,
            where=where,
            parent_id=parent_id,
            after=after,
            limit=limit,
            workflow_version=workflow_version,
        )
        return [self._open(i) for i in found]

    def count(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        where: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> int:
        return self._raw.count(
            workflow=workflow, state=state, where=where, parent_id=parent_id, after=after
        )

    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        return self._raw.ids_starting_with(prefix, limit)

    def audit_heads(self) -> dict[str, tuple[int, str]]:
        return self._raw.audit_heads()

    def state_hashes(self) -> dict[str, str]:
        return self._raw.state_hashes()  # of the stored rows: no key needed

    def census(self) -> dict[tuple[str, int, str], int]:
        return self._raw.census()


def row_state_hash(instance: Instance) -> str:
    """The state hash of an instance row as stored."""
    i = instance
    return state_hash(i.workflow_id, i.workflow_version, i.state, i.version, i.data)


def _with_data(instance: Instance, data: dict[str, Any]) -> Instance:
    # ``instance`` with other data (a dict only this module holds): built directly, since
    # dataclasses.replace cost more than the sealing on the hot path.
    i = instance
    return Instance(
        i.id, i.workflow_id, i.workflow_version, i.state, MappingProxyType(data), i.version,
        i.parent_id, i.created_at, i.updated_at, i.state_entered_at, i.audit_seq, i.audit_head,
    )  # fmt: skip


class SealedOutbox:
    """Outbox messages with their payload sealed whole, under the instance's data key (the
    store's own for a message about no instance)."""

    def __init__(self, raw: OutboxRepository, uow: SealedUnitOfWork) -> None:
        self._raw = raw
        self._uow = uow

    def add(self, messages: Sequence[NewMessage], now: datetime) -> None:
        sealed = []
        for m in messages:
            keys = self._uow.ensure_keys(m.instance_id or STORE_OWNER, now)
            payload = keys.seal(m.payload, outbox_place(m.key))
            sealed.append(dataclasses.replace(m, payload=payload))
        self._raw.add(sealed, now)

    def _open(self, entry: OutboxEntry | None) -> OutboxEntry | None:
        if entry is None or not is_sealed(entry.payload):
            return entry
        owner = entry.instance_id or STORE_OWNER
        keys = self._uow.required_keys(owner, f"outbox message {entry.id}")
        payload = keys.open(entry.payload, outbox_place(entry.idempotency_key))
        return dataclasses.replace(entry, payload=payload)

    def _open_all(self, entries: list[OutboxEntry]) -> list[OutboxEntry]:
        return [e for e in map(self._open, entries) if e is not None]

    def claim(self, *, now: datetime, lease: timedelta, limit: int) -> list[OutboxEntry]:
        return self._open_all(self._raw.claim(now=now, lease=lease, limit=limit))

    def finish(self, outcomes: Sequence[SendOutcome], now: datetime) -> int:
        return self._raw.finish(outcomes, now)

    def get(self, message_id: int) -> OutboxEntry | None:
        return self._open(self._raw.get(message_id))

    def listing(
        self, statuses: Collection[OutboxStatus], *, limit: int = 100, after: int = 0
    ) -> list[OutboxEntry]:
        return self._open_all(self._raw.listing(statuses, limit=limit, after=after))

    def counts(self) -> dict[OutboxStatus, int]:
        return self._raw.counts()

    def retry(self, message_id: int, now: datetime) -> OutboxEntry | None:
        found = self._raw.get(message_id)
        if found is not None and is_erased(found.payload) and found.instance_id is not None:
            raise InstanceErased(found.instance_id)  # nothing left to send
        return self._open(self._raw.retry(message_id, now))

    def erase_instance(self, instance_id: str, note: str) -> int:
        return self._raw.erase_instance(instance_id, note)


class SealedIdempotency:
    """Idempotency replies sealed whole under the store's own data key."""

    def __init__(self, raw: IdempotencyRepository, uow: SealedUnitOfWork) -> None:
        self._raw = raw
        self._uow = uow

    def get(self, api_key_id: str, key: str) -> IdempotencyRecord | None:
        record = self._raw.get(api_key_id, key)
        if record is None or not is_sealed_text(record.response):
            return record
        keys = self._uow.required_keys(STORE_OWNER, "an idempotency reply")
        response = keys.open_text(record.response, reply_place(api_key_id, key))
        return dataclasses.replace(record, response=response)

    def add(self, record: IdempotencyRecord) -> None:
        keys = self._uow.ensure_keys(STORE_OWNER, record.created_at)
        place = reply_place(record.api_key_id, record.key)
        self._raw.add(dataclasses.replace(record, response=keys.seal_text(record.response, place)))

    def remove(self, api_key_id: str, key: str) -> None:
        self._raw.remove(api_key_id, key)

    def purge(self, now: datetime) -> int:
        return self._raw.purge(now)


def read_place(entry: ReadEntry) -> str:
    return f"read-log/{entry.instance_id or '*'}/{entry.at.isoformat()}/{entry.actor}"


class SealedReadLog:
    """The read log with each reader's reason sealed under the store's own key (a reason
    may name a person)."""

    def __init__(self, raw: ReadLogRepository, uow: SealedUnitOfWork) -> None:
        self._raw = raw
        self._uow = uow

    def append(self, entries: Sequence[ReadEntry]) -> None:
        sealed = []
        for entry in entries:
            if entry.reason is None:
                sealed.append(entry)
                continue
            keys = self._uow.ensure_keys(STORE_OWNER, entry.at)
            reason = keys.seal_text(entry.reason, read_place(entry))
            sealed.append(dataclasses.replace(entry, reason=reason))
        self._raw.append(sealed)

    def listing(
        self,
        *,
        instance_id: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[ReadEntry]:
        found = self._raw.listing(
            instance_id=instance_id, actor=actor, since=since, after=after, limit=limit
        )
        opened = []
        for entry in found:
            if entry.reason is None or not is_sealed_text(entry.reason):
                opened.append(entry)
                continue
            keys = self._uow.required_keys(STORE_OWNER, "the read log")
            reason = keys.open_text(entry.reason, read_place(entry))
            opened.append(dataclasses.replace(entry, reason=reason))
        return opened

    def after(self, position: int, limit: int = 1000) -> list[ReadEntry]:
        return self._raw.after(position, limit)  # as stored: the root needs no key


class SealedStore:
    """A :class:`~opcatflow.engine.ports.Store` that seals personal values before they
    reach ``raw`` and opens them after; anything else is ``raw``'s (``url``, ``connect``)."""

    def __init__(
        self,
        raw: Store,
        keyring: Keyring,
        sealed_fields: SealedFields,
        subject_field: SubjectField = _no_subject,
        project: Project = _no_projection,
    ) -> None:
        self.raw = raw
        self.keyring = keyring
        self._sealed_fields = sealed_fields
        self._subject_field = subject_field
        self._project = project

    def _unit(self, uow: UnitOfWork) -> SealedUnitOfWork:
        return SealedUnitOfWork(
            uow, self.keyring, self._sealed_fields, self._subject_field, self._project
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    @contextmanager
    def write(self) -> Iterator[SealedUnitOfWork]:
        with self.raw.write() as uow:
            yield self._unit(uow)

    def submit(self, work: Callable[[SealedUnitOfWork], T]) -> T:
        # A unit of work of its own for each run: group commit may run ``work`` twice (alone
        # after a failed shared commit), and keys it made in the failed run are gone with it.
        return self.raw.submit(lambda uow: work(self._unit(uow)))

    def submit_soon(self, work: Callable[[SealedUnitOfWork], T]) -> Future[T]:
        return self.raw.submit_soon(lambda uow: work(self._unit(uow)))

    @contextmanager
    def read(self) -> Iterator[SealedUnitOfWork]:
        with self.raw.read() as uow:
            yield self._unit(uow)

    def secret(self, key: str) -> bytes:
        return self.raw.secret(key)

    def audit_times_ordered_from(self) -> int:
        return self.raw.audit_times_ordered_from()

    def head_revision(self) -> str:
        return self.raw.head_revision()

    def current_revision(self) -> str | None:
        return self.raw.current_revision()

    def ensure_schema(self, *, create: bool = True) -> None:
        self.raw.ensure_schema(create=create)

    def close(self) -> None:
        self.raw.close()
