"""The store's interfaces: one repository per concern, a unit of work, and the store.

Every contract is written here, once, in the docstrings; implementations
(:class:`~opcatflow.engine.sql.SQLAlchemyStore`, the in-memory store) do not repeat it, and
the contract test suite checks each of them against it.

The engine opens and closes every transaction. A unit of work is what a transaction looks
like from outside a store: typed repositories and nothing else; no database connection is
ever handed out. Code that must write in the same transaction as a change (the outbox, the
HTTP API's idempotency record) receives the unit of work from the engine, in a hook or in the
``also`` callback of :meth:`Engine.fire <opcatflow.engine.Engine.fire>` and
:meth:`Engine.start <opcatflow.engine.Engine.start>`.

Repositories are only valid inside the ``with`` block of their unit of work; using one after
it has closed is a programming error (an implementation may raise :class:`StoreError`).
Values going in and out are immutable (:class:`Instance`, :class:`AuditRecord`, the rows of
:mod:`opcatflow.engine.rows`): a repository never keeps a reference the caller can change.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from opcatflow.engine.audit import AuditRecord
from opcatflow.engine.deadlines import PlannedTimer
from opcatflow.engine.errors import StoreError
from opcatflow.engine.instance import Instance
from opcatflow.engine.rows import (
    ApiKeyRow,
    DefinitionOrigin,
    DefinitionStatus,
    Fact,
    IdempotencyRecord,
    NewMessage,
    NewObligation,
    Obligation,
    ObligationStatus,
    OutboxEntry,
    OutboxStatus,
    ReadEntry,
    SendOutcome,
    StoredDefinition,
    Timer,
    TimerStatus,
    WrappedKey,
)

__all__ = [
    "ApiKeyRepository",
    "AuditRepository",
    "DataKeyRepository",
    "DefinitionRepository",
    "DuplicateKey",
    "IdempotencyRepository",
    "InstanceRepository",
    "ObligationRepository",
    "OutboxRepository",
    "PrivacyRepository",
    "ReadLogRepository",
    "Store",
    "TimerRepository",
    "UnitOfWork",
]


T = TypeVar("T")


class DuplicateKey(StoreError):
    """An insert met a row with the same unique key (written by another unit of work that
    committed first, or earlier in this one). The unit of work must be abandoned: raise out
    of it so it rolls back."""


class InstanceRepository(Protocol):
    """Workflow instances (one row each; the head of their audit chain lives on the row)."""

    def lock(self, instance_id: str) -> Instance:
        """Read an instance and hold it until the unit of work ends: no other write unit of
        work can lock, update or append to it meanwhile (it waits), and a claim of its timers
        skips it.

        Raises:
            InstanceNotFound
        """

    def lock_for_append(self, instance_id: str) -> tuple[Instance, datetime | None]:
        """:meth:`lock`, with the time of the last record of the instance's audit chain
        (``None`` only if that record is missing), read after the lock is held, so a new
        record can be stamped no earlier than it.

        Raises:
            InstanceNotFound
        """

    def get(self, instance_id: str) -> Instance:
        """Read an instance without locking it.

        Raises:
            InstanceNotFound
        """

    def insert(self, instance: Instance) -> None:
        """Store a new instance.

        Raises:
            DuplicateKey: its id is taken.
        """

    def update(self, instance: Instance, expected_version: int) -> bool:
        """Replace the stored instance of ``instance.id`` (definition version, state, data,
        version, times, audit head) if its stored version is still ``expected_version``.

        Returns:
            whether it was written (``False``: no such instance, or another version).
        """

    def advance_audit_head(self, instance_id: str, seq: int, head: str) -> bool:
        """Set the audit head to ``(seq, head)`` if it is still at ``seq - 1`` (a refusal
        or a deadline record: the audit chain grows, the instance does not change).

        Returns:
            whether it was written.
        """

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
        """Instances matching every given filter, ordered by ``(created_at, id)``.

        Args:
            workflow_version: the definition version they run on.
            where: data fields equal to the given values (``bool``, ``int`` or text; a
                value of another type compares as its ``str``).
            after: a ``(created_at, id)`` key: only instances ordered after it (paging).
            limit: at most this many.
        """

    def count(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        where: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> int:
        """How many instances :meth:`query` with these filters would return with no limit
        (the rest of a list after its page: "N more")."""

    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` instance ids that start with ``prefix`` (compared character by
        character, case-sensitively), sorted. Answered from the index on the id (a range
        scan on it), never by reading every id: resolving the prefix a person typed costs
        the same on a database of a million instances as on one of ten."""

    def audit_heads(self) -> dict[str, tuple[int, str]]:
        """Every instance's ``(audit_seq, audit_head)``, by instance id."""

    def state_hashes(self) -> dict[str, str]:
        """Every instance's :func:`~opcatflow.engine.audit.state_hash` of its row as stored
        (sealed values as ciphertext), by instance id."""

    def census(self) -> dict[tuple[str, int, str], int]:
        """How many instances each ``(workflow, definition version, state)`` holds (only
        those holding any)."""


class AuditRepository(Protocol):
    """The append-only audit trail: one hash chain per instance."""

    def append(self, record: AuditRecord) -> None:
        """Add a record (its ``id`` and ``position`` are ignored). Records are never updated
        or deleted, by any path.

        The store gives each record two numbers. ``id`` is a global sequence, increasing
        but with gaps (a rolled-back unit of work used some). ``position`` is the record's
        place in one total order of every record: when the unit of work commits, its records
        take the next positions, in the order they were appended, from a counter that moves
        once per commit; positions have no gaps, follow commit order, and a reader never sees
        position ``n + 1`` before ``n`` (see :meth:`after`).

        Raises:
            DuplicateKey: the instance already has a record with this ``seq`` (an
                implementation may raise it when the unit of work commits, out of its
                ``with`` block).
        """

    def records(self, instance_id: str | None = None) -> Iterator[AuditRecord]:
        """The records of one instance, or of all, ordered by instance id then ``seq``, with
        their global ``id`` and ``position``; streamed (an implementation need not hold them
        all at once)."""

    def after(self, position: int, limit: int = 1000) -> list[AuditRecord]:
        """The committed records with a position above ``position``, in position order, at
        most ``limit``: a reader that pages with the last position it got sees every record
        once, in commit order, and never one before all those positioned ahead of it."""


class DefinitionRepository(Protocol):
    """The copy of each workflow definition version kept when it was first registered."""

    def get(self, workflow: str, version: int) -> StoredDefinition | None:
        """The stored copy, or ``None``."""

    def add(self, definition: StoredDefinition) -> None:
        """Store a copy unless one with this id and version exists (then nothing changes:
        read it back with :meth:`get` to compare). Never raises :class:`DuplicateKey`, so
        processes registering the same definitions at once all succeed."""

    def set_fingerprint(self, workflow: str, version: int, fingerprint: str) -> None:
        """Replace the fingerprint of a stored copy (the content is unchanged: an earlier
        fingerprint formula)."""

    def listing(self) -> list[StoredDefinition]:
        """Every stored copy, ordered by workflow id then version."""

    def set_status(
        self, workflow: str, version: int, status: DefinitionStatus, at: datetime
    ) -> None:
        """Retire a stored copy (``retired_at`` becomes ``at``) or make it active again
        (``retired_at`` cleared); nothing if there is no such copy."""

    def set_origin(self, workflow: str, version: int, origin: DefinitionOrigin) -> None:
        """Record how a stored copy is known (``deploy``: every process loads it)."""


class TimerRepository(Protocol):
    """Deadline timers: rows armed, paused, resumed and closed in the transaction of the
    change that causes it, and claimed by the scheduler."""

    def arm(
        self, instance_id: str, state: str, planned: Sequence[PlannedTimer], now: datetime
    ) -> None:
        """Add planned timers as ``pending`` rows created at ``now`` (none: nothing), each
        pointing to its planned ``obligation_id``."""

    def of_deadline(self, instance_id: str, state: str, deadline: str) -> list[Timer]:
        """Every timer (open or closed) one deadline armed in one state of an instance,
        oldest first."""

    def cancel(
        self,
        instance_id: str,
        state: str,
        *,
        at: datetime,
        note: str,
        deadline: str | None = None,
    ) -> None:
        """Close the open (``pending`` or ``paused``) timers of an instance armed in
        ``state`` (only those of ``deadline`` if given) as ``cancelled`` at ``at``."""

    def pause(self, instance_id: str, state: str, deadlines: Collection[str], at: datetime) -> None:
        """Mark the ``pending`` timers of these deadlines ``paused`` since ``at``."""

    def resume(
        self, instance_id: str, state: str, deadlines: Collection[str], at: datetime
    ) -> None:
        """Make the ``paused`` timers of these deadlines ``pending`` again, each due later by
        as long as it was paused."""

    def next_due(self) -> datetime | None:
        """The earliest ``due_at`` of a ``pending`` timer."""

    def due_count(self, now: datetime) -> int:
        """How many ``pending`` timers are due at ``now`` (claimed ones included)."""

    def newest_id(self) -> int | None:
        """The highest timer id (``None``: no timers), to bound one round of processing."""

    def claim(
        self,
        now: datetime,
        limit: int,
        *,
        up_to: int | None = None,
        exclude: Collection[int] = (),
    ) -> list[Timer]:
        """Take up to ``limit`` ``pending`` timers due at ``now``, ordered by ``(due_at,
        id)``, for this unit of work: until it ends, no other unit of work claims them, and
        rows held by another open unit of work (the timer, or its instance locked) are
        skipped, not waited for.

        Args:
            up_to: only timers with an id up to this.
            exclude: timer ids to leave out.
        """

    def status(self, timer_id: int) -> TimerStatus | None:
        """A timer's status now (``None``: no such timer)."""

    def close(
        self,
        timer_id: int,
        status: TimerStatus,
        *,
        attempts: int,
        at: datetime | None,
        note: str | None,
    ) -> None:
        """Set a timer's status, attempts and note; ``at`` is its ``closed_at`` (``None``
        leaves it open, e.g. ``pending`` again after a failed attempt)."""

    def rekey(
        self,
        instance_id: str,
        state: str,
        to_state: str,
        deadlines: Mapping[str, str | None],
        *,
        at: datetime,
        note: str,
    ) -> None:
        """Move the timers an instance armed in ``state`` (open and closed) to ``to_state``,
        keeping their due times, status and history: a deadline named in ``deadlines``
        takes the new name given, and the open timers of a deadline mapped to ``None`` are
        closed as ``cancelled`` at ``at`` with ``note`` (a definition migration)."""

    def reschedule(self, timer_id: int, due_at: datetime, *, attempts: int) -> None:
        """Keep a timer ``pending``, due again at ``due_at`` (the next round of a repeating
        alert, in the transaction that fired this one)."""

    def close_open(self, obligation_ids: Collection[int], *, at: datetime, note: str) -> None:
        """Close the open (``pending`` or ``paused``) timers of these obligations as
        ``cancelled`` at ``at``."""

    def pause_open(self, obligation_ids: Collection[int], at: datetime) -> None:
        """Mark the ``pending`` timers of these obligations ``paused`` since ``at``."""

    def resume_open(self, obligation_ids: Collection[int], at: datetime) -> None:
        """Make the ``paused`` timers of these obligations ``pending`` again, each due later
        by as long as it was paused."""

    def open_timers(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        reminders: bool = False,
        due_before: datetime | None = None,
        limit: int = 1000,
    ) -> list[Timer]:
        """Open (``pending`` or ``paused``) timers, ordered by ``(due_at, id)``.

        Args:
            reminders: include ``reminder`` rows (else ``due`` rows only).
            due_before: only those with ``due_at`` at or before it.
        """


class ObligationRepository(Protocol):
    """Deadline occurrences owed by a case: one row each, identified by ``(instance_id,
    deadline, occurrence)``, changed in the transaction of the change (or the scheduler's
    batch) that causes it. Their timers (:class:`TimerRepository`) point to them."""

    def add(self, obligation: NewObligation, now: datetime) -> int:
        """Store a new obligation created (and updated) at ``now``; returns its id.

        Raises:
            DuplicateKey: the instance already has this occurrence of this deadline.
            StoreError: no such instance.
        """

    def get(self, obligation_id: int) -> Obligation | None:
        """One obligation, or ``None``."""

    def of_instance(self, instance_id: str, *, deadline: str | None = None) -> list[Obligation]:
        """Every obligation of an instance (of one deadline if given), open or closed,
        ordered by ``(deadline, occurrence)``."""

    def update(self, obligation: Obligation, now: datetime) -> None:
        """Write back everything but ``id``, ``instance_id`` and ``created_at`` of a stored
        obligation (its status and dates; also its deadline, occurrence and scope, which a
        definition migration may change), with ``updated_at`` set to ``now``.

        Raises:
            DuplicateKey: the new ``(deadline, occurrence)`` is taken on the instance.
        """

    def listing(
        self,
        statuses: Collection[ObligationStatus],
        *,
        workflow: str | None = None,
        state: str | None = None,
        due_before: datetime | None = None,
        limit: int = 100,
        after: tuple[datetime, int] | None = None,
    ) -> list[Obligation]:
        """Obligations in these statuses, ordered by ``(due_at, id)`` (each status is read
        through the ``(status, due_at, id)`` index).

        Args:
            state: only of instances now in this state.
            due_before: only those with ``due_at`` at or before it.
            after: only those sorting after this ``(due_at, id)`` key (the next page).
        """


class OutboxRepository(Protocol):
    """Notification messages: written with the change, then claimed and sent afterwards.

    A claim marks rows ``sending`` under a lease (``next_attempt_at`` becomes the lease's
    end) and a claim token; finishing updates only rows still holding that token, so a
    dispatcher whose lease ran out cannot overwrite the outcome of the one that claimed the
    rows after it (delivery is at least once).
    """

    def add(self, messages: Sequence[NewMessage], now: datetime) -> None:
        """Write messages due at ``now``, with no attempts yet.

        Raises:
            DuplicateKey: a message's ``key`` is already in the outbox.
        """

    def claim(self, *, now: datetime, lease: timedelta, limit: int) -> list[OutboxEntry]:
        """Take up to ``limit`` messages due at ``now`` (``pending``, ``failed``, or
        ``sending`` with a lapsed lease), oldest due first; rows another open unit of work
        has claimed are skipped, not waited for. Each returned entry is ``sending``, its
        attempts counted, with the token of this claim."""

    def finish(self, outcomes: Sequence[SendOutcome], now: datetime) -> int:
        """Record outcomes (``sent`` at ``now``, or ``failed``/``dead`` with an error) on
        rows still holding the outcome's claim token; returns how many were updated."""

    def get(self, message_id: int) -> OutboxEntry | None:
        """One message, or ``None``."""

    def listing(
        self, statuses: Collection[OutboxStatus], *, limit: int = 100, after: int = 0
    ) -> list[OutboxEntry]:
        """Messages in these statuses with an id above ``after``, by id."""

    def counts(self) -> dict[OutboxStatus, int]:
        """How many messages in each status that has any."""

    def retry(self, message_id: int, now: datetime) -> OutboxEntry | None:
        """Make a ``failed``, ``dead`` or ``pending`` message due at ``now`` with no
        attempts; returns the message as it was before (``None``: no such message; a message
        in another status is returned unchanged)."""

    def erase_instance(self, instance_id: str, note: str) -> int:
        """The messages about ``instance_id`` after its erasure: each loses its payload
        (``{"$erased": true}``), and those not sent yet become ``dead`` with ``note`` as their
        last error (a claim in flight can no longer finish them). Returns how many."""


class IdempotencyRepository(Protocol):
    """Replies stored under the HTTP ``Idempotency-Key`` of a request, per API key."""

    def get(self, api_key_id: str, key: str) -> IdempotencyRecord | None:
        """The stored record, expired or not, or ``None``."""

    def add(self, record: IdempotencyRecord) -> None:
        """Store a record.

        Raises:
            DuplicateKey: ``(api_key_id, key)`` is taken (a racing copy of the request
                committed first).
        """

    def remove(self, api_key_id: str, key: str) -> None:
        """Delete one record (nothing if there is none)."""

    def purge(self, now: datetime) -> int:
        """Delete every record expired at ``now``; returns how many."""


class ApiKeyRepository(Protocol):
    """The HTTP API's keys (the secret kept only as its SHA-256)."""

    def add(self, key: ApiKeyRow) -> None:
        """Store a new key.

        Raises:
            DuplicateKey: its id is taken.
        """

    def get(self, key_id: str) -> ApiKeyRow | None:
        """One key, revoked or not, or ``None``."""

    def listing(self, *, include_revoked: bool = False) -> list[ApiKeyRow]:
        """Keys ordered by ``(created_at, id)``."""

    def revoke(self, key_id: str, at: datetime) -> None:
        """Mark a key revoked at ``at`` (a key already revoked keeps its first time)."""


class DataKeyRepository(Protocol):
    """Wrapped data keys, one per owner, and the settings of the keys (kept in the store's
    meta table). A data key never changes once stored: rotating the key-encryption key
    re-wraps it, so values sealed with it stay as they are."""

    def get(self, owner: str) -> WrappedKey | None:
        """The wrapped key of ``owner``, or ``None``."""

    def add(self, key: WrappedKey) -> bool:
        """Store a new wrapped key unless ``owner`` has one; returns whether it was stored.
        Never raises :class:`DuplicateKey`: processes making the store's own key at once
        all go on (the one that lost reads the winner's back with :meth:`get`)."""

    def rewrap(self, key: WrappedKey, old_kek_id: str) -> bool:
        """Replace the wrapped form of ``key.owner``'s key if it is still wrapped with
        ``old_kek_id``; returns whether it was written."""

    def erase(self, owner: str, at: datetime) -> None:
        """Destroy ``owner``'s keys: its row keeps only a tombstone (``wrapped`` empty,
        ``erased_at`` set), made if it had none, so nothing makes new keys for it; rotation
        skips it."""

    def erased_among(self, owners: Collection[str]) -> set[str]:
        """Which of ``owners`` have a tombstone."""

    def wrapped_with_other(
        self, kek_id: str, *, after: str = "", limit: int = 500
    ) -> list[WrappedKey]:
        """Keys wrapped with another KEK than ``kek_id``, owners above ``after``, by owner."""

    def kek_counts(self) -> dict[str, int]:
        """How many keys each KEK wraps."""

    def setting(self, name: str) -> str | None:
        """A key setting (``kek_rotation``: the KEK a rotation in progress moves to;
        ``audit_key``: the database-wide audit key of older releases, in hex)."""

    def set_setting(self, name: str, value: str | None) -> None:
        """Set or (``None``) remove a key setting."""


class PrivacyRepository(Protocol):
    """The blind index of data subjects, and legal holds (engine/privacy.py)."""

    def index_subject(self, instance_id: str, blind_index: str | None) -> None:
        """Make ``blind_index`` the one subject of ``instance_id`` (``None``: none)."""

    def subject_instances(self, blind_index: str) -> list[str]:
        """The ids of the instances indexed under ``blind_index``, sorted."""

    def hold(self, instance_id: str, actor: str, at: datetime) -> bool:
        """Put ``instance_id`` under a legal hold; whether it was not held yet."""

    def release(self, instance_id: str) -> bool:
        """Lift the legal hold of ``instance_id``; whether it was held."""

    def held_among(self, instance_ids: Collection[str]) -> set[str]:
        """Which of ``instance_ids`` are under a legal hold."""


class ReadLogRepository(Protocol):
    """The read log: every read of personal values, append-only (no path updates or deletes
    an entry; the SQL stores refuse it with triggers)."""

    def append(self, entries: Sequence[ReadEntry]) -> None:
        """Add entries (their ``id`` is ignored: the store numbers them, increasing)."""

    def listing(
        self,
        *,
        instance_id: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[ReadEntry]:
        """Entries with an id above ``after`` matching every given filter, by id, at most
        ``limit``."""

    def after(self, position: int, limit: int = 1000) -> list[ReadEntry]:
        """Entries with a position above ``position``, in position order, at most ``limit``,
        reasons as stored (sealed): what the read log's checkpoint root is computed over."""


class ReportRepository(Protocol):
    """The report projection: per instance, the non-personal values reports group and count
    on, as text rows (a field, an entry and a value), so a report reads no instance's JSON.

    The engine replaces an instance's rows in the unit of work of every write of it; which
    fields are projected is the registry's (:meth:`~opcatflow.engine.registry.Registry.project`)."""

    def replace(self, workflow_id: str, instance_id: str, facts: Sequence[Fact]) -> None:
        """Make ``facts`` the projected rows of the instance (none: remove its rows)."""

    def facts(
        self, workflow_id: str, fields: Collection[str]
    ) -> Iterator[tuple[str, str, str, str]]:
        """``(instance id, field, entry, value)`` of the workflow's instances for ``fields``,
        ordered by instance id, then field, then entry; streamed (consume it inside the unit
        of work)."""

    def clear(self) -> None:
        """Remove every projected row (before a rebuild)."""

    def digest(self) -> str | None:
        """The digest of the projections the rows were built with (``None``: never built)."""

    def set_digest(self, digest: str) -> None:
        """Record the digest of the projections the rows are now built with."""


class UnitOfWork(Protocol):
    """One transaction, seen through typed repositories.

    Obtained from :meth:`Store.write` or :meth:`Store.read` as a context manager. On a normal
    exit of a write unit of work everything it wrote is committed, durably (per the store's
    settings) before the ``with`` statement returns; if the block raises, everything it
    wrote is discarded and the exception propagates unchanged. Other units of work never see
    what it wrote before it commits.

    Attributes:
        instances, audit, definitions, obligations, timers, outbox, idempotency, keys,
            data_keys, privacy, read_log, reports: the repositories, all inside this one
            transaction.
    """

    instances: InstanceRepository
    audit: AuditRepository
    definitions: DefinitionRepository
    obligations: ObligationRepository
    timers: TimerRepository
    keys: ApiKeyRepository
    data_keys: DataKeyRepository
    privacy: PrivacyRepository
    reports: ReportRepository

    # Read-only, so a unit of work may make these on first use (most never touch them).
    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def read_log(self) -> ReadLogRepository: ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested part of this unit of work: if its block raises, only what was written in
        the block is discarded (locks and claims taken before it are kept) and the exception
        propagates; on a normal exit its writes join the unit of work. Savepoints nest."""


class Store(Protocol):
    """Where instances, their audit trail, timers, outbox and the API's records live.

    Safe to share between threads: each unit of work is used by the one thread that opened
    it. Write units of work on the same instance are serialised (see
    :meth:`InstanceRepository.lock`); a store may serialise all writers.
    """

    def write(self) -> AbstractContextManager[UnitOfWork]:
        """Open a read-write unit of work (see :class:`UnitOfWork`).

        Raises:
            StoreError: the store failed (an implementation's own errors are translated;
                the unit of work is rolled back).
        """

    def submit(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run ``work`` in a write unit of work that may be shared with other threads' work
        (group commit: one commit, so one flush to disk, for all of them); returns its
        result once that commit is durable, or raises its exception.

        ``work`` runs in a savepoint of its own: if it raises, only its writes are discarded
        and the exception reaches this caller, while the others' writes commit. If the
        shared commit fails, ``work`` runs again alone, in a unit of work of its own, and
        its caller gets the outcome of that run. So ``work`` may run twice, and in another
        thread than the caller's (in the caller's :mod:`contextvars` context): it must act
        only through the unit of work. A store without a flush to share (in memory) runs
        each one alone.

        Raises:
            StoreError: the store failed (also: the store is closed).
        """

    def submit_soon(self, work: Callable[[UnitOfWork], T]) -> Future[T]:
        """:meth:`submit` for a caller that must not block (an event loop): returns at once;
        the future gets ``work``'s result or exception once its commit is durable. Its
        batch is led by a thread of the store's own; a store with nothing to wait for (in
        memory) runs ``work`` before returning.

        Raises:
            StoreError: the store is closed.
        """

    def read(self) -> AbstractContextManager[UnitOfWork]:
        """Open a read-only unit of work: it must not write (an implementation may raise
        :class:`StoreError` if it does) and takes no locks."""

    def secret(self, key: str) -> bytes:
        """A per-store random secret (32 bytes) named ``key``, created on first use; every
        process asking for a new one at once gets the one stored first."""

    def audit_times_ordered_from(self) -> int:
        """The global audit id up to which records are older data: every later record was
        written by an engine that stamps a chain's records in order. Set to the newest id
        the first time this is called on a store (0 for an empty one), then unchanged."""

    def head_revision(self) -> str:
        """The schema revision this code expects."""

    def current_revision(self) -> str | None:
        """The schema revision the store is at (``None``: no schema yet); a store without
        a schema of its own (in memory) is always at :meth:`head_revision`."""

    def ensure_schema(self, *, create: bool = True) -> None:
        """Make the store ready: create its schema if it is empty (with ``create``); a store
        already at the current schema is left alone.

        Raises:
            SchemaMismatch: the store is at another schema revision.
            SchemaLocked: another process held the schema lock too long.
        """

    def close(self) -> None:
        """Release the store's resources, once the work submitted is done (new work is
        refused); no unit of work may be open."""
