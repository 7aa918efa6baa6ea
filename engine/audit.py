"""The audit trail: records, their canonical encoding, the hash chain, and its verification.

Each instance has its own chain (``seq`` 1, 2, 3... each record holding the previous
record's hash), and the instance row holds the head of its chain, so a removed tail shows
too. Per-instance chains let writers on different instances commit in parallel; a single
global chain would serialise every transition of the whole NPM on one row lock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, NotRequired

from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from opcatflow.engine.jsontypes import Timestamp
from opcatflow.engine.records import Records

GENESIS = "0" * 64

APPLIED = "applied"
REFUSED = "refused"
STARTED = "started"
OPENED = "opened"  # a child instance was opened
REKEYED = "rekeyed"  # the instance's data key was re-wrapped under a new key-encryption key
SEALED = "sealed"  # `db encrypt` sealed the instance's values and rewrote its older records
ERASED = "erased"  # the instance's keys were destroyed (crypto-shredding): its values are gone
HELD = "held"  # a legal hold suspends the instance's erasure by retention
RELEASED = "released"  # its legal hold was lifted

# Record formats. 1: older releases (reason in clear, keyed hashes under the database-wide
# key). 2: reason sealed with the instance's data key, keyed hashes under its own audit key.
# 3: a format-1 record `db encrypt` converted (reason sealed, hashes under the database-wide
# key). The hash of formats 2 and 3 covers the format too; format 1 hashes as it always did,
# so chains written by older releases keep verifying.
# 4: a format-2 record that also carries ``state_hash``, the hash of its instance's row
# as it stands after the record's change (:func:`state_hash`): ``audit verify`` compares
# every instance's row with its last record, so a row edited alone shows.
LEGACY_FORMAT = 1
SEALED_FORMAT = 2
CONVERTED_FORMAT = 3
STATE_FORMAT = 4
CURRENT_FORMAT = STATE_FORMAT


class AuditRecordJson(TypedDict):
    """An audit record as JSON (:meth:`AuditRecord.as_json`)."""

    id: int | None
    instance_id: str
    seq: int
    at: Timestamp
    actor: str
    role: str
    workflow_id: str
    workflow_version: int
    trigger: str
    from_state: str | None
    to_state: str | None
    outcome: str
    reason: str | None
    changes: dict[str, Any]
    prev_hash: str
    hash: str
    format: int


class AuditExportJson(AuditRecordJson):
    """A record as ``audit export`` writes it: with its position, its state hash, and
    ``changes`` as the exact text its hash covers (docs/audit.md)."""

    position: int | None
    state_hash: str | None
    changes_text: str


class ChainBreakJson(TypedDict):
    """A :class:`ChainBreak` as JSON."""

    id: int | None
    instance_id: str
    seq: int
    problem: str
    position: int | None
    trail: NotRequired[str]  # "read log" for a break of the read log (its position in seq)


class VerifyJson(TypedDict):
    """A :class:`VerifyReport` as JSON (:meth:`VerifyReport.as_json`)."""

    ok: bool
    status: str
    anchored_to: list[int]
    records: int
    instances: int
    first_break: ChainBreakJson | None
    breaks: list[ChainBreakJson]
    warnings: list[ChainBreakJson]


class AuditRecord(NamedTuple):
    """One audited event. ``id`` is the global sequence, given by the store; ``position`` is
    the record's place in the one total order of all records, given by the store when the
    record's unit of work commits (gap-free, in commit order); neither is hashed.

    A named tuple: immutable, and several times cheaper to build than a frozen dataclass,
    which matters because one is built on every transition.
    """

    instance_id: str
    seq: int
    at: datetime
    actor: str
    role: str
    workflow_id: str
    workflow_version: int
    trigger: str
    from_state: str | None
    to_state: str | None
    outcome: str
    reason: str | None
    changes: str
    prev_hash: str
    hash: str
    id: int | None = None
    position: int | None = None
    format: int = LEGACY_FORMAT
    state_hash: str | None = None  # format 4 on

    def content(self) -> list[Any]:
        """What the hash covers, in canonical order."""
        return _hashable(
            (
                self.instance_id,
                self.seq,
                self.at,
                self.actor,
                self.role,
                self.workflow_id,
                self.workflow_version,
                self.trigger,
                self.from_state,
                self.to_state,
                self.outcome,
                self.reason,
                self.changes,
                self.prev_hash,
            ),
            self.format,
            self.state_hash,
        )

    @property
    def changed(self) -> dict[str, Any]:
        """``{field: [old, new]}``; personal values appear only as keyed hashes."""
        result: dict[str, Any] = json.loads(self.changes)
        return result

    def as_json(self) -> AuditRecordJson:
        return {
            "id": self.id,
            "instance_id": self.instance_id,
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "role": self.role,
            "workflow_id": self.workflow_id,
            "workflow_version": self.workflow_version,
            "trigger": self.trigger,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "outcome": self.outcome,
            "reason": self.reason,
            "changes": self.changed,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "format": self.format,
        }

    def export_json(self) -> AuditExportJson:
        return {
            **self.as_json(),
            "position": self.position,
            "state_hash": self.state_hash,
            "changes_text": self.changes,
        }


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(value: Any) -> str:
    return _ENCODER.encode(value)


def record_hash(content: Sequence[Any]) -> str:
    """SHA-256 over the canonical JSON of a record's content (every field but the hash)."""
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def make_record(
    *,
    instance_id: str,
    seq: int,
    at: datetime,
    actor: str,
    role: str,
    workflow_id: str,
    workflow_version: int,
    trigger: str,
    from_state: str | None,
    to_state: str | None,
    outcome: str,
    reason: str | None,
    changes: str,
    prev_hash: str,
    format: int = LEGACY_FORMAT,
    state_hash: str | None = None,
) -> AuditRecord:
    """A new record, hashed (``reason`` as it is stored: sealed from format 2 on;
    ``state_hash`` required from format 4 on)."""
    if (format >= STATE_FORMAT) != (state_hash is not None):
        raise ValueError(f"a format-{format} record takes a state hash from format 4 on only")
    content = (
        instance_id, seq, at, actor, role, workflow_id, workflow_version, trigger,
        from_state, to_state, outcome, reason, changes, prev_hash,
    )  # fmt: skip
    digest = record_hash(_hashable(content, format, state_hash))
    return AuditRecord(*content, digest, None, None, format, state_hash)


def _hashable(content: Sequence[Any], format: int, state_hash: str | None) -> list[Any]:
    values = [
        v.isoformat(timespec="microseconds") if isinstance(v, datetime) else v for v in content
    ]
    if format >= STATE_FORMAT:
        values.append(state_hash)
    if format != LEGACY_FORMAT:
        values.append(format)
    return values


def state_hash(
    workflow_id: str, workflow_version: int, state: str, version: int, data: Mapping[str, Any]
) -> str:
    """SHA-256 over the canonical JSON of an instance row as stored: its definition, state,
    version and data (sealed values as their ciphertext, so checking it needs no key)."""
    return record_hash([workflow_id, workflow_version, state, version, dict(data)])


class Redactor:
    """Replaces personal values by a keyed hash: equal values stay comparable, none readable."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, value: Any) -> str:
        mac = hmac.new(self._key, _canonical(value).encode(), hashlib.sha256)
        return "hmac-sha256:" + mac.hexdigest()[:32]

    def changes(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        personal: frozenset[str],
        records: Mapping[str, Records] | None = None,
    ) -> str:
        """The canonical ``{field: [old, new]}`` of what differs, personal values hashed.

        A records field gives ``{field: {key: {sub-field: [old, new]}}}`` instead: which
        entries changed and how, its personal sub-fields hashed."""
        diff: dict[str, Any] = {}
        records = records or {}
        for name in old.keys() | new.keys():
            before, after = old.get(name), new.get(name)
            if before != after:
                if name in records:
                    diff[name] = records[name].diff(before, after, self.digest)
                    continue
                if name in personal:
                    before = None if before is None else self.digest(before)
                    after = None if after is None else self.digest(after)
                diff[name] = [before, after]
        return _canonical(diff) if diff else "{}"


@dataclass
class ChainBreak:
    """A problem at one record of a chain, an instance row, or a position of the global
    order: a break, or (in ``VerifyReport.warnings``) a warning."""

    id: int | None
    instance_id: str
    seq: int
    problem: str
    position: int | None = None
    trail: str = "audit"  # or READ_LOG: then ``seq`` is the read log's position

    def __str__(self) -> str:
        if self.trail != "audit":
            return f"{self.trail} position {self.seq}: {self.problem}"
        if not self.instance_id:
            return f"audit position {self.position}: {self.problem}"
        at = f" (position {self.position})" if self.position is not None else ""
        if self.id is None:
            return f"instance {self.instance_id} (seq {self.seq}): {self.problem}{at}"
        return (
            f"audit record {self.id} (instance {self.instance_id}, seq {self.seq}): "
            f"{self.problem}{at}"
        )

    def as_json(self) -> ChainBreakJson:
        found: ChainBreakJson = {
            "id": self.id,
            "instance_id": self.instance_id,
            "seq": self.seq,
            "problem": self.problem,
            "position": self.position,
        }
        if self.trail != "audit":
            found["trail"] = self.trail
        return found


INTACT = "intact"  # every check passed against a checkpoint
UNANCHORED = "unanchored"  # every check passed, but nothing outside the database vouched
BROKEN = "broken"


@dataclass
class VerifyReport:
    records: int = 0
    instances: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    warnings: list[ChainBreak] = field(default_factory=list)  # older data; not a break
    anchored_to: list[int] = field(default_factory=list)  # the checkpoints' sizes
    positions: int = 0  # the last position of the gap-free run from 1 (the trail's size)
    unreached: list[int] = field(default_factory=list)  # checkpoints past the end (restore)
    read_log_positions: int = 0  # the read log's size (its gap-free run from 1)
    read_log_unreached: list[int] = field(default_factory=list)  # read-log sizes past its end

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def status(self) -> str:
        if self.breaks:
            return BROKEN
        return INTACT if self.anchored_to else UNANCHORED

    @property
    def first_break(self) -> ChainBreak | None:
        """The break at the lowest position (else the lowest global sequence)."""

        def order(b: ChainBreak) -> tuple[int, int, int, int]:
            return (
                b.position is None,
                b.position or 0,
                b.id is None,
                b.id or 0,
            )

        return min(self.breaks, key=order, default=None)

    def as_json(self) -> VerifyJson:
        first = self.first_break
        return {
            "ok": self.ok,
            "status": self.status,
            "anchored_to": list(self.anchored_to),
            "records": self.records,
            "instances": self.instances,
            "first_break": first.as_json() if first else None,
            "breaks": [b.as_json() for b in self.breaks],
            "warnings": [w.as_json() for w in self.warnings],
        }


def verify_chain(
    records: Iterable[AuditRecord],
    heads: Mapping[str, tuple[int, str]],
    *,
    times_ordered_from: int = 0,
    states: Mapping[str, str] | None = None,
) -> VerifyReport:
    """Recompute every hash and link, and check that times never go back along a chain.

    Args:
        records: every record, each instance's in ``seq`` order (instances may interleave:
            position order does).
        heads: per instance, the ``(seq, hash)`` its row says its chain ends with.
        times_ordered_from: the global id up to which records are older data, written before
            the engine stamped records in chain order: a record stamped earlier than the one
            before it is a warning up to this id, and a break after it.
        states: per instance, the :func:`state_hash` of its row as stored: it must equal
            the state hash of the instance's last record, when that record has one.
    """
    report = VerifyReport()
    chains = ChainCheck(report, heads, times_ordered_from=times_ordered_from, states=states)
    for r in records:
        chains.add(r)
    chains.finish()
    return report


@dataclass(slots=True)
class _Chain:
    """Where one instance's chain stands while its records stream past."""

    expected_seq: int = 1
    prev: str = GENESIS
    prev_at: datetime | None = None
    last_seq: int = 0
    last_state_hash: str | None = None
    last_position: int | None = None
    broken: bool = False


class ChainCheck:
    """The chain checks of :func:`verify_chain`, fed one record at a time, so that one pass
    in position order (which interleaves instances) also serves the checkpoint's root. It
    keeps a few values per instance, never a record."""

    def __init__(
        self,
        report: VerifyReport,
        heads: Mapping[str, tuple[int, str]],
        *,
        times_ordered_from: int = 0,
        states: Mapping[str, str] | None = None,
    ) -> None:
        self.report = report
        self.heads = heads
        self.times_ordered_from = times_ordered_from
        self.states = states
        self.chains: dict[str, _Chain] = {}

    def add(self, r: AuditRecord) -> None:
        report = self.report
        report.records += 1
        chain = self.chains.get(r.instance_id)
        if chain is None:
            chain = self.chains[r.instance_id] = _Chain()
        if chain.broken:
            return
        problem = None
        if r.seq != chain.expected_seq:
            problem = f"expected seq {chain.expected_seq}, found {r.seq} (a record is missing)"
        elif r.prev_hash != chain.prev:
            problem = "previous-hash link does not match the record before it"
        elif r.hash != record_hash(r.content()):
            problem = "content does not match its hash (the record was altered)"
        if problem is not None:
            report.breaks.append(ChainBreak(r.id, r.instance_id, r.seq, problem, r.position))
            chain.broken = True
            return
        if chain.prev_at is not None and r.at < chain.prev_at:
            regression = ChainBreak(
                r.id,
                r.instance_id,
                r.seq,
                f"recorded at {r.at.isoformat()}, earlier than the record before it "
                f"({chain.prev_at.isoformat()})",
                r.position,
            )
            older = r.id is not None and r.id <= self.times_ordered_from
            (report.warnings if older else report.breaks).append(regression)
        chain.expected_seq, chain.prev, chain.prev_at = r.seq + 1, r.hash, r.at
        chain.last_seq, chain.last_state_hash, chain.last_position = r.seq, r.state_hash, r.position

    def finish(self) -> None:
        """Compare each chain's end with its instance row; an instance row whose chain never
        appeared is a break too."""
        for instance_id, chain in self.chains.items():
            self._close(instance_id, chain)
        for instance_id, (seq, _) in self.heads.items():
            if instance_id not in self.chains and seq > 0:
                self.report.breaks.append(
                    ChainBreak(None, instance_id, 1, "instance has no audit records")
                )
        self.report.instances = len(self.chains)

    def _close(self, instance_id: str, chain: _Chain) -> None:
        head = self.heads.get(instance_id)
        report = self.report
        if head is None:
            report.breaks.append(
                ChainBreak(None, instance_id, chain.expected_seq - 1, "no such instance")
            )
        elif chain.broken:
            return
        elif head != (chain.expected_seq - 1, chain.prev):
            report.breaks.append(
                ChainBreak(
                    None,
                    instance_id,
                    chain.expected_seq,
                    "chain is shorter than the instance "
                    f"says (ends at seq {chain.expected_seq - 1}, instance head at {head[0]})",
                )
            )
        elif (
            self.states is not None
            and chain.last_state_hash is not None
            and self.states.get(instance_id) != chain.last_state_hash
        ):
            report.breaks.append(
                ChainBreak(
                    None,
                    instance_id,
                    chain.last_seq,
                    "the instance row (state, version or data) does not match its last "
                    f"audit record (seq {chain.last_seq}): the row was changed outside the "
                    "engine",
                    chain.last_position,
                )
            )
