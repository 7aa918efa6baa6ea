"""``FileChannel``: one JSON line per message, for air-gapped deployments."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from opcatflow.notifications.channel import DeliveryError, Outgoing


class FileChannel:
    """Appends each message to a JSON Lines file, flushed (and by default synced to disk)
    before ``send`` returns. A line may appear twice after a crash: readers drop duplicates by
    ``idempotency_key``.

    Args:
        path: the file (created if missing, with its folder).
        fsync: sync to disk on every message.
    """

    name = "file"

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()

    @staticmethod
    def record(message: Outgoing) -> dict[str, Any]:
        found: dict[str, Any] = {
            "idempotency_key": message.idempotency_key,
            "message_id": message.id,
            "event": message.event,
            "instance_id": message.instance_id,
            "recipient": message.recipient,
            "name": message.name,
            "address": message.address,
            "locale": message.locale,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "cloudevent": message.cloudevent,
            "created_at": message.created_at.isoformat(),
            "attempt": message.attempt,
        }
        if message.attachments:  # only messages that carry files (an audit checkpoint)
            found["attachments"] = [
                {"name": a.name, "type": a.content_type, "text": a.text}
                for a in message.attachments
            ]
        return found

    def send(self, message: Outgoing) -> None:
        line = json.dumps(self.record(message), ensure_ascii=False) + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line)
                    fh.flush()
                    if self.fsync:
                        os.fsync(fh.fileno())
            except OSError as err:
                raise DeliveryError(f"cannot write {self.path}: {err}") from err

    def close(self) -> None:
        return None
