"""Helpers shared by the notification tests: a test workflow, its templates, a directory,
and a channel that records what it is given (and fails on request)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from opcatflow.engine import Engine, FrozenClock, Registry
from opcatflow.notifications.channel import DeliveryError, Outgoing
from opcatflow.notifications.directory import Directory, parse_directory
from opcatflow.notifications.model import STATUSES, OutboxEntry, OutboxStatus
from opcatflow.notifications.outbox import OutboxWriter

HERE = Path(__file__).parent
NOTICE = HERE / "definitions" / "notify" / "notice.yaml"
TEMPLATES = HERE / "templates"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

PEOPLE = [
    {
        "id": "h.one",
        "name": "Head One",
        "email": "head1@npm.example",
        "roles": ["head"],
        "body": "NPM",
    },
    {
        "id": "h.two",
        "name": "Head Two",
        "email": "head2@npm.example",
        "locale": "fr",
        "roles": ["notice.head"],
    },
    {"id": "c.log", "name": "Clerk Log", "channel": "log", "roles": ["clerk"]},
    {"id": "a.file", "name": "Assignee File", "channel": "file", "roles": []},
    {"id": "gone", "name": "Gone", "email": "gone@npm.example", "roles": ["head"], "active": False},
]


def make_directory(
    people: list[dict[str, Any]] | None = None, webhooks: list[dict[str, Any]] | None = None
) -> Directory:
    doc = {"people": PEOPLE if people is None else people, "webhooks": webhooks or []}
    return parse_directory(yaml.safe_dump(doc), "<test directory>")


@contextmanager
def notice_engine(
    db_url: str, clock: FrozenClock, directory: Directory | None = None
) -> Iterator[Engine]:
    writer = OutboxWriter(directory or make_directory())
    with Engine.open(db_url, [NOTICE], Registry(), clock=clock, hooks=[writer]) as engine:
        yield engine


def rows(engine: Engine, *statuses: str) -> list[OutboxEntry]:
    with engine.store.read() as uow:
        return uow.outbox.listing([OutboxStatus(s) for s in statuses or STATUSES], limit=100_000)


class Recorder:
    """A channel that records messages; ``failures`` makes the next sends fail."""

    def __init__(self, name: str, failures: int = 0, permanent: bool = False) -> None:
        self.name = name
        self.sent: list[Outgoing] = []
        self.failures = failures
        self.permanent = permanent
        self.lock = threading.Lock()

    def send(self, message: Outgoing) -> None:
        with self.lock:
            if self.failures > 0:
                self.failures -= 1
                raise DeliveryError("refused for the test", permanent=self.permanent)
            self.sent.append(message)

    def close(self) -> None:
        return None
