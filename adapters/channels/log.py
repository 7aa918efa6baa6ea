"""``LogChannel``: each message as one structured log event."""

from __future__ import annotations

from structlog.typing import FilteringBoundLogger

from opcatflow.engine.logs import default_logger
from opcatflow.notifications.channel import Outgoing


class LogChannel:
    """Logs ``notification`` events (for people whose preferred channel is the log, and for
    deployments that ship logs to another system). The body is the redacted message."""

    name = "log"

    def __init__(self, logger: FilteringBoundLogger | None = None) -> None:
        self.log = logger or default_logger("opcatflow.notifications")

    def send(self, message: Outgoing) -> None:
        self.log.info(
            "notification",
            message_id=message.id,
            idempotency_key=message.idempotency_key,
            notification_event=message.event,
            instance_id=message.instance_id,
            recipient=message.recipient,
            locale=message.locale,
            subject=message.subject,
            text=message.text,
            cloudevent=message.cloudevent,
        )

    def close(self) -> None:
        return None
