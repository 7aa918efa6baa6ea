"""Every definition problem an operator can make is reported at its file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_registry

from opcatflow.engine import DefinitionError, Problem, compile_text, load_catalog
from opcatflow.workflows import BUNDLED, registry

EXAMPLE = (Path(__file__).parent / "definitions" / "example.yaml").read_text()


def problems_of(text: str, path: str = "wf.yaml") -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        compile_text(text, path, make_registry())
    return list(caught.value.problems)


def edit(old: str, new: str) -> str:
    assert old in EXAMPLE, old
    return EXAMPLE.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_example_definition_compiles() -> None:
    wf = compile_text(EXAMPLE, "example.yaml", make_registry())
    assert (wf.id, wf.version, wf.initial) == ("example", 1, "draft")


def test_bundled_workflows_are_valid() -> None:
    catalog = load_catalog([BUNDLED], registry)
    assert "complaint" in [wf.id for wf in catalog.latest()]


def test_no_initial_state() -> None:
    text = edit("    initial: true\n", "")
    [problem] = problems_of(text)
    assert "no initial state" in problem.message
    assert problem.line == line_of(text, "states:")


def test_several_initial_states() -> None:
    text = edit("  approved: {final: true}", "  approved: {final: true}\n  other: {initial: true}")
    messages = [p.message for p in problems_of(text)]
    assert any("several initial states (draft, other)" in m for m in messages)


def test_transition_to_unknown_state_suggests_the_closest() -> None:
    text = edit("dest: approved\n", "dest: aproved\n")
    unreachable, problem = problems_of(text)  # in file order: states come first
    assert unreachable.message == "state 'approved' is unreachable from 'draft'"
    assert problem.message == "unknown destination state 'aproved' (did you mean 'approved'?)"
    assert (problem.line, problem.column) == (line_of(text, "dest: aproved"), 11)


def test_transition_from_unknown_state() -> None:
    text = edit("    source: [draft, review]\n", "    source: [draft, reveiw]\n")
    messages = [p.message for p in problems_of(text)]
    assert "unknown source state 'reveiw' (did you mean 'review'?)" in messages


def test_unreachable_state() -> None:
    text = edit("  approved: {final: true}", "  approved: {final: true}\n  limbo: {final: true}")
    [problem] = problems_of(text)
    assert problem.message == "state 'limbo' is unreachable from 'draft'"
    assert problem.line == line_of(text, "limbo")


def test_non_final_state_without_exit() -> None:
    text = edit("  approved: {final: true}", "  approved: {final: true}\n  parked: {}")
    text = text.replace("source: '*'", "source: [draft, review]").replace(
        "notifications:",
        "  - trigger: park\n    source: draft\n    dest: parked\n    roles: [clerk]\nnotifications:",
    )
    [problem] = problems_of(text)
    assert problem.message == "state 'parked' is not final and has no transition out of it"


def test_transition_out_of_a_final_state() -> None:
    text = edit("    source: [draft, review]\n", "    source: [draft, approved]\n")
    [problem] = problems_of(text)
    assert problem.message == "transition 'edit' leaves final state 'approved'"


def test_same_trigger_twice_from_one_source_without_guard() -> None:
    text = edit("    when: score >= 5\n    guards: [not_friday]\n", "")
    [problem] = problems_of(text)
    assert "trigger 'approve' from 'review' is also declared at line" in problem.message
    assert "can never apply" in problem.message


def test_same_trigger_for_disjoint_roles_is_fine() -> None:
    text = edit("    when: score >= 5\n    guards: [not_friday]\n", "").replace(
        "    dest: rejected\n    roles: [reviewer]\n  - trigger: send_back",
        "    dest: rejected\n    roles: [clerk]\n  - trigger: send_back",
    )
    assert compile_text(text, "wf.yaml", make_registry()).id == "example"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("guards: [not_friday]", "guards: [not_fridy]", "unknown guard 'not_fridy' (did you mean 'not_friday'?): guards are Python functions in the registry (the bundled ones in workflows/rules.py), not part of the definition; registered: explodes, needs_title, not_friday (for a condition over the data, use 'when')"),
        ("on_enter: [stamp_review]", "on_enter: [stamp]", "unknown action 'stamp'"),
        ("    roles: [clerk]\n    requires", "    roles: [clerc]\n    requires", "unknown role 'clerc' (did you mean 'clerk'?)"),
        ("to: [reviewer]", "to: [auditor]", "unknown role 'auditor'"),
    ],
)  # fmt: skip
def test_unknown_guard_action_or_role(old: str, new: str, message: str) -> None:
    text = edit(old, new)
    [problem] = problems_of(text)
    assert problem.message == message
    assert problem.line == line_of(text, new.strip().splitlines()[0])


def test_required_field_the_schema_does_not_declare() -> None:
    text = edit("requires: [score]", "requires: [scor]")
    [problem] = problems_of(text)
    assert problem.message == "unknown field 'scor' (did you mean 'score'?)"


def test_expression_reading_an_undeclared_field() -> None:
    text = edit("when: score >= 5", "when: grade >= 5")
    [problem] = problems_of(text)
    assert problem.message.startswith("expression reads undeclared field 'grade'")


def test_malformed_duration() -> None:
    text = edit("due: 10 working days", "due: ten working days")
    [problem] = problems_of(text)
    assert problem.message.startswith("malformed duration 'ten working days'")
    assert problem.line == line_of(text, "ten working days")


def test_malformed_reminder() -> None:
    text = edit("reminders: [2 days]", "reminders: [2 fortnights]")
    [problem] = problems_of(text)
    assert "malformed duration '2 fortnights'" in problem.message


def test_deadline_anchor_must_be_a_date_field() -> None:
    text = edit("due: 10 working days", "due: 3 days before score")
    [problem] = problems_of(text)
    assert problem.message == "deadline anchor 'score' is neither 'entered' nor a date field"


def test_guard_expression_that_does_not_compile() -> None:
    text = edit("when: score >= 5", "when: score >=")
    [problem] = problems_of(text)
    assert problem.message.startswith("expression 'score >=' does not compile")


def test_all_problems_reported_at_once_in_file_order() -> None:
    text = edit("dest: approved\n", "dest: aproved\n").replace("[not_friday]", "[nope]")
    problems = problems_of(text)
    assert [p.line for p in problems] == sorted(p.line for p in problems)
    assert len(problems) >= 2


def test_problem_prints_as_path_line_column() -> None:
    text = edit("dest: approved\n", "dest: aproved\n")
    problem = problems_of(text, "workflows/x.yaml")[-1]
    assert str(problem) == f"workflows/x.yaml:{problem.line}:11: {problem.message}"


def test_unknown_key_is_named() -> None:
    text = edit("title: Example case", "title: Example case\ntitel: typo")
    [problem] = problems_of(text)
    assert problem.message == "unknown key 'titel'"
    assert problem.line == line_of(text, "titel")


def test_duplicate_id_and_version_with_different_content(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(EXAMPLE)
    (tmp_path / "b.yaml").write_text(EXAMPLE.replace("title: Example case", "title: Changed"))
    with pytest.raises(DefinitionError) as caught:
        load_catalog([tmp_path], make_registry())
    [problem] = caught.value.problems
    assert problem.path == str(tmp_path / "b.yaml")
    assert "already defined differently in" in problem.message


def test_same_definition_twice_is_not_a_conflict(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(EXAMPLE)
    (tmp_path / "b.yaml").write_text(EXAMPLE + "\n# only a comment differs\n")
    assert [wf.id for wf in load_catalog([tmp_path], make_registry()).latest()] == ["example"]


def test_custom_yaml_tags_are_refused() -> None:
    [problem] = problems_of("id: !!python/object:os.system x\n")
    assert "tag:yaml.org,2002:python/object:os.system is not allowed" in problem.message


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    [problem] = problems_of("\n".join(lines))
    assert "expands to more than" in problem.message


def test_oversized_file_is_refused() -> None:
    [problem] = problems_of("x: " + "y" * 1_100_000)
    assert "larger than" in problem.message


def test_yaml_syntax_error_is_located() -> None:
    [problem] = problems_of("id: x\nroles: [a\n")
    assert problem.message.startswith("YAML:")
    assert problem.line == 3


def test_norway_stays_text_and_on_is_a_key() -> None:
    text = edit("values: [a, b, c]", "values: [a, b, no]")
    wf = compile_text(text, "wf.yaml", make_registry())
    assert wf.definition.fields["tags"].values == ["a", "b", "no"]
    assert wf.definition.notifications[0].on.enter == "review"


def test_partial_is_only_for_date_fields() -> None:
    text = edit("approved_by: {type: string}", "approved_by: {type: string, partial: true}")
    [problem] = problems_of(text)
    assert problem.line == line_of(text, "partial: true")
    assert "'partial' is only for date fields" in problem.message
    # on a date field it compiles
    compile_text(
        edit("due_on: {type: date}", "due_on: {type: date, partial: true}"),
        "wf.yaml",
        make_registry(),
    )
