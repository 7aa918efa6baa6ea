"""The read log: who read which personal values, in which role, through which edge, and why.

Every edge that shows personal values appends one entry per instance read (an audit export
of the whole trail: one entry for all): the HTTP API's instance, list and history reads when
the key's roles see personal fields, the command line's ``show``, ``history`` and ``audit
export``, and ``subject export``. A reader may give a reason (the ``Read-Reason`` header, the
``--reason`` option), sealed under the store's own key. The table is append-only (database
triggers refuse UPDATE and DELETE, as for the audit trail); ``opcatflow access-log`` lists it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.inputs import check_call
from opcatflow.engine.rows import ReadEntry
from opcatflow.engine.runtime import Engine

HISTORY_FIELDS = ("reasons",)  # what a history shows in clear besides the fields: reasons
AUDIT_EXPORT_FIELDS = ("audit trail",)  # keyed hashes and sealed reasons only


def visible_personal(wf: CompiledWorkflow, hidden: frozenset[str]) -> tuple[str, ...]:
    """The personal and confidential fields of ``wf`` a reader sees (not ``hidden``)."""
    return tuple(sorted(wf.schema.sealed - hidden))


def record_reads(
    engine: Engine,
    *,
    actor: str,
    role: str,
    channel: str,
    what: str,
    reads: Iterable[tuple[str | None, Sequence[str]]],
    reason: str | None = None,
) -> int:
    """Append one entry per ``(instance id, fields shown)`` of ``reads`` (those showing no
    field are left out), in one unit of work; returns how many."""
    check_call(actor=actor, role=role[:64], reason=reason)
    now = engine.clock.now()
    entries = [
        ReadEntry(now, actor, role[:64], channel, what, instance_id, tuple(fields), reason)
        for instance_id, fields in reads
        if fields
    ]
    if entries:
        with engine.store.write() as uow:
            uow.read_log.append(entries)
    return len(entries)


def read_log(
    engine: Engine,
    *,
    instance_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[ReadEntry]:
    """Entries of the read log, oldest first (reasons opened)."""
    with engine.store.read() as uow:
        return uow.read_log.listing(
            instance_id=instance_id, actor=actor, since=since, after=after, limit=limit
        )
