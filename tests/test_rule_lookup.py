"""Rules that read other instances through ``RuleContext.lookup``, inside the transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opcatflow.engine import (
    Engine,
    FrozenClock,
    GuardRefusal,
    Registry,
    RuleContext,
    TransitionRefused,
)
from opcatflow.engine.registry import no_lookup

TASK = """
id: task
version: 1
title: A task that waits for another one
roles: {clerk: Clerk}
start: {writes: [blocker]}
fields:
  blocker: {type: string}
states:
  open: {initial: true}
  done: {final: true}
transitions:
  - {trigger: finish, source: open, dest: done, roles: [clerk], guards: [blocker_done]}
"""


def lookup_registry() -> Registry:
    registry = Registry()

    @registry.guard("blocker_done", reason="unused")
    def blocker_done(ctx: RuleContext) -> bool:
        blocker = ctx.data.get("blocker")
        if blocker is None:
            return True
        other = ctx.lookup(blocker)
        if other is None:
            raise GuardRefusal(f"no instance {blocker}")
        if other.state != "done":
            raise GuardRefusal(f"{blocker} is {other.state}")
        return True

    return registry


@pytest.fixture
def tasks(db_url: str, tmp_path: Path) -> Iterator[Engine]:
    (tmp_path / "task.yaml").write_text(TASK)
    clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    with Engine.open(db_url, [tmp_path], lookup_registry(), clock=clock) as eng:
        yield eng


def test_a_guard_reads_the_current_state_of_another_instance(tasks: Engine) -> None:
    first = tasks.start("task", actor="a", role="clerk").id
    second = tasks.start("task", actor="a", role="clerk", data={"blocker": first}).id
    with pytest.raises(TransitionRefused) as caught:
        tasks.fire(second, "finish", actor="a", role="clerk")
    assert caught.value.reason == f"blocker_done: {first} is open"
    tasks.fire(first, "finish", actor="a", role="clerk")
    assert tasks.fire(second, "finish", actor="a", role="clerk").state == "done"


def test_an_unknown_id_reads_as_none(tasks: Engine) -> None:
    task = tasks.start("task", actor="a", role="clerk", data={"blocker": "nope"}).id
    with pytest.raises(TransitionRefused) as caught:
        tasks.fire(task, "finish", actor="a", role="clerk")
    assert caught.value.reason == "blocker_done: no instance nope"


def test_available_triggers_use_the_same_lookup(tasks: Engine) -> None:
    first = tasks.start("task", actor="a", role="clerk").id
    second = tasks.start("task", actor="a", role="clerk", data={"blocker": first}).id
    [option] = tasks.available_triggers(second, "clerk")
    assert (option.ready, option.blocked_by) == (False, f"blocker_done: {first} is open")


def test_a_context_without_a_store_knows_no_instance() -> None:
    assert no_lookup("anything") is None
