"""The delivery port: what a channel (adapters/channels) is given and what it may raise.

A channel is one small class with a ``name`` and a ``send`` method. The dispatcher calls
``send`` outside any database transaction, once per attempt, possibly again after a crash
(delivery is at least once): receivers drop duplicates by ``idempotency_key``, which every
channel passes on (email ``Message-ID`` and header, webhook ``webhook-id`` and CloudEvent id,
the JSON line's ``idempotency_key``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from opcatflow.engine.errors import OpcatflowError


class DeliveryError(OpcatflowError):
    """A send failed. ``permanent`` means retrying cannot help (the message goes dead)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        self.permanent = permanent
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A text file sent with an email (an audit checkpoint, notifications/checkpoints.py)."""

    name: str
    content_type: str
    text: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message, ready for a channel.

    Attributes:
        recipient: the person id, endpoint id or ``address:...`` the row names.
        address: the email address (email channel).
        subject, text, html: the rendered message (empty for webhooks).
        cloudevent: the webhook body (webhook channel).
        attachments: files sent with an email (the email and file channels).
    """

    id: int
    idempotency_key: str
    channel: str
    event: str
    recipient: str
    name: str | None
    address: str | None
    locale: str | None
    subject: str
    text: str
    html: str | None
    cloudevent: dict[str, Any] | None
    instance_id: str | None
    created_at: datetime
    attempt: int
    attachments: tuple[Attachment, ...] = ()


class Channel(Protocol):
    """A way to deliver messages.

    Implementations: :class:`~opcatflow.adapters.channels.SmtpChannel`,
    :class:`~opcatflow.adapters.channels.WebhookChannel`,
    :class:`~opcatflow.adapters.channels.LogChannel`,
    :class:`~opcatflow.adapters.channels.FileChannel`.
    """

    name: str

    def send(self, message: Outgoing) -> None:
        """Deliver one message, or raise.

        Raises:
            DeliveryError: with ``permanent=True`` when a retry cannot succeed (an address
                the server refuses, an endpoint that is not configured); otherwise the
                dispatcher retries with backoff. Any other exception counts as a transient
                failure.
        """

    def close(self) -> None:
        """Release connections (called when the dispatcher stops)."""
