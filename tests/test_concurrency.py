"""Two writers on one instance: one wins, the other conflicts or waits; never a lost update,
never a state without its audit record. Real threads and real processes, on both backends."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from helpers import EXAMPLE_DIR, edit_many, make_registry

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
        assert len(engine.history(instance_id)) == 1 + applied  # one record per change
        assert engine.verify_audit().ok


def test_threads_without_versions_are_serialised(shared: tuple[str, str]) -> None:
    url, instance_id = shared
    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(
            pool.map(lambda _: edit_many(url, instance_id, EDITS, False), range(WRITERS))
        )
    assert sum(a for a, _ in results) == WRITERS * EDITS
    check_history(url, instance_id, WRITERS * EDITS)


def test_threads_racing_on_versions_conflict_instead_of_overwriting(
    shared: tuple[str, str],
) -> None:
    url, instance_id = shared
    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(lambda _: edit_many(url, instance_id, EDITS, True), range(WRITERS)))
    applied = sum(a for a, _ in results)
    assert applied + sum(c for _, c in results) == WRITERS * EDITS
    assert applied >= EDITS  # someone always wins
    check_history(url, instance_id, applied)


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
