"""Sandboxed expressions (transition and deadline ``when``, ``opens`` data) are bounded in
time, iterations and size: at load, a constant part that can never fit is a located problem;
at run time, going past a budget refuses the change (kind ``guard``, audited, instance
unchanged) before the value is built."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from opcatflow.engine import (
    DefinitionError,
    Engine,
    FrozenClock,
    Registry,
    TransitionRefused,
    load_catalog,
)
from opcatflow.engine.audit import REFUSED
from opcatflow.engine.expressions import compile_guard
from opcatflow.engine.sandbox import BudgetExceeded

PARENT = """\
id: budgeted
version: 1
title: Expressions over caller data
roles: {clerk: Clerk}
fields:
  s: {type: string}
  n: {type: integer}
  items: {type: list, items: string}
states:
  open: {initial: true}
  waiting:
    deadlines:
      - id: check_by
        due: 10 days
        when: "(s * n) | length > 0"
  done: {final: true}
transitions:
  - {trigger: edit, source: [open, waiting], roles: [clerk], writes: [s, n, items]}
  - {trigger: grow, source: open, dest: done, roles: [clerk], writes: [n], when: "(s * n) | length > 0"}
  - {trigger: count, source: open, dest: done, roles: [clerk], writes: [n], when: "(items * n) | join"}
  - {trigger: wait, source: open, dest: waiting, roles: [clerk], writes: [n]}
  - {trigger: finish, source: waiting, dest: done, roles: [clerk], writes: [n]}
  - trigger: spawn
    source: open
    roles: [clerk]
    writes: [n]
    opens:
      - {workflow: budgeted_child, data: {text: "s * n"}}
start: {writes: [s, n, items]}
"""
CHILD = """\
id: budgeted_child
version: 1
title: Opened with data from an expression
roles: {clerk: Clerk}
fields:
  text: {type: text}
states:
  open: {initial: true}
  done: {final: true}
transitions:
  - {trigger: finish, source: open, dest: done, roles: [clerk]}
start: {writes: [text]}
"""


START = {"s": "abc", "items": ["a"]}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "defs"
    path.mkdir()
    (path / "budgeted.yaml").write_text(PARENT)
    (path / "budgeted_child.yaml").write_text(CHILD)
    return path


@pytest.fixture
def engine(db_url: str, clock: FrozenClock, folder: Path) -> Iterator[Engine]:
    with Engine.open(db_url, [folder], Registry(), clock=clock) as eng:
        yield eng


def refused(engine: Engine, trigger: str, n: int) -> tuple[TransitionRefused, str]:
    """Fire ``trigger`` with ``n`` on a new instance; returns the refusal and the instance."""
    instance = engine.start("budgeted", actor="a", role="clerk", data=START)
    with pytest.raises(TransitionRefused) as caught:
        engine.fire(instance.id, trigger, actor="a", role="clerk", data={"n": n})
    return caught.value, instance.id


def assert_unchanged(engine: Engine, instance_id: str, reason: str) -> None:
    after = engine.get(instance_id)
    assert (after.version, after.state, after.data) == (1, "open", START)
    last = engine.history(instance_id)[-1]
    assert (REFUSED, reason) == (last.outcome, last.reason)
    assert engine.children(instance_id) == []


def test_a_600_mb_string_is_refused_by_the_size_budget_before_it_is_built(engine: Engine) -> None:
    engine.fire(
        engine.start("budgeted", actor="a", role="clerk", data={"s": "abc"}).id,
        "edit",
        actor="a",
        role="clerk",
    )  # warm: the first fire compiles and caches what every later one reuses
    instance = engine.start("budgeted", actor="a", role="clerk", data=START)
    tracemalloc.start()
    try:
        with pytest.raises(TransitionRefused) as caught:
            engine.fire(instance.id, "grow", actor="a", role="clerk", data={"n": 200_000_000})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024
    err = caught.value
    assert err.kind == "guard"
    assert "size budget exceeded" in err.reason
    assert "600,000,000" in err.reason
    assert_unchanged(engine, instance.id, err.reason)


def test_a_runaway_loop_is_refused_by_the_iteration_budget(engine: Engine) -> None:
    err, instance_id = refused(engine, "count", 20_000)  # 20,000 items, each joined
    assert (err.kind, "iteration budget exceeded" in err.reason) == ("guard", True)
    assert_unchanged(engine, instance_id, err.reason)


def test_opens_data_past_the_size_budget_refuses_and_opens_nothing(engine: Engine) -> None:
    err, instance_id = refused(engine, "spawn", 200_000_000)
    assert (err.kind, "size budget exceeded" in err.reason) == ("guard", True)
    assert "budgeted_child" in err.reason
    assert_unchanged(engine, instance_id, err.reason)


def test_a_deadline_condition_past_its_budget_refuses_entering_the_state(engine: Engine) -> None:
    err, instance_id = refused(engine, "wait", 200_000_000)
    assert err.kind == "guard"
    assert "deadline 'check_by'" in err.reason
    assert "size budget exceeded" in err.reason
    assert_unchanged(engine, instance_id, err.reason)


def test_child_data_past_a_field_limit_refuses_opening_it(engine: Engine) -> None:
    instance = engine.start("budgeted", actor="a", role="clerk", data={"s": "x" * 1_000})
    with pytest.raises(TransitionRefused) as caught:  # 101,000 characters: under the budget
        engine.fire(instance.id, "spawn", actor="a", role="clerk", data={"n": 101})
    assert caught.value.kind == "data"
    assert "data.text is over the text field limit" in caught.value.reason
    assert engine.children(instance.id) == []
    assert engine.get(instance.id).version == 1


def test_within_the_budgets_the_same_expressions_apply(engine: Engine) -> None:
    instance = engine.start("budgeted", actor="a", role="clerk", data=START)
    engine.fire(instance.id, "spawn", actor="a", role="clerk", data={"n": 2})
    assert [c.data for c in engine.children(instance.id)] == [{"text": "abcabc"}]
    done = engine.fire(instance.id, "grow", actor="a", role="clerk")
    assert done.state == "done"


def test_an_expression_is_stopped_when_its_time_is_up() -> None:
    ticks = itertools.count()  # a clock that moves one second per reading
    expression = compile_guard("(a + b) + a", timer=lambda: float(next(ticks)))
    with pytest.raises(BudgetExceeded, match="time budget exceeded") as caught:
        expression(a="x", b="y")
    assert caught.value.budget == "time"


@pytest.mark.parametrize(
    ("when", "budget"),
    [
        ("n > 10 ** 10000000", "size budget exceeded"),
        ("s == 'a' * 1000000", "size budget exceeded"),
        ("s == ((['a'] * 20000) | join)", "iteration budget exceeded"),
    ],
)
def test_a_constant_that_can_never_fit_is_refused_at_load_with_its_position(
    tmp_path: Path, when: str, budget: str
) -> None:
    text = PARENT.replace('when: "(items * n) | join"', f'when: "{when}"')
    (tmp_path / "budgeted.yaml").write_text(text)
    (tmp_path / "budgeted_child.yaml").write_text(CHILD)
    with pytest.raises(DefinitionError) as caught:
        load_catalog([tmp_path], Registry())
    [problem] = caught.value.problems
    line = text.splitlines().index(next(x for x in text.splitlines() if when in x)) + 1
    assert (str(tmp_path / "budgeted.yaml"), line) == (problem.path, problem.line)
    assert problem.column > 1
    assert budget in problem.message
