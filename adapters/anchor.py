"""Checkpoints of the audit trail, taken and written to a witness (``audit checkpoint``, and
the worker every ``--checkpoint-every`` seconds).

The witness is a folder by default: ``$OPCATFLOW_WITNESS``, else ``checkpoints`` beside the
key file, outside the database's folder. Point it at storage the database's administrators
cannot rewrite (another machine, a write-once share): a checkpoint is worth what its keeper
is. The signing key is made on first need next to the key file (docs/audit.md).

With ``send_to`` (``--send-to`` / ``--checkpoint-send-to``) each checkpoint also goes through
the outbox to a recipient of the notifications directory: a mailbox or webhook outside the
NPM's servers keeps a copy nobody there can rewrite (notifications/checkpoints.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from opcatflow.adapters.notifier import Notifications, settings_path
from opcatflow.engine import Engine
from opcatflow.engine.audit import GENESIS
from opcatflow.engine.checkpoint import (
    Checkpoint,
    CheckpointError,
    SigningKey,
    latest_checkpoint,
    write_checkpoint,
)
from opcatflow.engine.crypto.providers import default_key_file
from opcatflow.engine.errors import Problem
from opcatflow.engine.worker import PeriodicJob
from opcatflow.notifications.checkpoints import (
    UnknownRecipient,
    check_recipient,
    checkpoint_message,
)
from opcatflow.notifications.directory import ConfigError, DirectorySource
from opcatflow.notifications.people import PersonRegister
from opcatflow.notifications.settings import ENV

WITNESS_ENV = "OPCATFLOW_WITNESS"
CHECKPOINT_EVERY = 3600.0


def default_witness() -> Path:
    named = os.environ.get(WITNESS_ENV)
    return Path(named) if named else default_key_file().with_name("checkpoints")


def signing_key() -> SigningKey:
    return SigningKey.beside(default_key_file())


@dataclass(frozen=True)
class Outbound:
    """Where each checkpoint is also sent: ``recipient`` of ``directory``."""

    directory: DirectorySource
    recipient: str

    @classmethod
    def to(cls, recipient: str, engine: Engine) -> Outbound:
        """``recipient`` of the directory ``$OPCATFLOW_NOTIFICATIONS`` names, checked now: a
        person of ``engine``'s person register (as the notifications read it) or of the
        directory file, or a webhook endpoint of the file.

        Raises:
            ConfigError: no notifications settings, or invalid ones.
            UnknownRecipient: the directory names no such reachable person or endpoint.
        """
        path = settings_path()
        if path is None:
            raise ConfigError(
                [
                    Problem(
                        "<environment>",
                        1,
                        1,
                        f"sending a checkpoint needs the notifications settings: set {ENV}=FILE",
                    )
                ]
            )
        register = PersonRegister(engine.store, engine.today)
        outbound = cls(Notifications.load(path, register=register).directory, recipient)
        check_recipient(outbound.directory.current(), recipient)
        return outbound


@dataclass
class Anchor:
    """Takes checkpoints of ``engine``'s audit trail and writes them to ``witness``."""

    engine: Engine
    witness: Path
    key: SigningKey
    outbound: Outbound | None = None

    def take(self, *, fresh: bool = False) -> tuple[Checkpoint, Path]:
        """Sign the trail's size and root now, write the checkpoint to the witness, and
        queue it for the outbound recipient, if any. ``fresh``: read the trail from
        position 1, not from the witness's latest checkpoint (after a restore).

        Raises:
            OSError: the witness cannot be written.
            CheckpointError: the signing key cannot be read or made.
            UnknownRecipient: the outbound recipient left the directory (checked before
                anything is signed or written).
        """
        if self.outbound is not None:
            check_recipient(self.outbound.directory.current(), self.outbound.recipient)
        # From the witness's latest checkpoint on, when it has one of ours: a checkpoint then
        # costs the records since, not the whole trail. It launders nothing: the root carried
        # over is the signed one, so a record changed before it still fails verify.
        previous = None
        if self.witness.is_dir() and not fresh:
            previous = latest_checkpoint(self.witness, self.key.public_key(create=True))
        start = (previous.size, previous.root) if previous is not None else (0, GENESIS)
        reads_start = previous.reads if previous is not None and previous.reads else (0, GENESIS)
        size, root = self.engine.audit_root(start)
        reads = self.engine.read_log_root(reads_start)
        checkpoint = self.key.sign(size, root, self.engine.clock.now(), reads)
        path = write_checkpoint(self.witness, checkpoint)
        self.engine.log.info("audit_checkpoint_written", size=size, root=root, path=str(path))
        if self.outbound is not None:
            self._send(checkpoint)
        return checkpoint, path

    def _send(self, checkpoint: Checkpoint) -> None:
        assert self.outbound is not None
        message = checkpoint_message(
            self.outbound.directory.current(), self.outbound.recipient, checkpoint
        )
        with self.engine.store.write() as uow:
            uow.outbox.add([message], self.engine.clock.now())
        self.engine.log.info(
            "audit_checkpoint_queued",
            size=checkpoint.size,
            recipient=message.recipient,
            channel=message.channel,
        )

    def take_or_alert(self) -> None:
        """:meth:`take`, logging an error (the alert) when the witness cannot be written: the
        worker keeps running, and tries again at the next period."""
        try:
            self.take()
        except (OSError, CheckpointError, UnknownRecipient) as err:
            self.engine.log.error(
                "audit_checkpoint_failed", witness=str(self.witness), error=str(err)
            )

    def job(self, seconds: float) -> PeriodicJob:
        return PeriodicJob("audit-checkpoint", self.take_or_alert, seconds)
