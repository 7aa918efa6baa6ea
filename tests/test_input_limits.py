"""The table of limits (engine/limits.py) and valid Unicode, through the Python API: every input
past a limit is a typed error raised before any transaction, the same on SQLite and
PostgreSQL, and nothing is stored (not even a refusal)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opcatflow.engine import (
    DefinitionError,
    Engine,
    FrozenClock,
    InvalidText,
    LimitExceeded,
    Registry,
    compile_text,
    load_catalog,
)
from opcatflow.engine import limits as lim
from opcatflow.engine.inputs import check_data
from opcatflow.engine.yamlsource import load_yaml

TEXT_FIELDS = "".join(f"  t{i}: {{type: text}}\n" for i in range(1, 12))
EVERY_FIELD = ", ".join(["code", "label", "body", "n", "tags"] + [f"t{i}" for i in range(1, 12)])
LIMITED = f"""\
id: limited
version: 1
title: Inputs at their limits
roles: {{clerk: Clerk}}
fields:
  code: {{type: string, max_length: 8}}
  label: {{type: string}}
  body: {{type: text}}
  n: {{type: integer}}
  tags: {{type: list, items: string}}
{TEXT_FIELDS}states:
  open: {{initial: true}}
  done: {{final: true}}
transitions:
  - {{trigger: edit, source: open, roles: [clerk], writes: [{EVERY_FIELD}]}}
  - {{trigger: close, source: open, dest: done, roles: [clerk]}}
start: {{writes: [{EVERY_FIELD}]}}
"""


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def engine(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Engine]:
    (tmp_path / "limited.yaml").write_text(LIMITED)
    with Engine.open(db_url, [tmp_path], Registry(), clock=clock) as eng:
        yield eng


# (what is given, the error, the limit it names: its name, or where the bad text is)
OVER: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"actor": "a" * 201}, LimitExceeded, "actor"),
    ({"role": "r" * 65}, LimitExceeded, "role"),
    ({"trigger": "t" * 65}, LimitExceeded, "trigger"),
    ({"reason": "r" * 2_001}, LimitExceeded, "reason"),
    ({"data": {"label": "x" * 1_001}}, LimitExceeded, "string field"),
    ({"data": {"code": "x" * 9}}, LimitExceeded, "string field"),  # max_length: 8
    ({"data": {"body": "x" * 100_001}}, LimitExceeded, "text field"),
    ({"data": {"tags": ["a"] * 1_001}}, LimitExceeded, "list"),
    ({"data": {"tags": ["x" * 1_001]}}, LimitExceeded, "string field"),
    ({"data": {"n": 2**63}}, LimitExceeded, "integer"),
    ({"data": {"label": nested(40)}}, LimitExceeded, "JSON nesting"),
    ({"data": {"label": nested(100_000)}}, LimitExceeded, "JSON nesting"),
    ({"data": {f"t{i}": "é" * 100_000 for i in range(1, 7)}}, LimitExceeded, "instance data"),
    ({"actor": "a\udcff"}, InvalidText, "actor"),
    ({"reason": "\ud800"}, InvalidText, "reason"),
    ({"data": {"label": "Ana \ud800"}}, InvalidText, "data.label"),
    ({"data": {"\udc80": "x"}}, InvalidText, "data (a key)"),
    ({"data": {"tags": ["ok", "\udfff"]}}, InvalidText, "data.tags[1]"),
]


def named(err: Exception) -> str:
    return err.limit.name if isinstance(err, LimitExceeded) else getattr(err, "where", "")


# One test walks every case (a database per case would cost seconds of CI per backend).
def test_fire_past_a_limit_is_refused_before_anything_is_stored(engine: Engine) -> None:
    instance = engine.start("limited", actor="a", role="clerk", data={"label": "first"})
    for case, error, limit in OVER:
        call: dict[str, Any] = {"trigger": "edit", "actor": "a", "role": "clerk", **case}
        trigger = call.pop("trigger")
        with pytest.raises(error) as caught:
            engine.fire(instance.id, trigger, **call)
        assert (named(caught.value), limit in str(caught.value)) == (limit, True)
    assert engine.get(instance.id).version == 1
    assert len(engine.history(instance.id)) == 1  # the start; no refusal was stored


def test_start_past_a_limit_stores_no_instance(engine: Engine) -> None:
    for case, error, limit in OVER:
        if "trigger" in case:
            continue
        call: dict[str, Any] = {"actor": "a", "role": "clerk", **case}
        with pytest.raises(error) as caught:
            engine.start("limited", **call)
        assert named(caught.value) == limit
    assert engine.query(workflow="limited") == []


def test_changes_each_within_the_limit_may_not_add_up_past_it(engine: Engine) -> None:
    instance = engine.start("limited", actor="a", role="clerk")
    first = {f"t{i}": "x" * 100_000 for i in range(1, 7)}
    engine.fire(instance.id, "edit", actor="a", role="clerk", data=first)
    rest = {f"t{i}": "x" * 100_000 for i in range(7, 12)}
    with pytest.raises(LimitExceeded, match="instance data limit") as caught:
        engine.fire(instance.id, "edit", actor="a", role="clerk", data=rest)
    assert (caught.value.size or 0) > lim.DATA.maximum
    assert engine.get(instance.id).version == 2


def test_inputs_at_the_limits_are_accepted(engine: Engine) -> None:
    data = {"label": "x" * 1_000, "code": "é" * 8, "body": "x" * 100_000, "n": 2**63 - 1}
    data["tags"] = ["a"] * 1_000
    instance = engine.start("limited", actor="a" * 200, role="clerk", data=data)
    fired = engine.fire(instance.id, "edit", actor="a", role="clerk", reason="r" * 2_000)
    assert (fired.version, fired.data) == (2, data)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("{type: string, max_length: 1001}", "above the global string field limit"),
        ("{type: text, max_length: 100001}", "above the global text field limit"),
        ("{type: integer, max_length: 5}", "only for string and text fields"),
    ],
)
def test_validate_refuses_a_max_length_above_the_global_limit(field: str, message: str) -> None:
    text = LIMITED.replace("{type: string, max_length: 8}", field)
    with pytest.raises(DefinitionError) as caught:
        compile_text(text, "limited.yaml", Registry())
    [problem] = caught.value.problems
    assert (problem.path, problem.line) == ("limited.yaml", 6)
    assert message in problem.message


@pytest.mark.parametrize(
    "text",
    ["a: " + "[" * 50_000 + "]" * 50_000, "a:\n" + "".join(" " * i + "- \n" for i in range(70))],
)
def test_yaml_nested_too_deep_is_a_located_problem(tmp_path: Path, text: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(DefinitionError) as caught:
        load_catalog([path], Registry())
    [problem] = caught.value.problems
    assert (problem.path, problem.line > 0, problem.column > 1) == (str(path), True, True)
    assert "YAML nesting limit: at most 64 levels" in problem.message


def test_yaml_nested_to_the_limit_loads() -> None:
    innermost: Any = []
    for _ in range(62):
        innermost = [innermost]
    assert load_yaml("a: " + "[" * 63 + "]" * 63, "ok.yaml").value == {"a": innermost}


@settings(max_examples=30, deadline=None)
@given(
    text=st.text(max_size=20),
    at=st.integers(min_value=0, max_value=20),
    surrogate=st.integers(min_value=0xD800, max_value=0xDFFF).map(chr),
    as_key=st.booleans(),
)
def test_a_lone_surrogate_anywhere_in_data_is_refused(
    text: str, at: int, surrogate: str, as_key: bool
) -> None:
    check_data({"label": text, "tags": [text]})  # valid text passes
    bad = text[:at] + surrogate + text[at:]
    with pytest.raises(InvalidText):
        check_data({bad: "x"} if as_key else {"tags": ["ok", bad]})


DOCS = Path(__file__).parent.parent / "docs" / "limits.md"


@pytest.mark.skipif(not DOCS.exists(), reason="outside a checkout (the wheel test)")
def test_docs_limits_lists_every_limit_with_its_number() -> None:
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in DOCS.read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| ---")
    }
    table = [v for v in vars(lim).values() if isinstance(v, lim.Limit)]
    assert {limit.name: f"{limit.maximum:,} {limit.unit}" for limit in table} == {
        limit.name: rows.get(limit.name) for limit in table
    }
    budgets = DOCS.read_text()
    for number in (
        f"{lim.EXPRESSION_SECONDS * 1000:g} ms",
        f"{lim.EXPRESSION_ITERATIONS:,}",
        f"{lim.EXPRESSION_VALUE:,} characters",
        f"{lim.TEMPLATE_SECONDS:g} s",
        f"{lim.TEMPLATE_ITERATIONS:,}",
        f"{lim.TEMPLATE_OUTPUT:,} characters",
    ):
        assert number in budgets
