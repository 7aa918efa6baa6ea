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

from opcatflow.engine.rows import NewMessage, OutboxEntry, OutboxStatus

PENDING = OutboxStatus.PENDING
SENDING = OutboxStatus.SENDING
SENT = OutboxStatus.SENT
FAILED = OutboxStatus.FAILED
DEAD = OutboxStatus.DEAD
STATUSES = tuple(OutboxStatus)
ROUTE = "route"  # channel of a message still to be routed to people
WEBHOOK = "webhook"

__all__ = [
    "DEAD",
    "FAILED",
    "PENDING",
    "ROUTE",
    "SENDING",
    "SENT",
    "STATUSES",
    "WEBHOOK",
    "NewMessage",
    "OutboxEntry",
    "OutboxStatus",
    "idempotency_key",
]


def idempotency_key(*parts: object) -> str:
    """A stable key (64 hex characters) from the parts that make a message unique."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()
