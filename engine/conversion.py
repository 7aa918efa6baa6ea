"""``db encrypt``: seal what a database written by an older release holds in clear.

Instance by instance, each in one transaction: its data's personal and confidential values
are sealed with a data key made for it; its audit records of the older format get their
reason sealed and become format 3 (their keyed hashes stay under the database-wide key), the
chain is re-hashed from the first of them, and a ``sealed`` record closes it, naming the
head the chain had before (so an export taken earlier still checks against it). A chain
that does not verify is left as it is and reported: it is never re-hashed over a break.
Then outbox payloads and idempotency replies in clear are sealed, and the space the clear
values took is erased from the database's files.

A kill leaves each instance converted or untouched; running it again skips what is done.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.engine.audit import (
    CONVERTED_FORMAT,
    GENESIS,
    LEGACY_FORMAT,
    SEALED,
    AuditRecord,
    make_record,
    verify_chain,
)
from opcatflow.engine.crypto.cipher import is_sealed, outbox_place, reason_place, reply_place
from opcatflow.engine.crypto.keyring import STORE_OWNER
from opcatflow.engine.crypto.store import SealedUnitOfWork
from opcatflow.engine.runtime import Engine
from opcatflow.engine.sql import maintenance
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.store import SQLAlchemyStore
from opcatflow.engine.sql.unit import SqlUnitOfWork

ENCRYPT_TRIGGER = "db encrypt"
_BATCH = 200


@dataclass
class ConversionReport:
    instances: int = 0  # converted by this run
    skipped: int = 0  # found converted already
    broken: list[str] = field(default_factory=list)  # chains left alone: they do not verify
    messages: int = 0
    replies: int = 0
    legacy_audit_key: bool = False  # the database-wide audit key is still in the database


def encrypt_database(
    engine: Engine,
    *,
    actor: str,
    on_instance: Callable[[str], None] | None = None,
) -> ConversionReport:
    """Seal every value an older release stored in clear, then erase the clear copies.

    Raises:
        TypeError: the engine's store is not a database (memory keeps nothing to convert).
        KeyUnavailable: no key-encryption key to wrap the new data keys with.
    """
    store = engine.store.raw
    if not isinstance(store, SQLAlchemyStore):
        raise TypeError("only a database (SQLite or PostgreSQL) can be converted")
    report = ConversionReport()
    after = ""
    while True:
        with store.connect() as conn:
            ids = list(
                conn.execute(
                    sa.select(t.instances.c.id)
                    .where(t.instances.c.id > after)
                    .order_by(t.instances.c.id)
                    .limit(_BATCH)
                ).scalars()
            )
        if not ids:
            break
        for instance_id in ids:
            with store.connect(write=True) as conn:
                _secure_delete(conn)
                uow = _unit(engine, store, conn)
                outcome = _convert_instance(engine, uow, conn, instance_id, actor)
                # A unit of work keeps its audit records until its commit, where they get
                # their positions: this one is the conversion's own, so it flushes them here.
                assert isinstance(uow.raw, SqlUnitOfWork)
                uow.raw.flush()
            if outcome == "converted":
                report.instances += 1
            elif outcome == "broken":
                report.broken.append(instance_id)
            else:
                report.skipped += 1
            if on_instance is not None:
                on_instance(instance_id)
        after = ids[-1]
    report.messages = _seal_outbox(engine, store)
    report.replies = _seal_replies(engine, store)
    maintenance.erase_freed_space(store)
    with store.connect() as conn:
        report.legacy_audit_key = (
            conn.execute(sa.select(t.meta.c.key).where(t.meta.c.key == "audit_key")).first()
            is not None
        )
    engine.log.info(
        "database_encrypted",
        instances=report.instances,
        skipped=report.skipped,
        broken=len(report.broken),
        messages=report.messages,
        replies=report.replies,
    )
    return report


def _unit(engine: Engine, store: SQLAlchemyStore, conn: Connection) -> SealedUnitOfWork:
    return SealedUnitOfWork(
        SqlUnitOfWork(conn, store._dialect), engine.keyring, engine._sealed_fields
    )


def _secure_delete(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":  # what an update frees is zeroed, not left readable
        conn.exec_driver_sql("PRAGMA secure_delete=ON")


def _convert_instance(
    engine: Engine, uow: SealedUnitOfWork, conn: Connection, instance_id: str, actor: str
) -> str:
    current, now = engine.lock_for_record(uow, instance_id)
    stored = uow.raw.instances.get(instance_id).data
    wf = engine.workflow(current.workflow_id, current.workflow_version)
    clear = [n for n in wf.schema.sealed if stored.get(n) is not None and not is_sealed(stored[n])]
    records = list(uow.audit.records(instance_id))
    first = next((i for i, r in enumerate(records) if r.format == LEGACY_FORMAT), None)
    if not clear and first is None:
        return "done"
    if first is not None:
        heads = {instance_id: (current.audit_seq, current.audit_head)}
        if not verify_chain(records, heads).ok:
            return "broken"
    keys = uow.ensure_keys(instance_id, now)
    if clear:
        uow.instances.update(current, current.version)  # seals every clear value
    if first is None:
        return "converted"
    prev = records[first - 1].hash if first else GENESIS
    rewritten: list[AuditRecord] = []
    for r in records[first:]:
        reason, form = r.reason, r.format
        if form == LEGACY_FORMAT:
            form = CONVERTED_FORMAT
            if reason is not None:
                reason = keys.seal_text(reason, reason_place(instance_id, r.seq))
        new = make_record(
            instance_id=r.instance_id, seq=r.seq, at=r.at, actor=r.actor, role=r.role,
            workflow_id=r.workflow_id, workflow_version=r.workflow_version,
            trigger=r.trigger, from_state=r.from_state, to_state=r.to_state,
            outcome=r.outcome, reason=reason, changes=r.changes, prev_hash=prev, format=form,
            state_hash=r.state_hash,
        )  # fmt: skip
        rewritten.append(new._replace(id=r.id))
        prev = new.hash
    maintenance.rewrite_audit(conn, rewritten)
    seq = records[-1].seq + 1
    closing = engine._writes.record(
        uow,
        current,
        seq=seq,
        prev=prev,
        now=now,
        actor=actor,
        role="operator",
        trigger=ENCRYPT_TRIGGER,
        to_state=None,
        outcome=SEALED,
        reason=None,
        changes=json.dumps(
            {"previous_head": current.audit_head, "rewritten_from_seq": records[first].seq}
        ),
    )
    uow.audit.append(closing)
    uow.instances.advance_audit_head(instance_id, seq, closing.hash)
    return "converted"


def _seal_outbox(engine: Engine, store: SQLAlchemyStore) -> int:
    sealed, after = 0, 0
    while True:
        with store.connect(write=True) as conn:
            _secure_delete(conn)
            uow = _unit(engine, store, conn)
            rows = maintenance.outbox_payloads(conn, after, _BATCH)
            if not rows:
                return sealed
            for message_id, instance_id, key, stored in rows:
                payload = json.loads(stored) if isinstance(stored, str) else stored
                if is_sealed(payload):
                    continue
                keys = uow.ensure_keys(instance_id or STORE_OWNER, engine.clock.now())
                maintenance.set_outbox_payload(
                    conn, message_id, keys.seal(payload, outbox_place(key))
                )
                sealed += 1
            after = rows[-1][0]


def _seal_replies(engine: Engine, store: SQLAlchemyStore) -> int:
    sealed = 0
    while True:
        with store.connect(write=True) as conn:
            _secure_delete(conn)
            uow = _unit(engine, store, conn)
            rows = maintenance.open_replies(conn, _BATCH)
            if not rows:
                return sealed
            keys = uow.ensure_keys(STORE_OWNER, engine.clock.now())
            for api_key_id, key, response in rows:
                place = reply_place(api_key_id, key)
                maintenance.set_reply(conn, api_key_id, key, keys.seal_text(response, place))
                sealed += 1
