"""Erasure by crypto-shredding: an instance's keys destroyed, its values gone, its chain whole.

An erasure, in one unit of work under the instance's lock:

- its open obligations are cancelled (their timers with them), each audited as always;
- an audit record ``erased`` joins its chain: who, in which role, why and on which legal
  basis, and which fields were erased. Its reason and legal basis are stored in clear (the
  key that would seal them is about to go): they must not name the person;
- every personal and confidential value (every sealed value) is replaced by an erased one,
  which reads as ``[erased]``, and the subject index entry is removed;
- its messages in the outbox lose their payload and recipient, and those not sent yet become
  ``dead`` ("instance erased"): nothing about it is sent afterwards;
- its data key and audit key are destroyed: the ``data_keys`` row stays as a tombstone, so no
  path makes keys for it again, and a write that would seal anything for it (a personal
  value, a reason, a notification) is refused (:class:`InstanceErased`), in every process
  (each unit of work reads the row before its first seal for an instance).

What stays: the state, the fields that are neither personal nor confidential, and the audit
trail, whose records are never rewritten: ``audit verify`` still passes (it needs no key), and
the keyed hashes of personal values in older records can no longer be tested against a
guess. Their sealed reasons read as ``[erased]``.

Children (instances it opened) have keys of their own and are not erased with it: they may
concern other people (a visit's recommendations). Erasure by subject finds every instance
whose subject field holds the person's id, children included.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opcatflow.engine.audit import CURRENT_FORMAT, ERASED, make_record, state_hash
from opcatflow.engine.crypto.cipher import blind_index, is_sealed
from opcatflow.engine.crypto.keyring import SUBJECT_OWNER
from opcatflow.engine.crypto.providers import default_key_file
from opcatflow.engine.crypto.store import SealedUnitOfWork
from opcatflow.engine.erasure_journal import Erased, ErasureJournal
from opcatflow.engine.errors import InstanceErased, TransitionRefused
from opcatflow.engine.inputs import check_call, check_text
from opcatflow.engine.instance import Instance
from opcatflow.engine.ledger import Ledger
from opcatflow.engine.limits import REASON
from opcatflow.engine.memory import MemoryStore
from opcatflow.engine.rows import OPEN_OBLIGATION, ObligationStatus
from opcatflow.engine.runtime import Engine

ERASE_TRIGGER = "erase"
ERASER_ROLES = frozenset({"admin"})  # besides a workflow's own `erasable_by:` roles
OUTBOX_NOTE = "instance erased"


@dataclass(frozen=True)
class Erasure:
    """One erased instance."""

    instance_id: str
    workflow: str
    at: datetime
    fields: tuple[str, ...]
    messages: int  # outbox messages emptied
    cancelled: int  # open obligations cancelled
    children: tuple[str, ...]  # instances it opened (not erased with it)

    def as_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "workflow": self.workflow,
            "erased_at": self.at.isoformat(),
            "fields": list(self.fields),
            "messages": self.messages,
            "cancelled_obligations": self.cancelled,
            "children": list(self.children),
        }


def is_erased(engine: Engine, instance_id: str) -> bool:
    """Whether the keys of ``instance_id`` were erased."""
    with engine.store.read() as uow:
        return bool(uow.data_keys.erased_among([instance_id]))


def erase(
    engine: Engine,
    instance_id: str,
    *,
    actor: str,
    role: str,
    reason: str,
    legal_basis: str,
    allowed: bool = False,
    journal: bool = True,
) -> Erasure:
    """Erase one instance (see the module's notes).

    Args:
        role: ``admin``, or a role the workflow names in ``erasable_by:``.
        reason, legal_basis: why, and under which law or decision; kept in clear in the
            audit record, so neither may name the person.
        allowed: the caller is the engine's own retention (its role needs no grant).
        journal: list it in the erasure journal beside the key file (engine/erasure_journal.py)
            before it commits; a restore re-applying a listed erasure passes False.

    Raises:
        TransitionRefused: the role may not erase (kind ``role``), or the reason or legal
            basis is empty (kind ``data``).
        InstanceErased: already erased.
        InstanceNotFound
        ErasureJournalError: the journal cannot be written (nothing is erased).
    """
    check_call(actor=actor, role=role, reason=reason)
    check_text("legal_basis", legal_basis, REASON)
    for name, text in (("reason", reason), ("legal basis", legal_basis)):
        if not text.strip():
            raise TransitionRefused(
                instance_id, ERASE_TRIGGER, "data", f"an erasure needs a {name}"
            )
    with engine.store.write() as uow:
        current, at = engine.lock_for_record(uow, instance_id)
        if uow.data_keys.erased_among([instance_id]):
            raise InstanceErased(instance_id, ERASE_TRIGGER)
        wf = engine.workflow(current.workflow_id, current.workflow_version)
        if not allowed and role not in ERASER_ROLES | set(wf.definition.erasable_by):
            roles = ", ".join(sorted(ERASER_ROLES | set(wf.definition.erasable_by)))
            raise TransitionRefused(
                instance_id,
                ERASE_TRIGGER,
                "role",
                f"role {role!r} may not erase (allowed: {roles})",
            )
        cancelled, current = _cancel_obligations(
            engine, uow, current, actor=actor, role=role, at=at
        )
        names = sorted(wf.schema.sealed | {n for n, v in current.data.items() if is_sealed(v)})
        seq = current.audit_seq + 1
        stamped = dataclasses.replace(current, updated_at=at)
        after = uow.sealed_instances.erased_data(stamped, names)
        after_hash = state_hash(
            current.workflow_id, current.workflow_version, current.state, current.version + 1, after
        )
        record = make_record(
            instance_id=current.id,
            seq=seq,
            at=at,
            actor=actor,
            role=role,
            workflow_id=current.workflow_id,
            workflow_version=current.workflow_version,
            trigger=ERASE_TRIGGER,
            from_state=current.state,
            to_state=None,
            outcome=ERASED,
            reason=reason,  # in clear: it must outlive the key
            changes=json.dumps(
                {"erased_fields": [None, names], "legal_basis": [None, legal_basis]},
                separators=(",", ":"),
            ),
            prev_hash=current.audit_head,
            format=CURRENT_FORMAT,
            state_hash=after_hash,
        )
        uow.audit.append(record)
        uow.sealed_instances.erase(stamped, names, seq=seq, head=record.hash)
        messages = uow.outbox.erase_instance(instance_id, OUTBOX_NOTE)
        uow.data_keys.erase(instance_id, at)
        children = tuple(i.id for i in uow.instances.query(parent_id=instance_id, limit=10_000))
        target = journal_of(engine) if journal else None
        if target is not None:  # last, so that only a refusal from the commit can follow
            target.append(Erased(instance_id, at, legal_basis))
    engine.keyring.forget(instance_id)
    engine.log.info(
        "instance_erased",
        instance_id=instance_id,
        workflow=current.workflow_id,
        actor=actor,
        role=role,
        fields=len(names),
        messages=messages,
    )
    return Erasure(
        instance_id, current.workflow_id, at, tuple(names), messages, cancelled, children
    )


def journal_of(engine: Engine) -> ErasureJournal | None:
    """The erasure journal beside the key file; none for an in-memory store (nothing of it
    outlives the process, so there is no backup to restore)."""
    if isinstance(engine.store.raw, MemoryStore):
        return None
    return ErasureJournal.beside(default_key_file())


def _cancel_obligations(
    engine: Engine, uow: SealedUnitOfWork, current: Instance, *, actor: str, role: str, at: datetime
) -> tuple[int, Instance]:
    # Through the ledger, so each cancellation is audited and its timers closed.
    rows = [o for o in uow.obligations.of_instance(current.id) if o.status in OPEN_OBLIGATION]
    if not rows:
        return 0, current
    wf = engine.workflow(current.workflow_id, current.workflow_version)
    book = Ledger(uow, wf, current, engine.timers.planner, actor=actor, role=role, at=at)
    for row in rows:
        book.change(
            dataclasses.replace(row, status=ObligationStatus.CANCELLED),
            "cancelled: the instance is being erased",
        )
    return len(rows), uow.instances.lock(current.id)


def subject_instances(engine: Engine, subject: str) -> list[str]:
    """The ids of the instances whose subject field holds ``subject`` (compared normalised:
    case, Unicode form and spaces aside), found by the blind index, without opening any
    value. Erased instances are no longer indexed."""
    with engine.store.read() as uow:
        keys = uow.keys_of(SUBJECT_OWNER)
        if keys is None:
            return []  # no instance ever indexed a subject
        return uow.privacy.subject_instances(blind_index(keys, subject))


def erase_subject(
    engine: Engine,
    subject: str,
    *,
    actor: str,
    role: str,
    reason: str,
    legal_basis: str,
) -> list[Erasure]:
    """Erase every instance concerning ``subject`` (see :func:`subject_instances`), each in
    its own unit of work and with its own audit record. Raises what :func:`erase` raises
    (the instances erased before a refusal stay erased: run it again to go on)."""
    return [
        erase(engine, i, actor=actor, role=role, reason=reason, legal_basis=legal_basis)
        for i in subject_instances(engine, subject)
    ]


REAPPLIED_BY = "opcatflow-restore"


def reapply_erasures(engine: Engine, journal: ErasureJournal) -> list[Erasure]:
    """Erase again every instance ``journal`` lists that this database holds unerased: a
    database restored from a backup taken before those erasures (docs/privacy.md). Each is an
    ordinary erasure with its own audit record, by ``opcatflow-restore`` as ``admin``, under
    the listed legal basis. Instances the database does not hold (started after the backup)
    have nothing to erase.

    Raises:
        ErasureJournalError: the journal cannot be read.
    """
    entries = journal.entries()
    with engine.store.read() as uow:
        listed = {e.instance_id for e in entries}
        held = {i for i in uow.instances.audit_heads() if i in listed}
        erased = uow.data_keys.erased_among(list(held))
    done = []
    for entry in entries:
        if entry.instance_id not in held or entry.instance_id in erased:
            continue
        done.append(
            erase(
                engine,
                entry.instance_id,
                actor=REAPPLIED_BY,
                role="admin",
                reason=f"erased again after a restore (first erased {entry.erased_at:%Y-%m-%d})",
                legal_basis=entry.legal_basis,
                journal=False,
            )
        )
    return done
