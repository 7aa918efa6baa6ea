"""What a backup holds and what a restore lost, stated against the witness's checkpoints, and
the erasures a restore must apply again (docs/operations.md, "Backup and restore").

After a restore, in this order:

1. the restored trail is verified (one pass) against the witness's **latest** checkpoint
   and the latest one it still reaches: the trail must be sound up to its end, and a latest
   checkpoint beyond that end is what the restore lost, stated as "lost positions N+1..M";
2. every erasure listed beside the key file that the restored copy predates is applied again
   (engine/erasure_journal.py): a backup never brings a person's data back;
3. a new checkpoint is signed from position 1 into the witness, so that the next ones go on
   from the restored trail and not from the checkpoints it no longer reaches. Those stay in
   the witness: they record that the loss happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opcatflow.adapters.anchor import Anchor
from opcatflow.engine import Engine
from opcatflow.engine.audit import ChainBreak
from opcatflow.engine.checkpoint import Checkpoint, SigningKey, checkpoints_in
from opcatflow.engine.erasure import Erasure, reapply_erasures
from opcatflow.engine.erasure_journal import ErasureJournal


@dataclass
class TrailCheck:
    """A database's trail against the witness: its size, what is missing, what is broken."""

    positions: int
    latest: Checkpoint | None  # the witness's latest checkpoint, if any can be trusted
    anchored_to: list[int]
    lost: tuple[int, int] | None  # first and last position lost
    breaks: list[ChainBreak]
    why_unanchored: str | None = None
    reads_lost: tuple[int, int] | None = None  # first and last read-log position lost

    @property
    def ok(self) -> bool:
        return not self.breaks

    def summary(self) -> str:
        if self.breaks:
            return f"BROKEN: {len(self.breaks)} break(s), the first {self.breaks[0]}"
        if self.latest is None:
            return f"unanchored: {self.why_unanchored}"
        when = self.latest.time.isoformat(timespec="seconds")
        reads = ""
        if self.reads_lost is not None:
            reads = f"; lost read-log positions {self.reads_lost[0]}..{self.reads_lost[1]}"
        if self.lost is not None:
            first, last = self.lost
            return (
                f"lost positions {first}..{last}: the witness's latest checkpoint ({when}) "
                f"holds {self.latest.size} positions, this copy {self.positions}{reads}"
            )
        if reads:
            return f"nothing of the audit trail lost{reads}"
        size = self.latest.size
        return f"nothing lost: anchored to the witness's latest checkpoint ({when}, size {size})"

    def as_json(self) -> dict[str, Any]:
        return {
            "positions": self.positions,
            "latest_checkpoint": self.latest.as_json() if self.latest else None,
            "anchored_to": self.anchored_to,
            "lost": {"first": self.lost[0], "last": self.lost[1]} if self.lost else None,
            "read_log_lost": (
                {"first": self.reads_lost[0], "last": self.reads_lost[1]}
                if self.reads_lost
                else None
            ),
            "breaks": [b.as_json() for b in self.breaks],
            "summary": self.summary(),
        }


def check_against_witness(engine: Engine, witness: Path, key: SigningKey) -> TrailCheck:
    """Verify ``engine``'s trail against the witness's latest checkpoint (and the latest it
    reaches); a latest checkpoint past the trail's end is stated as lost positions."""
    positions, _ = engine.audit_root()
    if not key.path.exists():
        report = engine.verify_audit()
        why = (
            f"no signing key at {key.path}: no checkpoint was signed here yet, or the key "
            "is to be restored from the key backup"
        )
        return TrailCheck(report.positions, None, [], None, report.breaks, why)
    found = checkpoints_in(witness, key.public_key()) if witness.is_dir() else []
    if not found:
        report = engine.verify_audit()
        why = f"no checkpoint of this deployment's key in {witness}"
        return TrailCheck(report.positions, None, [], None, report.breaks, why)
    latest = found[-1]
    reached = [c for c in found if c.size <= positions]
    wanted = [latest, *reached[-1:]] if reached and reached[-1] is not latest else [latest]
    report = engine.verify_audit(wanted, short_ok=True)
    lost = (report.positions + 1, latest.size) if report.unreached else None
    reads_lost = None
    if report.read_log_unreached and latest.reads is not None:
        reads_lost = (report.read_log_positions + 1, latest.reads[0])
    return TrailCheck(
        report.positions, latest, report.anchored_to, lost, report.breaks, None, reads_lost
    )


@dataclass
class Restored:
    check: TrailCheck
    erased_again: list[Erasure] = field(default_factory=list)
    checkpoint: Path | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            **self.check.as_json(),
            "erased_again": [e.instance_id for e in self.erased_again],
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
        }


def after_restore(
    engine: Engine, witness: Path, key: SigningKey, journal: ErasureJournal
) -> Restored:
    """Steps 1 to 3 of the module's notes on a restored database. The checkpoint is signed
    only when the trail is sound and the signing key is there (a new key would disown the
    witness's checkpoints)."""
    check = check_against_witness(engine, witness, key)
    erased = reapply_erasures(engine, journal)
    path = None
    if check.ok and key.path.exists():
        _, path = Anchor(engine, witness, key).take(fresh=True)
    return Restored(check, erased, path)
