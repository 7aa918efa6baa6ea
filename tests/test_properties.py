"""Engine invariants under random use (hypothesis stateful testing), on both backends.

After every step: each instance is in a declared state; what a fresh engine reads back equals
what the caller holds; there is one audit record per start, applied and refused call; every
chain verifies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from helpers import EXAMPLE_DIR, changes, make_registry
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from opcatflow.engine import (
    ConcurrentUpdate,
    Engine,
    FrozenClock,
    Instance,
    InvalidData,
    SQLAlchemyStore,
    TransitionRefused,
    load_catalog,
)

TRIGGERS = ["submit", "edit", "approve", "send_back", "reject", "bogus"]
ROLES = ["clerk", "reviewer", "auditor"]
VALUES = {
    "score": st.one_of(st.integers(-5, 15), st.just("7")),
    "urgent": st.booleans(),
    "name": st.text(max_size=12),
    "tags": st.lists(st.sampled_from(["a", "b", "c", "zz"]), max_size=3),
    "due_on": st.sampled_from(["2026-05-01", "2026-13-01"]),
    "colour": st.just("red"),
}
DATA = st.fixed_dictionaries({}, optional=VALUES)

SETTINGS = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def engine_invariants(url: str) -> type[RuleBasedStateMachine]:
    registry = make_registry()
    catalog = load_catalog([EXAMPLE_DIR], registry)
    states = set(catalog.get("example").definition.states)

    class EngineMachine(RuleBasedStateMachine):
        instances = Bundle("instances")

        @initialize()
        def open_engine(self) -> None:
            self.clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
            self.engine = Engine(SQLAlchemyStore(url), catalog, registry, clock=self.clock)
            self.held: dict[str, Instance] = {}
            self.audited: dict[str, int] = {}

        @rule(target=instances, score=st.integers(0, 10), name=st.text(max_size=8))
        def start(self, score: int, name: str) -> Any:
            data = {"title": "t", "score": score, "name": name}
            try:
                instance = self.engine.start("example", actor="a", role="clerk", data=data)
            except InvalidData:
                assert "\x00" in name  # the only bad value this rule generates
                return multiple()
            self.held[instance.id] = instance
            self.audited[instance.id] = 1
            return instance.id

        @rule(
            instance_id=instances,
            trigger=st.sampled_from(TRIGGERS),
            role=st.sampled_from(ROLES),
            data=DATA,
            stale=st.booleans(),
        )
        def fire(
            self, instance_id: str, trigger: str, role: str, data: dict[str, Any], stale: bool
        ) -> None:
            before = self.held[instance_id]
            expected = before.version - 1 if stale and before.version > 1 else before.version
            try:
                after = self.engine.fire(
                    instance_id, trigger, actor="a", role=role, data=data, expected_version=expected
                )
            except ConcurrentUpdate:
                assert expected != before.version
                return
            except TransitionRefused:
                self.audited[instance_id] += 1
                self.held[instance_id] = self.engine.get(instance_id)
                assert self.held[instance_id].version == before.version
                assert self.held[instance_id].state == before.state
                return
            assert after.version == before.version + 1
            self.audited[instance_id] += 1
            self.held[instance_id] = after

        @rule(hours=st.integers(1, 24 * 40))
        def time_passes(self, hours: int) -> None:
            self.clock.advance(timedelta(hours=hours))

        @invariant()
        def states_are_declared(self) -> None:
            assert all(i.state in states for i in self.held.values())

        @invariant()
        def a_fresh_engine_reads_what_the_caller_holds(self) -> None:
            fresh = Engine(SQLAlchemyStore(url), catalog, registry, clock=self.clock)
            try:
                for instance_id, held in self.held.items():
                    assert fresh.get(instance_id) == held
            finally:
                fresh.close()

        @invariant()
        def one_audit_record_per_call(self) -> None:
            for instance_id, count in self.audited.items():
                assert len(changes(self.engine, instance_id)) == count

        @invariant()
        def chains_verify(self) -> None:
            report = self.engine.verify_audit()
            assert report.ok, report.first_break

        def teardown(self) -> None:
            if hasattr(self, "engine"):
                self.engine.close()

    return EngineMachine


def test_engine_invariants_hold_under_random_use(db_url: str) -> None:
    store = SQLAlchemyStore(db_url)
    store.ensure_schema()
    run_state_machine_as_test(engine_invariants(db_url), settings=SETTINGS)
    with store.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit")).scalar()
    store.close()
