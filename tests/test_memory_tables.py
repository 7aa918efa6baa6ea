"""What only the memory store needs checking (the contract suite covers the rest): its undo log
against a model (whatever mix of writes, failing savepoints, commits and rollbacks, the tables
hold exactly what the committed units of work wrote), and read units of work that cannot write."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from storekit import WORKFLOW, definition

from opcatflow.engine.errors import StoreError
from opcatflow.engine.memory import MemoryStore
from opcatflow.engine.memory.tables import Tables
from opcatflow.engine.ports import DuplicateKey

KEYS = st.integers(0, 5)
TABLES = st.sampled_from(["a", "b"])
Ops = list[tuple[str, str, int, int]]  # (op, table, key, value)


class Undone(Exception):
    pass


def apply(model: dict[str, dict[int, int]], tables: Tables, ops: Ops) -> None:
    """Replay ``ops`` on the tables (inside a unit of work) and on the model."""
    for op, name, key, value in ops:
        rows = model.setdefault(name, {})
        if op == "insert":
            if key in rows:
                with pytest.raises(DuplicateKey):
                    tables.insert(name, key, value)
                continue
            tables.insert(name, key, value)
            rows[key] = value
        elif op == "put":
            tables.put(name, key, value)
            rows[key] = value
        else:
            assert tables.delete(name, key) == (rows.pop(key, None) is not None)


OPS = st.lists(
    st.tuples(st.sampled_from(["insert", "put", "delete"]), TABLES, KEYS, st.integers(0, 9)),
    max_size=6,
)


class UndoLog(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tables = Tables()
        self.committed: dict[str, dict[int, int]] = {}

    def copy(self) -> dict[str, dict[int, int]]:
        return {name: dict(rows) for name, rows in self.committed.items()}

    @rule(ops=OPS, failing=st.lists(st.tuples(st.booleans(), OPS), max_size=3), fail=st.booleans())
    def unit_of_work(self, ops: Ops, failing: list[tuple[bool, Ops]], fail: bool) -> None:
        model = self.copy()
        try:
            with self.tables.transaction():
                apply(model, self.tables, ops)
                for raises, inner in failing:  # savepoints, some of which raise
                    before = {name: dict(rows) for name, rows in model.items()}
                    try:
                        with self.tables.savepoint():
                            apply(model, self.tables, inner)
                            if raises:
                                raise Undone
                    except Undone:
                        model = before
                if fail:
                    raise Undone
        except Undone:
            return
        self.committed = model

    @rule(name=TABLES, key=KEYS)
    def a_write_outside_a_unit_of_work_is_refused(self, name: str, key: int) -> None:
        with pytest.raises(StoreError):
            self.tables.put(name, key, 0)

    @invariant()
    def tables_hold_what_was_committed(self) -> None:
        held: dict[str, Any] = {name: rows for name, rows in self.tables.rows.items() if rows}
        assert held == {name: rows for name, rows in self.committed.items() if rows}


def test_the_undo_log_keeps_exactly_what_committed_units_of_work_wrote() -> None:
    run_state_machine_as_test(
        UndoLog,
        settings=settings(
            max_examples=40,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_a_read_unit_of_work_of_the_memory_store_cannot_write() -> None:
    store = MemoryStore()
    with store.read() as uow:
        with pytest.raises(StoreError, match="cannot write"):
            uow.definitions.add(definition())
        with pytest.raises(StoreError, match="needs a write unit of work"), uow.savepoint():
            pass
    with store.read() as uow:
        assert uow.definitions.get(*WORKFLOW) is None
