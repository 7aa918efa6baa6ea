"""The store contract, part 2: the audit trail, stored definitions, idempotency records and
API keys (see tests/test_store_contract_units.py)."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from storekit import T0, WORKFLOW, definition, record, setup, started

from opcatflow.engine.ports import DuplicateKey, Store
from opcatflow.engine.rows import ApiKeyRow, IdempotencyRecord


def test_records_come_back_by_instance_then_seq_numbered_in_commit_order(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        first = started(uow)
        second = started(uow)
    with store.write() as uow:
        head = uow.instances.get(first.id).audit_head
        uow.audit.append(record(first.id, 2, prev=head, at=T0 + timedelta(1)))
    with store.read() as uow:
        everything = list(uow.audit.records())
        mine = list(uow.audit.records(first.id))
    assert [(r.instance_id, r.seq) for r in everything] == sorted(
        [(first.id, 1), (first.id, 2), (second.id, 1)]
    )
    assert [r.seq for r in mine] == [1, 2]
    assert mine[1].id is not None
    assert mine[0].id is not None
    assert mine[1].id > max(r.id or 0 for r in everything if r is not mine[1] and r.seq == 1)
    assert mine[1]._replace(id=None, position=None) == record(
        first.id, 2, prev=head, at=T0 + timedelta(1)
    )


def test_a_record_never_replaces_one_of_its_chain(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        current = started(uow)
    forged = record(current.id, 1)._replace(actor="mallory")
    with pytest.raises(DuplicateKey), store.write() as uow:
        uow.audit.append(forged)
    with store.read() as uow:
        assert [r.actor for r in uow.audit.records(current.id)] == ["a"]


def test_the_append_lock_gives_the_time_of_the_last_record_of_the_chain(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        current = started(uow)
        later = record(current.id, 2, prev=current.audit_head, at=T0 + timedelta(hours=3))
        uow.audit.append(later)
        assert uow.instances.advance_audit_head(current.id, 2, later.hash)
    with store.write() as uow:
        locked, last = uow.instances.lock_for_append(current.id)
    assert (locked.audit_seq, last) == (2, T0 + timedelta(hours=3))


def test_a_definition_is_stored_once_and_only_its_fingerprint_changes(store: Store) -> None:
    with store.write() as uow:
        uow.definitions.add(definition("1" * 64))
        uow.definitions.add(dataclasses.replace(definition("2" * 64), title="Other"))
    with store.read() as uow:
        assert uow.definitions.get(*WORKFLOW) == definition("1" * 64)
        assert uow.definitions.get(WORKFLOW[0], 2) is None
    with store.write() as uow:
        uow.definitions.set_fingerprint(*WORKFLOW, "3" * 64)
    with store.read() as uow:
        assert uow.definitions.get(*WORKFLOW) == definition("3" * 64)


def reply(api_key: str, key: str, *, expires: timedelta = timedelta(days=1)) -> IdempotencyRecord:
    return IdempotencyRecord(
        api_key, key, "POST", "/instances", "d" * 64, 201, '{"id": 1}', {"ETag": '"1"'},
        T0, T0 + expires,
    )  # fmt: skip


def test_an_idempotency_key_is_unique_per_api_key(store: Store) -> None:
    with store.write() as uow:
        uow.idempotency.add(reply("k1", "same"))
        uow.idempotency.add(reply("k2", "same"))
    with pytest.raises(DuplicateKey), store.write() as uow:
        uow.idempotency.add(dataclasses.replace(reply("k1", "same"), status=500))
    with store.read() as uow:
        assert uow.idempotency.get("k1", "same") == reply("k1", "same")
        assert uow.idempotency.get("k1", "other") is None


def test_copies_of_one_keyed_request_racing_store_one_record(store: Store) -> None:
    gate = threading.Barrier(4)

    def attempt(n: int) -> str:
        gate.wait(timeout=10)
        try:
            with store.write() as uow:
                if uow.idempotency.get("k1", "race") is not None:
                    return "found"
                uow.idempotency.add(dataclasses.replace(reply("k1", "race"), status=200 + n))
                return "stored"
        except DuplicateKey:
            return "raced"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    assert outcomes.count("stored") == 1
    with store.read() as uow:
        kept = uow.idempotency.get("k1", "race")
    assert kept is not None
    assert kept.status == 200 + outcomes.index("stored")


def test_purge_removes_the_expired_records_only(store: Store) -> None:
    with store.write() as uow:
        uow.idempotency.add(reply("k1", "old", expires=timedelta(hours=1)))
        uow.idempotency.add(reply("k1", "new", expires=timedelta(hours=3)))
        uow.idempotency.add(reply("k1", "gone", expires=timedelta(hours=1)))
        uow.idempotency.remove("k1", "gone")
        uow.idempotency.remove("k1", "never")
    with store.write() as uow:
        assert uow.idempotency.purge(T0 + timedelta(hours=2)) == 1
    with store.read() as uow:
        assert uow.idempotency.get("k1", "old") is None
        assert uow.idempotency.get("k1", "new") is not None


def key(key_id: str, created: timedelta = timedelta(0)) -> ApiKeyRow:
    return ApiKeyRow(key_id, "s" * 64, "m.okafor", ("intake", "head"), None, T0 + created, None)


def test_api_keys_list_oldest_first_and_a_revocation_keeps_its_first_time(store: Store) -> None:
    with store.write() as uow:
        uow.keys.add(key("b", timedelta(0)))
        uow.keys.add(key("a", timedelta(0)))
        uow.keys.add(key("c", timedelta(-1)))
    with pytest.raises(DuplicateKey), store.write() as uow:
        uow.keys.add(key("a"))
    with store.write() as uow:
        uow.keys.revoke("a", T0 + timedelta(1))
        uow.keys.revoke("nobody", T0)
    with store.write() as uow:
        uow.keys.revoke("a", T0 + timedelta(2))
    with store.read() as uow:
        assert [k.id for k in uow.keys.listing()] == ["c", "b"]
        assert [k.id for k in uow.keys.listing(include_revoked=True)] == ["c", "a", "b"]
        assert uow.keys.get("a") == dataclasses.replace(key("a"), revoked_at=T0 + timedelta(1))
        assert uow.keys.get("nobody") is None
