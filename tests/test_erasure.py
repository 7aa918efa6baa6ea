"""Erasure by crypto-shredding (`opcatflow erase`): the values of an erased instance read as
erased, its keys are a tombstone no path brings back, writes that would seal anything for it
are refused (in other processes too), its messages are emptied, and its audit chain still
verifies, with the erasure as its last record."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from notify_helpers import notice_engine, rows
from privacy_helpers import complaint, privacy_engine

from opcatflow.engine import Engine, FrozenClock, InstanceErased, TransitionRefused
from opcatflow.engine.audit import ERASED
from opcatflow.engine.crypto.cipher import ERASED as ERASED_VALUE
from opcatflow.engine.erasure import erase, is_erased
from opcatflow.engine.rows import OutboxStatus
from opcatflow.engine.sql import tables as t

BASIS = "Data protection act, art. 17"


def erase_it(engine: Engine, instance_id: str, role: str = "admin") -> None:
    erase(engine, instance_id, actor="op", role=role, reason="request 12", legal_basis=BASIS)


def test_an_erased_instance_reads_as_erased_and_its_chain_verifies(
    db_url: str, clock: FrozenClock
) -> None:
    with privacy_engine(db_url, clock) as engine:
        kept = complaint(engine, "Bruno Lima")
        gone = complaint(engine)
        engine.fire(gone, "note", actor="clerk.1", role="clerk", data={"place": "cell 4"},
                    reason="Ana asked")  # fmt: skip
        erase_it(engine, gone)
        instance = engine.get(gone)
        history = engine.history(gone)
        assert engine.verify_audit().ok
        assert is_erased(engine, gone)
        assert not is_erased(engine, kept)
        # the other instance is untouched
        assert engine.get(kept).data["complainant"] == "Bruno Lima"
        # a non-personal write still goes through; a personal one, or a reason, is refused
        engine.fire(gone, "note", actor="clerk.1", role="clerk", data={"place": "cell 5"})
        with pytest.raises(InstanceErased):
            engine.fire(gone, "note", actor="clerk.1", role="clerk", data={"story": "again"})
        with pytest.raises(InstanceErased):
            engine.fire(gone, "close", actor="h", role="head", reason="Ana's case is closed")
        with pytest.raises(InstanceErased):  # erased once, never twice
            erase_it(engine, gone)
        assert engine.verify_audit().ok
    assert instance.data["complainant"] == instance.data["story"] == "[erased]"
    assert instance.data["complainant"] is ERASED_VALUE
    assert instance.data["place"] == "cell 4"
    assert instance.state == "open"
    last = history[-1]
    assert (last.outcome, last.trigger, last.actor, last.role) == (ERASED, "erase", "op", "admin")
    assert last.reason == "request 12"
    assert last.changed == {
        "erased_fields": [None, ["complainant", "story"]],
        "legal_basis": [None, BASIS],
    }
    # every sealed reason before it reads as erased; the open deadline was cancelled first
    assert [r.reason for r in history if r.outcome != ERASED] == ["[erased]"] * (len(history) - 1)
    assert "cancelled" in [r.outcome for r in history]


def test_the_key_is_a_tombstone_and_no_ciphertext_is_left_in_the_row(
    db_url: str, clock: FrozenClock
) -> None:
    with privacy_engine(db_url, clock) as engine:
        gone = complaint(engine)
        with engine.store.read() as uow:
            wrapped = uow.data_keys.get(gone).wrapped
        erase_it(engine, gone)
    if "://" not in db_url:  # closed: SQLite checkpointed; the freed bytes were zeroed
        assert wrapped not in Path(db_url).read_bytes()
    db = sa.create_engine(db_url if "://" in db_url else f"sqlite:///{db_url}")
    with db.connect() as conn:
        key = conn.execute(sa.select(t.data_keys).where(t.data_keys.c.owner == gone)).one()
        data = conn.execute(sa.select(t.instances.c.data).where(t.instances.c.id == gone)).scalar()
        subjects = conn.execute(sa.select(t.subjects).where(t.subjects.c.instance_id == gone))
        assert subjects.first() is None
    db.dispose()
    assert bytes(key.wrapped) == b""
    assert key.erased_at is not None
    assert "$sealed" not in str(data)
    assert "$erased" in str(data)


def test_another_process_with_the_keys_cached_stops_sealing_for_an_erased_instance(
    db_url: str, clock: FrozenClock
) -> None:
    with privacy_engine(db_url, clock) as serve, privacy_engine(db_url, clock) as worker:
        gone = complaint(serve)
        worker.fire(gone, "note", actor="w", role="clerk", data={"story": "more"}, reason="why")
        assert worker.get(gone).data["story"] == "more"  # the worker holds the keys cached
        erase_it(serve, gone)
        assert worker.get(gone).data["story"] == "[erased]"
        assert worker.history(gone)[2].reason == "[erased]"
        with pytest.raises(InstanceErased):
            worker.fire(gone, "note", actor="w", role="clerk", data={"story": "new"})
        with pytest.raises(InstanceErased):
            worker.fire(gone, "note", actor="w", role="clerk", data={"place": "x"}, reason="r")
        assert worker.verify_audit().ok


def test_erasure_needs_a_role_a_reason_and_a_legal_basis(db_url: str, clock: FrozenClock) -> None:
    with privacy_engine(db_url, clock) as engine:
        gone = complaint(engine)
        with pytest.raises(TransitionRefused) as refused:
            erase_it(engine, gone, role="clerk")
        assert refused.value.kind == "role"
        with pytest.raises(TransitionRefused) as empty:
            erase(engine, gone, actor="op", role="admin", reason=" ", legal_basis=BASIS)
        assert empty.value.kind == "data"
        with pytest.raises(TransitionRefused):
            erase(engine, gone, actor="op", role="admin", reason="r", legal_basis="")
        assert not is_erased(engine, gone)
        erase_it(engine, gone, role="head")  # the workflow's `erasable_by:`
        assert is_erased(engine, gone)


def test_the_messages_of_an_erased_instance_are_emptied_and_never_sent(
    db_url: str, clock: FrozenClock
) -> None:
    with notice_engine(db_url, clock) as engine:
        gone = engine.start("notice", actor="a", role="clerk", data={"person": "Ana"}).id
        other = engine.start("notice", actor="a", role="clerk", data={"person": "Bea"}).id
        assert {m.status for m in rows(engine)} == {OutboxStatus.PENDING}
        erase_it(engine, gone)
        found = rows(engine)
        mine = [m for m in found if m.instance_id == gone]
        with engine.store.read() as uow:
            claimable = uow.outbox.listing([OutboxStatus.PENDING])
        with pytest.raises(InstanceErased), engine.store.write() as uow:
            uow.outbox.retry(mine[0].id, clock.now())
    assert mine
    assert all(m.status == OutboxStatus.DEAD for m in mine)
    assert all(m.last_error == "instance erased" and m.recipient == "[erased]" for m in mine)
    assert all(m.payload == {"$erased": True} for m in mine)
    assert {m.instance_id for m in claimable} == {other}
