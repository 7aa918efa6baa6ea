"""The store contract, the anchored audit trail: every store keeps a record's state hash and
gives each instance row's state hash as stored (docs/audit.md), on all three stores."""

from __future__ import annotations

from storekit import WORKFLOW, moved, setup, started

from opcatflow.engine.audit import STATE_FORMAT, make_record, state_hash
from opcatflow.engine.ports import Store


def test_state_hashes_follow_the_rows_and_records_keep_theirs(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        first = started(uow, data={"n": 1, "text": "é"})
        second = started(uow)
    with store.read() as uow:
        hashes = uow.instances.state_hashes()
    expected = state_hash(WORKFLOW[0], WORKFLOW[1], "open", first.version, {"n": 1, "text": "é"})
    assert hashes[first.id] == expected
    assert set(hashes) == {first.id, second.id}

    row = state_hash(WORKFLOW[0], WORKFLOW[1], "closed", first.version + 1, {"n": 2})
    record = make_record(
        instance_id=first.id, seq=2, at=first.created_at, actor="a", role="clerk",
        workflow_id=WORKFLOW[0], workflow_version=WORKFLOW[1], trigger="go",
        from_state="open", to_state="closed", outcome="applied", reason=None, changes="{}",
        prev_hash=first.audit_head, format=STATE_FORMAT, state_hash=row,
    )  # fmt: skip
    with store.write() as uow:
        after = moved(first, state="closed", data={"n": 2}, audit_seq=2, audit_head=record.hash)
        assert uow.instances.update(after, first.version)
        uow.audit.append(record)
    with store.read() as uow:
        assert uow.instances.state_hashes()[first.id] == row
        last = list(uow.audit.records(first.id))[-1]
        assert (last.format, last.state_hash, last.hash) == (STATE_FORMAT, row, record.hash)
        assert uow.audit.after(0)[-1].state_hash == row
