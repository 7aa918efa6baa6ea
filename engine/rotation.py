"""Rotating the key-encryption key: every data key re-wrapped, no sealed value touched.

A rotation first makes a new KEK current (the key file gains a line, written and synced
before the database names it) and records it in the store as the rotation's target; from
then on every process wraps new data keys with it. It then re-wraps the data keys still
wrapped with another KEK, a batch per transaction, each with an audit record (``rekeyed``)
in its instance's chain. A kill at any point leaves every data key wrapped with one KEK or
the other, both still in the key file; running the rotation again finds the target and goes
on. When none is left, the target is cleared and the KEKs no data key uses any more can be
retired.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from opcatflow.engine.audit import REKEYED
from opcatflow.engine.crypto.keyring import STORE_OWNER
from opcatflow.engine.crypto.providers import KeyProvider
from opcatflow.engine.errors import InstanceNotFound
from opcatflow.engine.runtime import Engine

ROTATION = "kek_rotation"  # the key setting naming a rotation's target KEK
ROTATE_TRIGGER = "keys rotate"


@dataclass
class RotationReport:
    target: str
    resumed: bool
    rewrapped: int = 0
    unused: list[str] = field(default_factory=list)  # KEKs no data key here uses any more
    retired: list[str] = field(default_factory=list)


def rotate(
    engine: Engine,
    *,
    actor: str,
    new_key: bool = True,
    retire: bool = False,
    batch: int = 200,
    on_batch: Callable[[int], None] | None = None,
) -> RotationReport:
    """Re-wrap every data key with a new KEK (or, without ``new_key``, with the provider's
    current one: a key added to the environment); resumes a rotation a kill interrupted.

    Args:
        actor: who rotates (named in each ``rekeyed`` audit record).
        retire: afterwards, remove from the provider the KEKs no data key of this database
            uses (only when the provider serves no other database).
        on_batch: called with the running count after each committed batch.

    Raises:
        KeyUnavailable: a data key does not unwrap, or the provider cannot add a key.
    """
    keyring = engine.keyring
    provider = keyring.provider
    with engine.store.write() as uow:
        target = uow.data_keys.setting(ROTATION)
        resumed = target is not None
        if target is None:
            # Written to the key file (and synced) before the database names it.
            target = provider.add_key() if new_key else keyring.current_kek(uow.data_keys)
            uow.data_keys.set_setting(ROTATION, target)
    report = RotationReport(target, resumed)
    engine.log.info("kek_rotation_started", target=target, resumed=resumed)
    while True:
        with engine.store.write() as uow:
            rows = uow.data_keys.wrapped_with_other(target, limit=batch)
            if not rows:
                uow.data_keys.set_setting(ROTATION, None)
                counts = uow.data_keys.kek_counts()
                break
            for row in rows:
                if not uow.data_keys.rewrap(keyring.rewrap(row, target), row.kek_id):
                    continue  # (cannot happen: the rows are this unit of work's)
                report.rewrapped += 1
                if row.owner == STORE_OWNER:
                    continue
                try:
                    current, now = engine.lock_for_record(uow, row.owner)
                except InstanceNotFound:
                    continue  # a key kept for an instance that is gone
                seq = current.audit_seq + 1
                record = engine._writes.record(
                    uow,
                    current,
                    seq=seq,
                    prev=current.audit_head,
                    now=now,
                    actor=actor,
                    role="operator",
                    trigger=ROTATE_TRIGGER,
                    to_state=None,
                    outcome=REKEYED,
                    reason=None,
                    changes=json.dumps({"kek": [row.kek_id, target]}),
                )
                uow.audit.append(record)
                uow.instances.advance_audit_head(current.id, seq, record.hash)
        if on_batch is not None:
            on_batch(report.rewrapped)
    report.unused = _unused(provider, counts, target)
    if retire:
        for kek in report.unused:
            provider.retire(kek)
            report.retired.append(kek)
    engine.log.info(
        "kek_rotation_finished",
        target=target,
        rewrapped=report.rewrapped,
        retired=report.retired,
    )
    return report


def _unused(provider: KeyProvider, counts: dict[str, int], target: str) -> list[str]:
    return [kek for kek in provider.key_ids() if kek != target and not counts.get(kek)]
