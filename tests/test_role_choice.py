"""The engine chooses the role a caller with several roles acts in (``fire(roles=[...])``),
and the HTTP API leaves that choice to it: one engine call, one read of the instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_server import ApiUnderTest, api_fixture, live_server_fixture  # noqa: F401
from sqlalchemy import event

from opcatflow.engine import Engine, FrozenClock, Registry, TransitionRefused

CHOICE = """\
id: choice
version: 1
title: Role choice
roles:
  reviewer: Reviews
  clerk: Records
  head: Heads the unit
fields:
  score: {type: integer}
  verdict: {type: string, write_roles: [head]}
start:
  writes: [score]
states:
  open: {initial: true}
  checked: {}
  done: {final: true}
transitions:
  - trigger: check
    source: open
    dest: checked
    roles: [clerk, reviewer]
  - trigger: decide
    source: checked
    roles: [clerk, head]
    writes: [verdict]
  - trigger: close
    source: checked
    dest: done
    roles: [reviewer, head]
    when: score >= 5
"""


@pytest.fixture
def engine(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Engine]:
    (tmp_path / "choice.yaml").write_text(CHOICE)
    with Engine.open(db_url, [tmp_path], Registry(), clock=clock) as opened:
        yield opened


def checked(engine: Engine, score: int) -> str:
    case = engine.start("choice", actor="a", role="clerk", data={"score": score}).id
    engine.fire(case, "check", actor="a", role="clerk")
    return case


def test_the_first_role_in_the_workflows_order_that_may_applies_and_is_recorded(
    engine: Engine,
) -> None:
    case = engine.start("choice", actor="a", role="clerk").id
    engine.fire(case, "check", actor="a", roles=["clerk", "reviewer"])
    assert engine.history(case)[-1].role == "reviewer"


def test_a_role_whose_write_check_fails_gives_way_to_the_next(engine: Engine) -> None:
    case = checked(engine, 1)
    engine.fire(case, "decide", actor="a", roles=["head", "clerk"], data={"verdict": "ok"})
    assert (engine.history(case)[-1].role, engine.history(case)[-1].outcome) == ("head", "applied")


def test_a_role_whose_guard_fails_is_refused_once_under_the_first_role_allowed(
    engine: Engine,
) -> None:
    case = checked(engine, 1)
    before = len(engine.history(case))
    with pytest.raises(TransitionRefused) as refused:
        engine.fire(case, "close", actor="a", roles=["clerk", "head", "reviewer"])
    records = engine.history(case)[before:]
    assert [(r.role, r.outcome) for r in records] == [("reviewer", "refused")]
    assert refused.value.kind == "guard"


def test_roles_none_of_which_the_workflow_has_are_refused_without_naming_the_state(
    engine: Engine,
) -> None:
    case = checked(engine, 9)
    with pytest.raises(TransitionRefused) as refused:
        engine.fire(case, "nonsense", actor="a", roles=["warden", "observer"])
    assert (refused.value.kind, engine.history(case)[-1].role) == ("role", "warden")
    assert "checked" not in refused.value.reason


def test_role_and_roles_are_exclusive(engine: Engine) -> None:
    case = checked(engine, 9)
    with pytest.raises(ValueError, match="role"):
        engine.fire(case, "close", actor="a", role="head", roles=["head"])
    with pytest.raises(ValueError, match="role"):
        engine.fire(case, "close", actor="a", roles=[])


# -- the HTTP API: one engine call, one read of the instance ------------------------------------


def selects_on_instances(api: ApiUnderTest) -> list[str]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split()).lower()
        if text.startswith("select") and "from instances" in text:
            seen.append(text)

    event.listen(api.engine.store.engine, "before_cursor_execute", count)
    return seen


def test_a_fire_by_a_key_with_several_roles_reads_the_instance_once(api: ApiUnderTest) -> None:
    case = api.start()
    seen = selects_on_instances(api)
    response = api.fire(case["id"], "edit", "multi", body={"data": {"score": 1}})
    assert response.status_code == 200, response.text
    assert len(seen) == 1
    assert api.engine.history(case["id"])[-1].role == "clerk"


def test_a_refused_fire_by_a_key_with_several_roles_reads_the_instance_once(
    api: ApiUnderTest,
) -> None:
    case = api.start(score=1)
    assert api.fire(case["id"], "submit", "clerk").status_code == 200
    seen = selects_on_instances(api)
    response = api.fire(case["id"], "close", "multi")
    assert response.status_code == 409, response.text
    assert len(seen) == 1
    assert (
        api.engine.history(case["id"])[-1].role,
        api.engine.history(case["id"])[-1].outcome,
    ) == ("reviewer", "refused")
