"""Checkpoints of the audit trail, taken and written to a witness (``audit checkpoint``, and
the worker every ``--checkpoint-every`` seconds).

The witness is a folder by default: ``$OPCATFLOW_WITNESS``, else ``checkpoints`` beside the
key file, outside the database's folder. Point it at storage the database's administrators
cannot rewrite (another machine, a write-once share): a checkpoint is worth what its keeper
is. The signing key is made on first need next to the key file (docs/audit.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
from opcatflow.engine.worker import PeriodicJob

WITNESS_ENV = "OPCATFLOW_WITNESS"
CHECKPOINT_EVERY = 3600.0


def default_witness() -> Path:
    named = os.environ.get(WITNESS_ENV)
    return Path(named) if named else default_key_file().with_name("checkpoints")


def signing_key() -> SigningKey:
    return SigningKey.beside(default_key_file())


@dataclass
class Anchor:
    """Takes checkpoints of ``engine``'s audit trail and writes them to ``witness``."""

    engine: Engine
    witness: Path
    key: SigningKey

    def take(self) -> tuple[Checkpoint, Path]:
        """Sign the trail's size and root now and write the checkpoint to the witness.

        Raises:
            OSError: the witness cannot be written.
            CheckpointError: the signing key cannot be read or made.
        """
        # From the witness's latest checkpoint on, when it has one of ours: a checkpoint then
        # costs the records since, not the whole trail. It launders nothing: the root carried
        # over is the signed one, so a record changed before it still fails verify.
        previous = None
        if self.witness.is_dir():
            previous = latest_checkpoint(self.witness, self.key.public_key(create=True))
        start = (previous.size, previous.root) if previous is not None else (0, GENESIS)
        size, root = self.engine.audit_root(start)
        checkpoint = self.key.sign(size, root, self.engine.clock.now())
        path = write_checkpoint(self.witness, checkpoint)
        self.engine.log.info("audit_checkpoint_written", size=size, root=root, path=str(path))
        return checkpoint, path

    def take_or_alert(self) -> None:
        """:meth:`take`, logging an error (the alert) when the witness cannot be written: the
        worker keeps running, and tries again at the next period."""
        try:
            self.take()
        except (OSError, CheckpointError) as err:
            self.engine.log.error(
                "audit_checkpoint_failed", witness=str(self.witness), error=str(err)
            )

    def job(self, seconds: float) -> PeriodicJob:
        return PeriodicJob("audit-checkpoint", self.take_or_alert, seconds)
