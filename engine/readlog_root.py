"""The read log under the checkpoints: a root over its positions, as over the audit trail's.

The read log is append-only (triggers refuse UPDATE and DELETE), but its owner can lift the
triggers. So each entry gets a position at commit (1, 2, 3... in commit order, its own
counter) and a checkpoint (version 2) also signs the read log's size and root::

    read_root(0) = "0" * 64
    read_root(n) = SHA-256(read_root(n-1) ":" n ":" hash(entry at position n))

where an entry's hash is SHA-256 of the canonical JSON of the array
``[at, actor, role, channel, what, instance_id, fields, reason]`` (``at`` in UTC with six
fractional digits, ``fields`` a list of text, ``reason`` as stored: sealed, or null). Then
``audit verify --checkpoint`` catches a read-log entry deleted (a gap, or a root that
differs), altered (the root), or a read log cut short (ends before the checkpoint's size).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC

from opcatflow.engine.audit import GENESIS, ChainBreak, VerifyReport
from opcatflow.engine.checkpoint import Checkpoint, canonical, next_root, running_root, stream
from opcatflow.engine.rows import ReadEntry

READ_LOG = "read log"
Pages = Callable[[int], Sequence[ReadEntry]]


def read_hash(entry: ReadEntry) -> str:
    """The hash of one read-log entry as stored (see the module's notes)."""
    at = entry.at.astimezone(UTC).isoformat(timespec="microseconds")
    content = [
        at,
        entry.actor,
        entry.role,
        entry.channel,
        entry.what,
        entry.instance_id,
        list(entry.fields),
        entry.reason,
    ]
    return hashlib.sha256(canonical(content)).hexdigest()


def read_root_at(pages: Pages, start: tuple[int, str] = (0, GENESIS)) -> tuple[int, str]:
    """The read log's size and root, from ``start`` (an earlier checkpoint's read-log size
    and root) on; from position 1 when the log no longer reaches ``start``."""
    return running_root(pages, read_hash, start)


def check_read_log(
    pages: Pages,
    checkpoints: Sequence[Checkpoint],
    report: VerifyReport,
    *,
    short_ok: bool = False,
) -> None:
    """Positions run 1, 2, 3... without a gap; at each checkpoint's read-log size the root
    equals the checkpoint's; a read log that ends before it lost entries (with
    ``short_ok``, a restored older copy: listed in ``report.read_log_unreached``, not a
    break)."""
    wanted = sorted((c for c in checkpoints if c.reads is not None), key=_reads_size)
    expected, root, index, gap = 1, GENESIS, 0, False
    for entry in stream(pages):
        position = entry.position or 0
        if position != expected and not gap:
            report.breaks.append(
                _break(expected, f"missing (next found: {position}): an entry was removed")
            )
            gap = True
        root = next_root(root, position, read_hash(entry))
        while index < len(wanted) and _reads_size(wanted[index]) <= position:
            checkpoint = wanted[index]
            if _reads_size(checkpoint) == position and not _same(checkpoint, root):
                report.breaks.append(_differs(checkpoint))
            index += 1
        expected = position + 1
    report.read_log_positions = expected - 1 if not gap else 0
    for checkpoint in wanted[index:]:
        size = _reads_size(checkpoint)
        if size == 0:
            if not _same(checkpoint, GENESIS):
                report.breaks.append(_differs(checkpoint))
        elif short_ok and not gap:
            report.read_log_unreached.append(size)
        else:
            report.breaks.append(
                _break(
                    expected,
                    f"the read log ends at position {expected - 1}, before the checkpoint's "
                    f"read-log size {size} ({checkpoint.time.isoformat()}): entries were "
                    "removed or an older copy of the database was restored",
                )
            )


def _reads_size(checkpoint: Checkpoint) -> int:
    return checkpoint.reads[0] if checkpoint.reads is not None else 0


def _same(checkpoint: Checkpoint, root: str) -> bool:
    return checkpoint.reads is not None and checkpoint.reads[1] == root


def _differs(checkpoint: Checkpoint) -> ChainBreak:
    return _break(
        _reads_size(checkpoint),
        f"the entries up to it do not hash to the read-log root of the checkpoint of "
        f"{checkpoint.time.isoformat()}: an entry at or before it was changed, removed, "
        "inserted or reordered",
    )


def _break(position: int, problem: str) -> ChainBreak:
    # the read log's position goes in ``seq``: ``position`` orders the audit trail's breaks
    return ChainBreak(None, "", position, problem, None, READ_LOG)
