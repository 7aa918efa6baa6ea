"""Two writers on one instance: one wins, the other conflicts or waits; never a lost update,
never a state without its audit record. Here: several engines, threads or processes, on one
database (threads sharing one engine run on every store in tests/test_store_contract_engine.py)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLE_DIR, changes, edit_many, make_registry
from sqlalchemy import event

from opcatflow.engine import Engine

WRITERS = 4
EDITS = 15


@pytest.fixture
def shared(db_url: str) -> tuple[str, str]:
    with Engine.open(db_url, [EXAMPLE_DIR], make_registry()) as engine:
        instance = engine.start("example", actor="a", role="clerk", data={"title": "t"})
    return db_url, instance.id


def check_history(url: str, instance_id: str, applied: int) -> None:
    with Engine.open(url, [EXAMPLE_DIR], make_registry()) as engine:
        instance = engine.get(instance_id)
        assert instance.version == 1 + applied
        assert instance.data.get("edits", 0) == applied  # every applied edit counted: none lost
        assert len(changes(engine, instance_id)) == 1 + applied  # one record per change
        assert engine.verify_audit().ok


def test_writers_of_one_process_queue_for_a_sqlite_file_instead_of_meeting_its_lock(
    tmp_path: Path,
) -> None:
    # Without SQLite's busy handler, a writer that found the file locked would fail at once:
    # every write here succeeds only because the process queues its writers itself, across
    # the two engines on the file as within each.
    url = str(tmp_path / "queue.db")
    engines = [Engine.open(url, [EXAMPLE_DIR], make_registry()) for _ in range(2)]
    try:
        for engine in engines:
            engine.store.engine.dispose()

            @event.listens_for(engine.store.engine, "connect")
            def no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute("PRAGMA busy_timeout=0")

        ids = [
            engines[0].start("example", actor="a", role="clerk", data={"title": "t"}).id
            for _ in range(WRITERS * 2)
        ]

        def edit(i: int) -> None:
            for _ in range(EDITS):
                engines[i % 2].fire(ids[i], "edit", actor="w", role="clerk")

        with ThreadPoolExecutor(WRITERS * 2) as pool:
            list(pool.map(edit, range(WRITERS * 2)))
        assert [engines[1].get(i).version for i in ids] == [1 + EDITS] * (WRITERS * 2)
    finally:
        for engine in engines:
            engine.close()


@pytest.mark.slow
@pytest.mark.parametrize("use_versions", [False, True])
def test_processes_on_one_instance(shared: tuple[str, str], use_versions: bool) -> None:
    url, instance_id = shared
    # ProcessPoolExecutor, not Pool: a worker that dies raises BrokenProcessPool instead of
    # leaving the test waiting forever for a result that will never come.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WRITERS, mp_context=spawn) as pool:
        futures = [
            pool.submit(edit_many, url, instance_id, EDITS, use_versions) for _ in range(WRITERS)
        ]
        results = [f.result(timeout=300) for f in futures]
    applied = sum(a for a, _ in results)
    assert applied + sum(c for _, c in results) == WRITERS * EDITS
    if not use_versions:
        assert applied == WRITERS * EDITS
    check_history(url, instance_id, applied)
