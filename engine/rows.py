"""The shapes the store keeps besides instances and audit records, declared once.

Every store implementation (:mod:`opcatflow.engine.ports`) reads and writes these values;
the notifications and the HTTP adapter use them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, NamedTuple


class TimerStatus(StrEnum):
    """Where a deadline timer is: ``pending`` and ``paused`` are open, the rest closed."""

    PENDING = "pending"
    PAUSED = "paused"  # the deadline's clock is stopped (``pauses:``)
    FIRED = "fired"
    REFUSED = "refused"  # its escalation trigger was refused
    FAILED = "failed"  # processing kept failing past the scheduler's attempts
    CANCELLED = "cancelled"  # the state was left, or the deadline re-armed


OPEN_TIMER = (TimerStatus.PENDING, TimerStatus.PAUSED)


class ObligationStatus(StrEnum):
    """Where one occurrence of a deadline is.

    ``pending``, ``paused`` and ``extended`` wait for their due date; ``due`` is overdue and
    stays so (listed, alerting) until it is met, waived or extended, or the instance closes;
    ``met``, ``waived`` and ``cancelled`` are closed.
    """

    PENDING = "pending"
    DUE = "due"
    MET = "met"
    WAIVED = "waived"
    EXTENDED = "extended"  # a new last day was granted; waits for it like ``pending``
    CANCELLED = "cancelled"  # the scope was left before the due date, or the case closed
    PAUSED = "paused"  # the clock is stopped (``pauses:``)


# Not yet due: the due timer is armed (or stopped, for ``paused``).
WAITING = (ObligationStatus.PENDING, ObligationStatus.EXTENDED, ObligationStatus.PAUSED)
# Still owed: shown in listings, met by its ``met_by``.
OPEN_OBLIGATION = (*WAITING, ObligationStatus.DUE)


class OutboxStatus(StrEnum):
    """Where an outbox message is (the notifications describe the cycle)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"


# What an erased instance's outbox messages hold instead of their payload and recipient.
ERASED_PAYLOAD: dict[str, bool] = {"$erased": True}
ERASED_RECIPIENT = "[erased]"

# What ``outbox retry`` may make due again.
RETRYABLE_OUTBOX = (OutboxStatus.FAILED, OutboxStatus.DEAD, OutboxStatus.PENDING)


class DefinitionStatus(StrEnum):
    """Whether a stored definition version may start instances."""

    ACTIVE = "active"
    RETIRED = "retired"  # its instances continue; new starts are refused


class DefinitionOrigin(StrEnum):
    """How a definition version reached the database."""

    FILE = "file"  # a process loaded it from its files and stored it (first instance, or open)
    DEPLOY = "deploy"  # ``workflows deploy``: every process on the database loads it


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    """A workflow definition as first registered (instances pinned to it run on this copy),
    with its place in the catalogue of deployed versions."""

    workflow_id: str
    version: int
    fingerprint: str
    title: str
    source: str
    registered_at: datetime
    status: DefinitionStatus = DefinitionStatus.ACTIVE
    origin: DefinitionOrigin = DefinitionOrigin.FILE
    retired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Obligation:
    """One occurrence of a deadline of one instance: what is owed, by when, and what became
    of it. Its identity is ``(instance_id, deadline, occurrence)``; ``id`` is the store's.

    No personal value is ever kept here (anchors on personal fields are refused by
    validation; waiver and extension reasons live in the audit trail only).

    Attributes:
        scope: the states it spans, space-separated, or ``instance``.
        anchor: the value it counts from, ISO 8601 (a date, a datetime, or the instant the
            scope was entered); ``None`` for a published date.
        due_at: the instant it becomes overdue (the end of ``last_day`` for periods of days).
        last_day: the last day to meet it, in the NPM's calendar (``None`` only on rows
            carried over from timers armed before obligations existed: readers compute it).
        met_by: what met it: ``trigger:<name>``, ``field:<name>`` or ``left:<trigger>``.
        days_late: for a met obligation, whole days after ``last_day`` (0 when on time).
        note: why it closed or changed, in fixed words (``left by ...``, ``closed``,
            ``waived by <role>``, ``extended by <role>``).
    """

    id: int
    instance_id: str
    workflow_id: str
    workflow_version: int
    state: str  # the instance's state now (read with the row, never written)
    deadline: str
    occurrence: int
    scope: str
    anchor: str | None
    due_at: datetime
    last_day: date | None
    status: ObligationStatus
    paused_at: datetime | None
    met_at: datetime | None
    met_by: str | None
    days_late: int | None
    note: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.instance_id, self.deadline, self.occurrence)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance_id": self.instance_id,
            "workflow": self.workflow_id,
            "state": self.state,
            "deadline": self.deadline,
            "occurrence": self.occurrence,
            "scope": self.scope,
            "anchor": self.anchor,
            "due_at": self.due_at.isoformat(),
            "due_on": self.last_day.isoformat() if self.last_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "status": str(self.status),
            "met_at": self.met_at.isoformat() if self.met_at else None,
            "met_by": self.met_by,
            "days_late": self.days_late,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class NewObligation:
    """An obligation about to be stored (the store gives it its id)."""

    instance_id: str
    deadline: str
    occurrence: int
    scope: str
    anchor: str | None
    due_at: datetime
    last_day: date | None
    status: ObligationStatus
    met_at: datetime | None = None
    met_by: str | None = None
    days_late: int | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Timer:
    """One timer row, with the workflow of its instance.

    Attributes:
        state: the state that armed it.
        kind: ``reminder``, ``due`` or ``alert`` (an overdue alert step).
        occurrence: which round of a repeating (``every``) deadline.
        payload: what the planner noted (``due``: the deadline's own due time for a reminder;
            ``offset``: how long before it).
    """

    id: int
    instance_id: str
    workflow_id: str
    workflow_version: int
    state: str
    deadline: str
    kind: str
    occurrence: int
    due_at: datetime
    status: TimerStatus
    attempts: int
    paused_at: datetime | None
    closed_at: datetime | None
    note: str | None
    payload: dict[str, Any] | None
    created_at: datetime
    obligation_id: int | None = None  # the obligation this timer wakes the scheduler for

    @property
    def deadline_due(self) -> datetime:
        """When the deadline is due (a reminder's row fires before its deadline)."""
        due = (self.payload or {}).get("due")
        return datetime.fromisoformat(due) if due else self.due_at


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message about to be written to the outbox."""

    instance_id: str | None
    event: str
    channel: str
    recipient: str
    payload: dict[str, Any]
    key: str
    status: OutboxStatus = OutboxStatus.PENDING
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row, as read back."""

    id: int
    instance_id: str | None
    event: str
    channel: str
    recipient: str
    payload: dict[str, Any]
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    idempotency_key: str
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
    claim_token: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The row without its payload (the payload may hold personal data)."""
        return {
            "id": self.id,
            "instance_id": self.instance_id,
            "event": self.event,
            "channel": self.channel,
            "recipient": self.recipient,
            "status": str(self.status),
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """How one claimed outbox row ends this round (``sent``, ``failed`` or ``dead``)."""

    entry: OutboxEntry
    status: OutboxStatus
    next_attempt_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The reply stored for one ``Idempotency-Key`` of one API key."""

    api_key_id: str
    key: str
    method: str
    path: str
    fingerprint: str  # SHA-256 of the request
    status: int
    response: str  # the JSON body, as sent
    headers: dict[str, str]
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    """An API key as stored: the secret only as its SHA-256."""

    id: str
    secret_hash: str
    actor: str
    roles: tuple[str, ...]
    note: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """The data key and audit key of one owner (an instance id, or ``opcatflow:store`` for
    the store's own records), wrapped by the key-encryption key ``kek_id``, which is kept
    outside the database."""

    owner: str
    kek_id: str
    wrapped: bytes
    created_at: datetime
    erased_at: datetime | None = None  # a tombstone: the keys were destroyed (``wrapped`` empty)


@dataclass(frozen=True, slots=True)
class ReadEntry:
    """One read of personal values: who, in which role, through which edge (``cli``,
    ``http``, ``api``), what (``show``, ``list``, ``history``, ``audit-export``,
    ``subject-export``), of which instance (``None``: all of them), which personal fields, and
    why if the reader said (``id`` given by the store)."""

    at: datetime
    actor: str
    role: str
    channel: str
    what: str
    instance_id: str | None
    fields: tuple[str, ...]
    reason: str | None = None
    id: int | None = None
    position: int | None = None  # in the read log's own order (1, 2, 3... in commit order)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "role": self.role,
            "channel": self.channel,
            "what": self.what,
            "instance_id": self.instance_id,
            "fields": list(self.fields),
            "reason": self.reason,
        }


class Fact(NamedTuple):
    """One projected value of an instance (the report projection's row, less its ids).

    ``field`` is a field's name, ``records.sub`` for a sub-field of a records entry, or
    ``@state`` / ``@created_at``; ``entry`` is ``""`` for a single value, the item's position
    in a list, or the entry's key in records; ``value`` is the value as text (``true`` /
    ``false``, ISO dates, numbers in decimal).
    """

    field: str
    entry: str
    value: str


@dataclass(frozen=True, slots=True)
class ListHolds:
    """A list filter's condition: the list field holds ``value`` (a place id among a
    recommendation's ``places``), as ``--where places=p-17`` asks. A store compares each
    item as text, as it compares a text field."""

    value: str
