"""The store contract, part 5: audit positions and shared (group-committed) units of work
(see tests/test_store_contract_units.py).

Every committed audit record has a position: 1, 2, 3... in commit order, without gaps, and a
reader paging with ``after`` never sees a position before every lower one is visible.
Work given to ``Store.submit`` commits (or fails) on its own even when it shares a commit.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from storekit import T0, record, setup, started

from opcatflow.engine.audit import AuditRecord
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import Store, UnitOfWork

WRITERS = 4
EACH = 20


class Boom(Exception):
    pass


def positioned(store: Store, after: int = 0) -> list[AuditRecord]:
    with store.read() as uow:
        return uow.audit.after(after, limit=10_000)


def test_positions_number_committed_records_in_commit_order_without_gaps(store: Store) -> None:
    setup(store)
    with store.write() as uow:
        first = started(uow)

    def rolled_back() -> None:
        with store.write() as uow:
            started(uow)
            raise Boom  # its record takes no position

    def in_failed_savepoint(uow: UnitOfWork) -> None:
        with uow.savepoint():
            started(uow)
            raise Boom

    with pytest.raises(Boom):
        rolled_back()
    with store.write() as uow:
        with pytest.raises(Boom):
            in_failed_savepoint(uow)
        second = started(uow)
        uow.audit.append(record(first.id, 2, prev=first.audit_head, at=T0 + timedelta(1)))
    found = positioned(store)
    assert [(r.position, r.instance_id, r.seq) for r in found] == [
        (1, first.id, 1),
        (2, second.id, 1),
        (3, first.id, 2),
    ]
    with store.read() as uow:
        assert [r.position for r in uow.audit.after(1, limit=1)] == [2]
        assert uow.audit.after(3) == []
        assert [r.position for r in uow.audit.records(first.id)] == [1, 3]


def test_a_reader_never_sees_a_position_before_the_ones_below_it(store: Store) -> None:
    # Writers commit concurrently, alone and through submit; a reader pages all the while
    # and must find every page starting right after the last position it saw, contiguous.
    setup(store)
    done = threading.Event()
    pages: list[list[int]] = []

    def read() -> None:
        last = 0
        while True:
            finished = done.is_set()
            page = [r.position or 0 for r in positioned(store, last)]
            if page:
                pages.append(page)
                last = page[-1]
            elif finished:
                return

    def write(n: int) -> None:
        for i in range(EACH):
            if i % 2:
                store.submit(started)
            else:
                with store.write() as uow:
                    started(uow)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(write, range(WRITERS)))
    finally:
        done.set()
        reader.join(timeout=60)
    seen = [p for page in pages for p in page]
    assert seen == list(range(1, WRITERS * EACH + 1))
    assert [r.position for r in positioned(store)] == seen


def test_submitted_work_commits_or_fails_on_its_own(store: Store) -> None:
    setup(store)

    def work(n: int) -> Instance:
        def inside(uow: UnitOfWork) -> Instance:
            new = started(uow, data={"n": n})
            if n == 3:
                raise Boom
            return new

        return store.submit(inside)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(work, n) for n in range(8)]
    with pytest.raises(Boom):
        futures[3].result()
    kept = {f.result().id for n, f in enumerate(futures) if n != 3}
    with store.read() as uow:
        assert {i.id for i in uow.instances.query(limit=100)} == kept
        assert len(uow.audit.after(0)) == 7
