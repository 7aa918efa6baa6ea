"""Signed checkpoints of the audit trail: what anchors it outside the database.

Every audit record has a place in one total order, its ``position`` (1, 2, 3... without
gaps, in commit order). The *root* of the first ``n`` positions is a running hash::

    root(0) = "0" * 64
    root(n) = SHA-256(root(n-1) ":" n ":" hash(record at position n))   (hex, lowercase)

A checkpoint says "at time T the trail had N records and root(N) was R", signed with an
Ed25519 key kept outside the database (next to the key file). Whoever keeps it (a folder on
another machine, a mailbox, a webhook) can later prove that nothing up to N was changed,
removed, reordered or rolled back: recompute root(N) from the database and compare. A running
hash streams in flat memory, and a later checkpoint extends an earlier one exactly when the
database's root at the earlier size still equals the earlier root (one pass checks both).
``audit verify`` checks the chains in that same pass (:func:`verify_trail`).

The checkpoint's body is canonical JSON (docs/audit.md): keys sorted, no spaces, UTF-8, text
and integers only, so RFC 8785 gives the same bytes; the signature covers those bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from opcatflow.engine.audit import GENESIS, AuditRecord, ChainBreak, ChainCheck, VerifyReport
from opcatflow.engine.errors import OpcatflowError

ORIGIN = "opcatflow audit trail"
CHECKPOINT_VERSION = 2  # 2: with the read log's size and root; 1 (the audit trail only) is read
VERSIONS = (1, 2)
SIGNING_KEY_SUFFIX = ".signing"
# A unit of work stamps its records when it begins and takes positions when it commits: a
# record committed after a checkpoint may be stamped a little before it. Longer than any unit
# of work; a record positioned after a checkpoint but stamped earlier than this before it was
# written into the past.
COMMIT_GRACE = timedelta(minutes=10)
_PAGE = 5000


class CheckpointError(OpcatflowError):
    """A checkpoint file that cannot be read, or whose signature does not verify."""


def next_root(root: str, position: int, record_hash: str) -> str:
    """The root after the record at ``position`` (see the module's notes)."""
    return hashlib.sha256(f"{root}:{position}:{record_hash}".encode()).hexdigest()


def canonical(value: Any) -> bytes:
    """Keys sorted, no spaces, UTF-8 unescaped: RFC 8785 for text and integers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of the trail's size and root at a time."""

    size: int
    root: str
    time: datetime
    public_key: str  # hex of the raw Ed25519 public key
    signature: str = ""  # base64
    origin: str = ORIGIN
    reads: tuple[int, str] | None = None  # the read log's size and root (version 2)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "version": 1 if self.reads is None else CHECKPOINT_VERSION,
            "origin": self.origin,
            "size": self.size,
            "root": self.root,
            "time": self.time.isoformat(timespec="microseconds"),
            "key": "ed25519:" + self.public_key,
        }
        if self.reads is not None:
            body["reads"] = {"size": self.reads[0], "root": self.reads[1]}
        return body

    def as_json(self) -> dict[str, Any]:
        return {"checkpoint": self.body(), "signature": self.signature}

    @property
    def key_id(self) -> str:
        return "ed25519:" + self.public_key[:16]


class SigningKey:
    """The Ed25519 key that signs checkpoints, in a file of its own next to the key file.

    Made on first need (mode 0600), like the key file: the worker checkpoints on its own, and
    a deployment should not lose its anchoring for want of a setup step. The public half goes
    into every checkpoint; a witness pins it (docs/audit.md).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside(cls, key_file: Path) -> SigningKey:
        return cls(key_file.with_name(key_file.name + SIGNING_KEY_SUFFIX))

    def _load(self, *, create: bool) -> Ed25519PrivateKey:
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            if not create:
                raise CheckpointError(f"no checkpoint signing key at {self.path}") from None
            return self._create()
        except (OSError, UnicodeDecodeError) as err:
            raise CheckpointError(f"cannot read the signing key {self.path}: {err}") from None
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        try:
            raw = base64.b64decode(lines[0], validate=True)
            return Ed25519PrivateKey.from_private_bytes(raw)
        except (IndexError, binascii.Error, ValueError):
            raise CheckpointError(f"{self.path} holds no Ed25519 signing key") from None

    def _create(self) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "# opcatflow: the Ed25519 key that signs audit checkpoints\n"
        text += base64.b64encode(raw).decode() + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
        return key

    def public_key(self, *, create: bool = False) -> str:
        return _public_hex(self._load(create=create).public_key())

    def sign(
        self, size: int, root: str, time: datetime, reads: tuple[int, str] | None = None
    ) -> Checkpoint:
        """Sign the audit trail's ``size`` and ``root`` at ``time`` (and the read log's size
        and root, ``reads``: a version 2 checkpoint)."""
        key = self._load(create=True)
        unsigned = Checkpoint(size, root, time, _public_hex(key.public_key()), reads=reads)
        signature = base64.b64encode(key.sign(canonical(unsigned.body()))).decode()
        return dataclasses.replace(unsigned, signature=signature)


def _public_hex(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def parse_checkpoint(text: str, where: str, trusted_key: str | None = None) -> Checkpoint:
    """A checkpoint read from ``text``, its signature verified (against ``trusted_key``,
    hex, when given: a checkpoint signed by another key is refused).

    Raises:
        CheckpointError: not a checkpoint, or its signature does not verify.
    """
    try:
        doc = json.loads(text)
        body, signature = doc["checkpoint"], doc["signature"]
        if body["version"] not in VERSIONS:
            raise CheckpointError(f"{where}: checkpoint version {body['version']} is unknown")
        key = str(body["key"])
        if not key.startswith("ed25519:"):
            raise CheckpointError(f"{where}: the checkpoint names no Ed25519 key")
        checkpoint = Checkpoint(
            size=int(body["size"]),
            root=str(body["root"]),
            time=datetime.fromisoformat(body["time"]),
            public_key=key.removeprefix("ed25519:"),
            signature=str(signature),
            origin=str(body["origin"]),
            reads=(int(body["reads"]["size"]), str(body["reads"]["root"]))
            if body["version"] >= 2
            else None,
        )
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint.public_key))
        public.verify(base64.b64decode(signature, validate=True), canonical(body))
    except CheckpointError:
        raise
    except InvalidSignature:
        raise CheckpointError(f"{where}: the checkpoint's signature does not verify") from None
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise CheckpointError(f"{where}: not an opcatflow checkpoint ({err})") from None
    if checkpoint.body() != body:
        raise CheckpointError(f"{where}: the checkpoint is not in canonical form")
    if trusted_key is not None and checkpoint.public_key != trusted_key:
        raise CheckpointError(
            f"{where}: signed by {checkpoint.key_id}, not by this deployment's key"
        )
    return checkpoint


def read_checkpoint(path: Path, trusted_key: str | None = None) -> Checkpoint:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from None
    return parse_checkpoint(text, str(path), trusted_key)


def checkpoints_in(folder: Path, trusted_key: str) -> list[Checkpoint]:
    """The checkpoints in ``folder`` signed by ``trusted_key`` (files that are not, or do not
    verify, are passed over), oldest first."""
    found = []
    for path in sorted(folder.glob("checkpoint-*.json")):
        with contextlib.suppress(CheckpointError):
            found.append(read_checkpoint(path, trusted_key))
    return sorted(found, key=lambda c: (c.time, c.size))


def latest_checkpoint(folder: Path, trusted_key: str) -> Checkpoint | None:
    """The latest checkpoint in ``folder`` signed by ``trusted_key``, ``None`` if there is
    none. The latest in time, not the largest: after a restore the trail is shorter than the
    checkpoints taken before it, and the one the restore takes is the one to go on from."""
    found = checkpoints_in(folder, trusted_key)
    return found[-1] if found else None


def checkpoint_file_name(checkpoint: Checkpoint) -> str:
    """``checkpoint-<size, 12 digits>-<UTC time>.json``: sorts by size, then time."""
    stamp = checkpoint.time.strftime("%Y%m%dT%H%M%S%fZ")
    return f"checkpoint-{checkpoint.size:012d}-{stamp}.json"


def checkpoint_text(checkpoint: Checkpoint) -> str:
    """The text of a checkpoint file (indented: the signature covers the canonical body)."""
    return json.dumps(checkpoint.as_json(), indent=2, ensure_ascii=False) + "\n"


def write_checkpoint(folder: Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` into ``folder`` (made if missing) as a file of its own, named by
    its size and time, atomically (a witness never sees half a file); returns its path.

    Raises:
        OSError: the folder cannot be written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / checkpoint_file_name(checkpoint)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".checkpoint-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(checkpoint_text(checkpoint))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


class _Positioned(Protocol):
    @property
    def position(self) -> int | None: ...


_Row = TypeVar("_Row", bound=_Positioned)


def stream(pages: Callable[[int], Sequence[_Row]], after: int = 0) -> Iterable[_Row]:
    """Every row after position ``after``, a page at a time (audit records, read-log entries):
    ``pages(p)`` returns the rows after position ``p`` in position order."""
    while True:
        page = pages(after)
        if not page:
            return
        yield from page
        last = page[-1].position
        if last is None:
            return
        after = last


def root_at(
    pages: Callable[[int], Sequence[AuditRecord]], start: tuple[int, str] = (0, GENESIS)
) -> tuple[int, str]:
    """The trail's size and root, read page by page in position order from ``start`` (an
    earlier checkpoint's size and root: only the positions after it are read). A trail that
    no longer reaches ``start`` (a restored older copy) is read from position 1 instead: a
    root carried over from positions it does not hold would sign what it cannot show."""
    return running_root(pages, _record_leaf, start)


def _record_leaf(record: AuditRecord) -> str:
    return record.hash


def running_root(
    pages: Callable[[int], Sequence[_Row]],
    leaf: Callable[[_Row], str],
    start: tuple[int, str] = (0, GENESIS),
) -> tuple[int, str]:
    """Size and running root of a positioned log (audit trail, read log) from ``start`` on,
    each row hashed by ``leaf``; from position 1 when the log no longer reaches ``start``."""
    size, root = start
    if size > 0:
        at_start = pages(size - 1)[:1]
        if not at_start or at_start[0].position != size:
            size, root = 0, GENESIS
    for row in stream(pages, size):
        if row.position != size + 1:
            break  # a gap: the root is only defined over gap-free positions
        size += 1
        root = next_root(root, size, leaf(row))
    return size, root


def verify_trail(
    pages: Callable[[int], Sequence[AuditRecord]],
    chains: ChainCheck,
    checkpoints: Sequence[Checkpoint],
    *,
    short_ok: bool = False,
) -> VerifyReport:
    """Every check of ``audit verify`` in one pass over the records in position order: each
    record goes to ``chains`` (hashes, links, times, heads, state hashes) and to the position
    walk (no gap, each checkpoint's root, nothing written into the past). With ``short_ok``
    a checkpoint beyond the trail's end goes to ``report.unreached``, not to its breaks: a
    restore of an older copy states what it lost."""
    report = chains.report
    positions = PositionCheck(checkpoints, report, short_ok=short_ok)
    for record in stream(pages):
        chains.add(record)
        positions.add(record)
    chains.finish()
    positions.finish()
    return report


class PositionCheck:
    """Walks records in position order: positions must run 1, 2, 3... without a gap, and at
    each checkpoint's size the root must equal the checkpoint's; a database that ends before
    a checkpoint's size was rolled back (or emptied). Breaks go to ``report``."""

    def __init__(
        self, checkpoints: Sequence[Checkpoint], report: VerifyReport, *, short_ok: bool = False
    ) -> None:
        self.wanted = sorted(checkpoints, key=lambda c: c.size)
        self.report = report
        self.short_ok = short_ok
        self.expected, self.root = 1, GENESIS
        self.gap_reported = False
        self.index = 0
        self.size = 0

    def add(self, record: AuditRecord) -> None:
        wanted, report = self.wanted, self.report
        position = record.position or 0
        if position != self.expected and not self.gap_reported:
            report.breaks.append(
                ChainBreak(
                    None,
                    "",
                    0,
                    f"position {self.expected} is missing (next found: {position}): "
                    "a record was removed",
                    self.expected,
                )
            )
            self.gap_reported = True
        self.root = next_root(self.root, position, record.hash)
        while self.index < len(wanted) and wanted[self.index].size == position:
            _compare(wanted[self.index], self.root, report)
            self.index += 1
        while self.index < len(wanted) and wanted[self.index].size < position:
            self.index += 1  # passed over in a gap: reported as the gap
        if self.index and position > wanted[self.index - 1].size:
            latest = wanted[self.index - 1]
            if record.at < latest.time - COMMIT_GRACE:
                report.breaks.append(
                    ChainBreak(
                        record.id,
                        record.instance_id,
                        record.seq,
                        f"positioned after the checkpoint of {latest.time.isoformat()} "
                        f"(size {latest.size}) but stamped {record.at.isoformat()}, before "
                        "it: written into the past",
                        position,
                    )
                )
        if not self.gap_reported:
            self.size = position
        self.expected = position + 1

    def finish(self) -> None:
        self.report.positions = self.size
        for checkpoint in self.wanted[self.index :]:
            if checkpoint.size == 0:
                _compare(checkpoint, GENESIS, self.report)
                continue
            if self.short_ok and not self.gap_reported:
                self.report.unreached.append(checkpoint.size)
                continue
            self.report.breaks.append(
                ChainBreak(
                    None,
                    "",
                    0,
                    f"the trail ends at position {self.expected - 1}, before the checkpoint's "
                    f"size {checkpoint.size} ({checkpoint.time.isoformat()}): records were "
                    "removed or an older copy of the database was restored",
                    self.expected,
                )
            )


def _compare(checkpoint: Checkpoint, root: str, report: VerifyReport) -> None:
    if root == checkpoint.root:
        report.anchored_to.append(checkpoint.size)
        return
    report.breaks.append(
        ChainBreak(
            None,
            "",
            0,
            f"the records up to position {checkpoint.size} do not hash to the root of the "
            f"checkpoint of {checkpoint.time.isoformat()}: a record at or before it was "
            "changed, removed, inserted or reordered",
            checkpoint.size,
        )
    )
