"""The message model: what one outbox row holds, and the states it goes through.

A row is one message to one recipient over one channel::

    pending --claim--> sending --sent--> sent
       ^                  |  \\--error, attempts left--> failed --(due)--> sending ...
       |                  |   \\-error, none left, or permanent--> dead
       +-- outbox retry --+-- (a dispatcher died: its lease runs out, another claims it)

The ``route`` channel holds a message whose recipients could not be resolved when it was
written (no one had the role yet, unknown assignee ids): the dispatcher resolves it again and
writes one row per recipient, so a gap in the directory delays a notification, never loses it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
DEAD = "dead"
STATUSES = (PENDING, SENDING, SENT, FAILED, DEAD)
ROUTE = "route"  # channel of a message still to be routed to people
WEBHOOK = "webhook"


def idempotency_key(*parts: object) -> str:
    """A stable key (64 hex characters) from the parts that make a message unique."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message about to be written to the outbox."""

    instance_id: str | None
    event: str
    channel: str
    recipient: str
    payload: dict[str, Any]
    key: str
    status: str = PENDING
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
    status: str
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
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "last_error": self.last_error,
        }
