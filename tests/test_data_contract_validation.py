"""``validate`` on the data contract: each check at file:line:col, and compatibility mode
(stored copies keep the rules they were written under)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_data_contract import CONTRACT, PLAIN_MEMO, contract_registry
from typer.testing import CliRunner

from opcatflow.adapters.cli.app import app
from opcatflow.engine import DefinitionError, Problem, Registry, compile_text, load_catalog

DOSSIER = (CONTRACT / "dossier.yaml").read_text()
FOLLOWUP = (CONTRACT / "followup.yaml").read_text()


def edited(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_col(text: str, needle: str) -> tuple[int, int]:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(needle)


def file_problems(text: str) -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        compile_text(text, "dossier.yaml", contract_registry())
    return list(caught.value.problems)


def catalog_problems(tmp_path: Path, dossier: str, followup: str = FOLLOWUP) -> list[Problem]:
    (tmp_path / "dossier.yaml").write_text(dossier)
    (tmp_path / "followup.yaml").write_text(followup)
    with pytest.raises(DefinitionError) as caught:
        load_catalog([tmp_path], contract_registry())
    return list(caught.value.problems)


def test_the_contract_definitions_are_valid() -> None:
    catalog = load_catalog([CONTRACT], contract_registry())
    assert sorted(wf.id for wf in catalog) == ["dossier", "followup"]
    assert all(wf.checks_writes and not wf.compat for wf in catalog)


def test_an_unknown_field_in_writes() -> None:
    text = edited(DOSSIER, "writes: [summary, persons", "writes: [sumary, persons")
    [problem] = file_problems(text)
    assert problem.message == "unknown field 'sumary' (did you mean 'summary'?)"
    assert (problem.line, problem.column) == line_col(text, "sumary")


def test_an_unknown_field_in_start_writes() -> None:
    text = edited(
        DOSSIER, "writes: [assignee, persons_at_risk]", "writes: [asignee, persons_at_risk]"
    )
    [problem] = file_problems(text)
    assert problem.message == "unknown field 'asignee' (did you mean 'assignee'?)"
    assert (problem.line, problem.column) == line_col(text, "asignee")


def test_alternatives_with_different_requires_are_an_error_at_their_trigger() -> None:
    head_copy = (
        "  - trigger: decide\n    source: open\n    dest: decided\n    roles: [head]\n"
        "    writes: [decided_by]\n    actions: [stamp_decider]\n  - trigger: close\n"
    )
    text = edited(DOSSIER, "    roles: [head, clerk]\n", "    roles: [clerk]\n")
    text = edited(text, "  - trigger: close\n", head_copy)
    [problem] = file_problems(text)
    first = line_col(text, "trigger: decide")[0]
    assert problem.message == (
        f"trigger 'decide' is also declared at line {first} from the same source with other "
        "'requires': alternatives of one trigger must require and write the same fields "
        "(different roles alone never tell them apart); make them identical, or say why with "
        "'differs: <reason>'"
    )
    lines = text.splitlines()
    second = next(i for i, line in enumerate(lines, 1) if "trigger: decide" in line and i > first)
    assert (problem.line, problem.column) == (second, 14)
    allowed = edited(
        text, "    roles: [head]\n", "    roles: [head]\n    differs: the head decides alone\n"
    )
    assert compile_text(allowed, "dossier.yaml", contract_registry()).id == "dossier"


def test_differs_without_an_alternative_is_an_error() -> None:
    text = edited(
        DOSSIER, "    writes: [comment]\n", "    writes: [comment]\n    differs: why not\n"
    )
    [problem] = file_problems(text)
    assert (
        problem.message
        == "'differs' but no other transition has trigger 'touch' from the same source"
    )
    assert (problem.line, problem.column) == line_col(text, "why not")


def test_an_action_declaring_writes_outside_its_transition_is_an_error() -> None:
    text = edited(DOSSIER, "    writes: [decided_by]\n", "    writes: []\n")
    [problem] = file_problems(text)
    assert problem.message == (
        "action 'stamp_decider' writes decided_by, outside what 'decide' writes: add it to "
        "the transition's 'writes'"
    )
    assert (problem.line, problem.column) == line_col(text, "stamp_decider")


def test_an_unknown_guard_lists_the_registered_ones_and_says_they_are_python() -> None:
    text = edited(
        DOSSIER, "    actions: [sneaky]\n", "    actions: [sneaky]\n    guards: [is_urgent]\n"
    )
    [problem] = file_problems(text)
    assert problem.message == (
        "unknown guard 'is_urgent': guards are Python functions in the registry (the bundled "
        "ones in workflows/rules.py), not part of the definition; registered: none (for a "
        "condition over the data, use 'when')"
    )


def test_write_roles_naming_a_role_that_may_not_read_the_field_is_an_error() -> None:
    text = edited(
        DOSSIER,
        "persons_at_risk: {type: list, items: string, personal: true}",
        "persons_at_risk: {type: list, items: string, personal: true, write_roles: [auditor]}",
    )
    [problem] = file_problems(text)
    assert problem.message == (
        "role 'auditor' may not read the personal field 'persons_at_risk', so it may never "
        "write it: add it to the field's 'visible_to' (or 'personal_visible_to')"
    )
    assert (problem.line, problem.column) == line_col(text, "auditor]}")


def test_owner_rules_are_checked() -> None:
    text = edited(
        DOSSIER,
        "owner: {field: assignee, roles: [expert]}",
        "owner: {field: edits, roles: [experts]}",
    )
    messages = [p.message for p in file_problems(text)]
    assert messages == [
        "the owner field 'edits' is integer: it must be text (an actor id)",
        "unknown role 'experts' (did you mean 'expert'?)",
    ]


def test_a_field_nothing_can_write(tmp_path: Path) -> None:
    text = edited(
        DOSSIER, "  comment: {type: text}\n", "  comment: {type: text}\n  orphan: {type: text}\n"
    )
    [problem] = catalog_problems(tmp_path, text)
    assert problem.message == (
        "nothing can ever write field 'orphan': no start, transition, action or opening "
        "writes it (add it to the 'writes' of a transition, or of 'start')"
    )
    assert (problem.path, problem.line, problem.column) == (
        str(tmp_path / "dossier.yaml"),
        line_col(text, "orphan")[0],
        len("  orphan: ") + 1,  # the field's spec
    )


def test_a_field_set_only_by_a_parents_opening_is_written(tmp_path: Path) -> None:
    assert load_catalog([CONTRACT], contract_registry()).get("followup").id == "followup"
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "followup.yaml").write_text(FOLLOWUP)
    with pytest.raises(DefinitionError) as caught:
        load_catalog([alone], contract_registry())
    assert [p.message for p in caught.value.problems] == [
        "nothing can ever write field 'dossier_title': no start, transition, action or "
        "opening writes it (add it to the 'writes' of a transition, or of 'start')"
    ]


def test_a_requirement_nothing_can_write_before_the_transition(tmp_path: Path) -> None:
    """The clerk's decide requires decision, which only the head may write, and only later."""
    text = edited(DOSSIER, "    roles: [head, clerk]\n", "    roles: [clerk]\n")
    text = edited(
        text,
        "    roles: [head]\n    opens:",
        "    roles: [head]\n    writes: [decision]\n    opens:",
    )
    [problem] = catalog_problems(tmp_path, text)
    assert problem.message == (
        "'decide' from 'open' requires 'decision', but nothing can write it before then (no "
        "start, earlier transition, action or opening; its roles may not write it)"
    )
    assert (problem.line, problem.column) == line_col(text, "decision]")


def test_an_opening_may_not_write_outside_the_childs_start_set(tmp_path: Path) -> None:
    text = edited(DOSSIER, "        writes: [dossier_title]\n", "")
    problems = catalog_problems(tmp_path, text)
    assert [p.message for p in problems] == [
        "'followup' does not let a start write 'dossier_title': add it to this entry's "
        "'writes' (or to the child's 'start: writes')"
    ]


def test_an_openings_writes_must_be_set_by_its_data(tmp_path: Path) -> None:
    text = edited(DOSSIER, "writes: [dossier_title]", "writes: [dossier_title, done_on, nope]")
    messages = [p.message for p in catalog_problems(tmp_path, text)]
    assert messages == [
        "'done_on' is in 'writes' but 'data' does not set it",
        "workflow 'followup' has no field 'nope'",
    ]


def test_a_stored_copy_is_not_held_to_rules_added_after_it_was_stored() -> None:
    text = edited(DOSSIER, "writes: [summary, persons", "writes: [sumary, persons")
    stored = compile_text(text, "<stored dossier v1>", contract_registry(), compat=True)
    assert (stored.compat, stored.checks_writes) == (True, True)


def test_a_stored_copy_that_declares_no_writes_keeps_the_any_field_rule() -> None:
    stored = compile_text(PLAIN_MEMO, "<stored memo v1>", Registry(), compat=True)
    assert (stored.compat, stored.checks_writes, stored.start_writes) == (True, False, None)


def test_a_file_that_declares_no_writes_is_strict() -> None:
    wf = compile_text(PLAIN_MEMO, "memo.yaml", Registry())
    assert (wf.compat, wf.checks_writes, wf.start_writes) == (False, True, {"title"})


NO_WRITES_HINT = (
    "hint: this definition declares 'writes' nowhere, so a transition writes only its "
    "'requires' (a start: its 'requires' and required fields); declare what each may write, "
    "see docs/data-contract.md"
)


def test_validate_hints_that_a_file_without_writes_writes_only_its_requires(
    tmp_path: Path,
) -> None:
    (tmp_path / "memo.yaml").write_text(PLAIN_MEMO)
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "memo.yaml")])
    line, column = line_col(PLAIN_MEMO, "transitions:")
    hint = f"{tmp_path / 'memo.yaml'}:{line}:{column}: {NO_WRITES_HINT}"
    assert (result.exit_code, result.stdout.splitlines()[0]) == (0, hint)


def test_validate_adds_the_hint_to_the_problems_of_an_old_file(tmp_path: Path) -> None:
    old = edited(
        PLAIN_MEMO, "    requires: [secret]\n", ""
    )  # written when any step wrote any field
    (tmp_path / "memo.yaml").write_text(old)
    result = CliRunner().invoke(app, ["validate", "--json", str(tmp_path)])
    report = json.loads(result.stdout)
    assert (result.exit_code, [p["message"][:40] for p in report["problems"]]) == (
        6,
        ["nothing can ever write field 'secret': n"],
    )
    assert [h["message"] for h in report["hints"]] == [NO_WRITES_HINT]


def test_validate_gives_no_hint_for_a_file_that_declares_writes() -> None:
    result = CliRunner().invoke(app, ["validate", "--json", str(CONTRACT)])
    assert json.loads(result.stdout)["hints"] == []
