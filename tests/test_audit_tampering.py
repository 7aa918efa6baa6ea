"""The 18 ways to rewrite the audit trail (issue 19), each done as someone holding the
database's owner credentials would, on both backends; a checkpoint signed before the
tampering catches every one, naming the first broken position or instance.

Small chains (three complaints, a few records each) keep the module fast.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import new_pg_schema
from helpers import EXAMPLE_DIR, make_registry
from sqlalchemy.engine import Connection

from opcatflow.engine import Engine, FrozenClock, StoreError
from opcatflow.engine.audit import (
    BROKEN,
    INTACT,
    UNANCHORED,
    AuditRecord,
    make_record,
    state_hash,
)
from opcatflow.engine.checkpoint import Checkpoint, SigningKey
from opcatflow.engine.crypto.providers import LocalKeys
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.audit import audit_row

CLERK = {"actor": "cleo", "role": "clerk"}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
A = t.audit.c
I_ = t.instances.c


@dataclass
class Trail:
    engine: Engine
    ids: list[str]  # three cases: [0] long chain, [1] middle, [2] short
    checkpoint: Checkpoint
    dialect: str
    key: SigningKey

    def chain(self, instance_id: str) -> list[AuditRecord]:
        with self.engine.store.read() as uow:
            return list(uow.audit.records(instance_id))

    def everything(self) -> list[AuditRecord]:
        with self.engine.store.read() as uow:
            return sorted(uow.audit.records(), key=lambda r: r.position or 0)

    def tamper(self, edit: Callable[[Connection], None]) -> None:
        """What an owner can do: set the audit guards aside, then edit."""
        with self.engine.store.connect(write=True) as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER USER")
            else:
                conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_append_only_update")
                conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_append_only_delete")
            edit(conn)


def build(engine: Engine, clock: FrozenClock, key: SigningKey) -> tuple[list[str], Checkpoint]:
    ids = []
    for n in range(3):
        data = {"title": f"case {n}", "name": f"Person {n}", "score": 7}
        ids.append(engine.start("example", data=data, **CLERK).id)
        clock.advance(timedelta(minutes=5))
    engine.fire(ids[0], "edit", data={"score": 8}, **CLERK)
    clock.advance(timedelta(minutes=5))
    engine.fire(ids[1], "submit", **CLERK)
    clock.advance(timedelta(minutes=5))
    engine.fire(ids[0], "submit", **CLERK)
    clock.advance(timedelta(days=2))
    size, root = engine.audit_root()
    return ids, key.sign(size, root, clock.now())


@dataclass
class Template:
    """The valid trail, built once per backend; each scenario tampers with a copy of it."""

    url: str  # SQLite: the file each scenario copies; PostgreSQL: the schema it restores
    dialect: str
    ids: list[str]
    checkpoint: Checkpoint
    key: SigningKey
    keys: LocalKeys  # the key-encryption keys the sealed values were written under
    now: datetime
    rows: dict[str, list[dict[str, Any]]]  # PostgreSQL: every table's rows, as built


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Template]:
    # Migrating a database and building a trail is most of a scenario's cost: done once per
    # backend (the scenarios then take a copy: the SQLite file, or the PostgreSQL rows).
    folder = tmp_path_factory.mktemp("template")
    schema = None
    if request.param == "sqlite":
        url = str(folder / "opcatflow.db")
    else:
        admin = request.getfixturevalue("pg_admin")
        schema, url = new_pg_schema(admin)
    clock, key, keys = FrozenClock(T0), SigningKey(folder / "signing"), LocalKeys()
    with Engine.open(url, [EXAMPLE_DIR], make_registry(), clock=clock, keys=keys) as engine:
        ids, checkpoint = build(engine, clock, key)
        assert engine.verify_audit([checkpoint]).status == INTACT
        assert engine.verify_audit().status == UNANCHORED
        with engine.store.connect() as conn:
            rows = {
                table.name: [dict(r._mapping) for r in conn.execute(sa.select(table))]
                for table in t.metadata.sorted_tables
            }
        dialect = engine.store.dialect
    yield Template(url, dialect, ids, checkpoint, key, keys, clock.now(), rows)
    if schema is not None:
        with request.getfixturevalue("pg_admin").connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


def restore(conn: Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Put every table back as built, the append-only guards set aside for it and then set
    again (a scenario before may have left them off)."""
    guarded = ("audit", "read_log")
    for name in guarded:
        conn.exec_driver_sql(f"ALTER TABLE {name} DISABLE TRIGGER USER")
    for table in reversed(t.metadata.sorted_tables):
        conn.execute(table.delete())
    for table in t.metadata.sorted_tables:
        if rows[table.name]:
            conn.execute(table.insert(), rows[table.name])
    for name in guarded:
        conn.exec_driver_sql(f"ALTER TABLE {name} ENABLE TRIGGER USER")


@pytest.fixture
def trail(template: Template, tmp_path: Path) -> Iterator[Trail]:
    url = template.url
    if template.dialect == "sqlite":
        url = str(tmp_path / "opcatflow.db")
        shutil.copyfile(template.url, url)
    clock = FrozenClock(template.now)
    registry = make_registry()
    with Engine.open(url, [EXAMPLE_DIR], registry, clock=clock, keys=template.keys) as engine:
        if template.dialect == "postgresql":
            with engine.store.connect(write=True) as conn:
                restore(conn, template.rows)
        assert engine.verify_audit([template.checkpoint]).status == INTACT
        yield Trail(engine, list(template.ids), template.checkpoint, template.dialect, template.key)


def rewritten(records: list[AuditRecord], prev: str, **changes: Any) -> list[AuditRecord]:
    """``records`` re-linked from ``prev`` and re-hashed, the first one changed by
    ``changes``: what a forger who knows the format computes."""
    out = []
    for n, old in enumerate(records):
        r = old._replace(**changes) if n == 0 else old
        new = make_record(
            instance_id=r.instance_id, seq=r.seq, at=r.at, actor=r.actor, role=r.role,
            workflow_id=r.workflow_id, workflow_version=r.workflow_version, trigger=r.trigger,
            from_state=r.from_state, to_state=r.to_state, outcome=r.outcome, reason=r.reason,
            changes=r.changes, prev_hash=prev, format=r.format, state_hash=r.state_hash,
        )  # fmt: skip
        out.append(new._replace(id=r.id, position=r.position))
        prev = new.hash
    return out


def store(conn: Connection, records: list[AuditRecord]) -> None:
    for r in records:
        conn.execute(t.audit.update().where(A.id == r.id).values(**audit_row(r, r.position or 0)))


def set_head(conn: Connection, instance_id: str, last: AuditRecord, **row: Any) -> None:
    values = {"audit_seq": last.seq, "audit_head": last.hash, **row}
    conn.execute(t.instances.update().where(I_.id == instance_id).values(**values))


def move_position_counter(conn: Connection, by: int) -> None:
    conn.execute(t.audit_position.update().values(last=t.audit_position.c.last + by))


def delete_instance(conn: Connection, instance_id: str) -> None:
    for table in (t.timers, t.obligations, t.outbox, t.audit):
        conn.execute(table.delete().where(table.c.instance_id == instance_id))
    conn.execute(t.data_keys.delete().where(t.data_keys.c.owner == instance_id))
    conn.execute(t.instances.delete().where(I_.id == instance_id))


# -- the scenarios ----------------------------------------------------------------------------


def s01_modify_a_middle_field(tr: Trail) -> None:
    middle = tr.chain(tr.ids[0])[1]
    tr.tamper(lambda c: c.execute(t.audit.update().where(A.id == middle.id).values(actor="x")))


def s02_modify_and_rehash_the_record(tr: Trail) -> None:
    chain = tr.chain(tr.ids[0])
    forged = rewritten([chain[1]], chain[0].hash, actor="mallory")
    tr.tamper(lambda c: store(c, forged))


def s03_modify_and_rehash_the_rest_and_the_head(tr: Trail) -> None:
    chain = tr.chain(tr.ids[0])
    forged = rewritten(chain[1:], chain[0].hash, actor="mallory")
    tr.tamper(lambda c: (store(c, forged), set_head(c, tr.ids[0], forged[-1])))


def s04_delete_a_middle_record(tr: Trail) -> None:
    middle = tr.chain(tr.ids[0])[1]
    tr.tamper(lambda c: c.execute(t.audit.delete().where(A.id == middle.id)))


def s05_delete_renumber_rehash_fix_head_and_version(tr: Trail) -> None:
    chain = tr.chain(tr.ids[0])
    gone = chain[1]
    later = [r._replace(seq=r.seq - 1) for r in chain[2:]]
    forged = rewritten(later, chain[0].hash)

    def edit(c: Connection) -> None:
        c.execute(t.audit.delete().where(A.id == gone.id))
        store(c, forged)
        # close the gap in the global order too, as a thorough forger would
        rows = c.execute(sa.select(A.id, A.position).where(A.position > gone.position))
        for row_id, position in sorted(rows, key=lambda r: r[1]):
            c.execute(t.audit.update().where(A.id == row_id).values(position=position - 1))
        move_position_counter(c, -1)
        set_head(c, tr.ids[0], forged[-1], version=I_.version - 1)

    tr.tamper(edit)


def s06_truncate_the_tail(tr: Trail) -> None:
    last = tr.chain(tr.ids[0])[-1]
    tr.tamper(lambda c: c.execute(t.audit.delete().where(A.id == last.id)))


def s07_truncate_the_tail_and_fix_the_head(tr: Trail) -> None:
    chain = tr.chain(tr.ids[2])  # a chain whose last record changed nothing on the row
    tail = chain[-1]

    def edit(c: Connection) -> None:
        c.execute(t.audit.delete().where(A.id == tail.id))
        set_head(c, tr.ids[2], chain[-2])

    tr.tamper(edit)


def s08_swap_two_records(tr: Trail) -> None:
    chain = tr.chain(tr.ids[0])
    one, two = chain[1], chain[2]

    def edit(c: Connection) -> None:
        c.execute(t.audit.update().where(A.id == one.id).values(seq=-1))
        c.execute(t.audit.update().where(A.id == two.id).values(seq=one.seq))
        c.execute(t.audit.update().where(A.id == one.id).values(seq=two.seq))

    tr.tamper(edit)


def _forged_tail(tr: Trail, instance_id: str, **fields: Any) -> AuditRecord:
    last = tr.chain(instance_id)[-1]
    new = make_record(
        **{
            "instance_id": instance_id,
            "seq": last.seq + 1,
            "at": last.at,
            "actor": "mallory",
            "role": "clerk",
            "workflow_id": last.workflow_id,
            "workflow_version": last.workflow_version,
            "trigger": "give_feedback",
            "from_state": last.to_state or last.from_state,
            "to_state": None,
            "outcome": "applied",
            "reason": None,
            "changes": "{}",
            "prev_hash": last.hash,
            "format": last.format,
            "state_hash": last.state_hash,
            **fields,
        }
    )
    top = max(r.position or 0 for r in tr.everything())
    return new._replace(position=top + 1)


def s09_insert_a_forged_tail_record(tr: Trail) -> None:
    forged = _forged_tail(tr, tr.ids[1])
    tr.tamper(lambda c: c.execute(t.audit.insert().values(**audit_row(forged, forged.position))))


def s10_insert_a_forged_rejection_and_fix_head_and_state(tr: Trail) -> None:
    victim = tr.ids[1]
    with tr.engine.store.connect() as conn:
        row = conn.execute(sa.select(t.instances).where(I_.id == victim)).one()
    after = state_hash(row.workflow_id, row.workflow_version, "rejected", row.version + 1, row.data)
    backdated = tr.checkpoint.time - timedelta(days=1)  # after its last record, before the
    forged = _forged_tail(  # checkpoint: the rejection "was always there"
        tr, victim, trigger="reject", to_state="rejected", at=backdated, state_hash=after
    )

    def edit(c: Connection) -> None:
        c.execute(t.audit.insert().values(**audit_row(forged, forged.position or 0)))
        move_position_counter(c, 1)
        set_head(c, victim, forged, state="rejected", version=row.version + 1)

    tr.tamper(edit)


def s11_delete_a_whole_instance(tr: Trail) -> None:
    tr.tamper(lambda c: delete_instance(c, tr.ids[1]))


def s12_delete_one_chain_only(tr: Trail) -> None:
    tr.tamper(lambda c: c.execute(t.audit.delete().where(A.instance_id == tr.ids[1])))


def s13_change_the_state_only(tr: Trail) -> None:
    tr.tamper(
        lambda c: c.execute(t.instances.update().where(I_.id == tr.ids[0]).values(state="rejected"))
    )


def s14_change_a_personal_field_only(tr: Trail) -> None:
    with tr.engine.store.connect() as conn:
        mine = conn.execute(sa.select(I_.data).where(I_.id == tr.ids[0])).scalar_one()
        theirs = conn.execute(sa.select(I_.data).where(I_.id == tr.ids[1])).scalar_one()
    assert mine["name"] != theirs["name"]  # sealed: each its own ciphertext
    changed = {**mine, "name": theirs["name"]}
    tr.tamper(
        lambda c: c.execute(t.instances.update().where(I_.id == tr.ids[0]).values(data=changed))
    )


def s15_delete_everything(tr: Trail) -> None:
    def edit(c: Connection) -> None:
        for instance_id in tr.ids:
            delete_instance(c, instance_id)
        c.execute(t.audit_position.update().values(last=0))

    tr.tamper(edit)


def s16_truncate_the_audit_table(tr: Trail) -> None:
    if tr.dialect != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    with (
        pytest.raises(StoreError, match="TRUNCATE refused"),
        tr.engine.store.connect(write=True) as conn,
    ):
        conn.exec_driver_sql("TRUNCATE audit")


def s17_truncate_cascade_with_the_triggers_off(tr: Trail) -> None:
    if tr.dialect != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    tr.tamper(
        lambda c: c.exec_driver_sql(
            "TRUNCATE audit, instances, timers, obligations, outbox, data_keys CASCADE"
        )
    )


def s18_restore_an_older_backup(tr: Trail) -> None:
    # Taken now, then the NPM works on and signs a checkpoint; then the backup comes back.
    with tr.engine.store.connect() as conn:
        backup = {
            table.name: [dict(r._mapping) for r in conn.execute(sa.select(table))]
            for table in t.metadata.sorted_tables
        }
    tr.engine.fire(tr.ids[2], "submit", **CLERK)
    size, root = tr.engine.audit_root()
    tr.checkpoint = tr.key.sign(size, root, tr.engine.clock.now())

    def edit(c: Connection) -> None:
        for table in reversed(t.metadata.sorted_tables):
            c.execute(table.delete())
        for table in t.metadata.sorted_tables:
            if backup[table.name]:
                c.execute(table.insert(), backup[table.name])

    tr.tamper(edit)


SCENARIOS = {
    f.__name__: f
    for f in (
        s01_modify_a_middle_field,
        s02_modify_and_rehash_the_record,
        s03_modify_and_rehash_the_rest_and_the_head,
        s04_delete_a_middle_record,
        s05_delete_renumber_rehash_fix_head_and_version,
        s06_truncate_the_tail,
        s07_truncate_the_tail_and_fix_the_head,
        s08_swap_two_records,
        s09_insert_a_forged_tail_record,
        s10_insert_a_forged_rejection_and_fix_head_and_state,
        s11_delete_a_whole_instance,
        s12_delete_one_chain_only,
        s13_change_the_state_only,
        s14_change_a_personal_field_only,
        s15_delete_everything,
        s16_truncate_the_audit_table,
        s17_truncate_cascade_with_the_triggers_off,
        s18_restore_an_older_backup,
    )
}
# What the chains alone (no checkpoint) still catch: the rest needs the checkpoint.
CAUGHT_UNANCHORED = {
    "s01_modify_a_middle_field",
    "s02_modify_and_rehash_the_record",
    "s04_delete_a_middle_record",
    "s06_truncate_the_tail",
    "s08_swap_two_records",
    "s09_insert_a_forged_tail_record",
    "s11_delete_a_whole_instance",  # its positions leave a gap
    "s12_delete_one_chain_only",
    "s13_change_the_state_only",  # the row no longer matches its last record
    "s14_change_a_personal_field_only",
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_checkpoint_taken_before_catches_the_tampering(trail: Trail, name: str) -> None:
    SCENARIOS[name](trail)
    report = trail.engine.verify_audit([trail.checkpoint])
    if name == "s16_truncate_the_audit_table":  # refused: nothing changed
        assert report.status == INTACT, report.breaks
        return
    assert report.status == BROKEN
    first = report.first_break
    assert first is not None
    assert first.position is not None or first.instance_id  # names where
    unanchored = trail.engine.verify_audit()
    if name in CAUGHT_UNANCHORED:
        assert unanchored.status == BROKEN
    else:  # what used to read "intact" is now at best "unanchored"
        assert unanchored.status in (BROKEN, UNANCHORED)


def test_a_later_checkpoint_extends_an_earlier_one(trail: Trail) -> None:
    trail.engine.fire(trail.ids[2], "submit", **CLERK)
    size, root = trail.engine.audit_root()
    later = trail.key.sign(size, root, trail.engine.clock.now())
    report = trail.engine.verify_audit([later, trail.checkpoint])
    assert (report.status, report.anchored_to) == (INTACT, [trail.checkpoint.size, size])
    assert size > trail.checkpoint.size
