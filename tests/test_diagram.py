"""Diagrams: Mermaid and DOT structure, and the committed docs/diagrams pages stay current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opcatflow.engine import CompiledWorkflow, compile_text, load_catalog
from opcatflow.engine.diagram import ANY, doc_pages, dot, edge_label, edges, markdown, mermaid
from opcatflow.workflows import BUNDLED, registry

DOCS = Path(__file__).resolve().parents[1] / "docs" / "diagrams"

SMALL = """
id: small
version: 2
title: 'Small: a test; with punctuation'
roles: {clerk: Clerk, boss: Boss}
fields:
  ok: {type: boolean}
states:
  draft: {initial: true, label: 'Draft: new'}
  review: {label: Under review}
  done: {final: true}
transitions:
  - {trigger: submit, source: draft, dest: review, roles: [clerk]}
  - {trigger: approve, source: review, dest: done, roles: [boss], when: "ok == true"}
  - {trigger: note, source: '*', roles: [clerk, boss]}
  - {trigger: cancel, source: '*', dest: done, roles: [boss]}
"""


@pytest.fixture(scope="module")
def small() -> CompiledWorkflow:
    return compile_text(SMALL, "small.yaml", registry)


@pytest.fixture(scope="module")
def complaint() -> CompiledWorkflow:
    return load_catalog([BUNDLED], registry).get("complaint")


def test_mermaid_is_a_state_diagram_with_its_title_first(small: CompiledWorkflow) -> None:
    lines = mermaid(small).splitlines()
    assert lines[:3] == ["---", "title: Small\ua789 a test, with punctuation (small v2)", "---"]
    assert lines[3] == "stateDiagram-v2"


def test_mermaid_enters_the_initial_state_and_leaves_from_each_final(
    small: CompiledWorkflow,
) -> None:
    lines = [line.strip() for line in mermaid(small).splitlines()]
    assert "[*] --> draft" in lines
    assert [line for line in lines if line.endswith("--> [*]")] == ["done --> [*]"]


def test_mermaid_labels_transitions_with_trigger_roles_and_guards(
    small: CompiledWorkflow,
) -> None:
    lines = [line.strip() for line in mermaid(small).splitlines()]
    assert "draft --> review : submit (clerk)" in lines
    assert "review --> done : approve (boss) [condition]" in lines


def test_mermaid_draws_star_sources_from_one_any_state(small: CompiledWorkflow) -> None:
    lines = [line.strip() for line in mermaid(small).splitlines()]
    assert f'state "any non-final state" as {ANY}' in lines
    assert f"{ANY} --> done : cancel (boss)" in lines
    assert f"{ANY} --> {ANY} : note (clerk, boss)" in lines


def test_mermaid_descriptions_hold_no_colon_or_semicolon(small: CompiledWorkflow) -> None:
    # Mermaid ends a description at ':' or ';' - only the separator colon may remain.
    for line in mermaid(small).splitlines()[4:]:
        assert line.count(":") <= 1, line
        assert ";" not in line, line


def test_mermaid_marks_named_guards_of_the_complaint_workflow(
    complaint: CompiledWorkflow,
) -> None:
    text = mermaid(complaint)
    assert "assessed --> acting : inform_management (head) [shares for share_with_management]" in (
        text
    )
    assert (
        "assessed --> acting : refer (head) [referral_body_known, condition, shares for refer]"
        in text
    )
    assert "follow_up --> closed : close (head) [complainant_told_limits]" in text


def test_every_declared_transition_has_an_edge(complaint: CompiledWorkflow) -> None:
    triggers = {spec.trigger for _, _, spec in edges(complaint)}
    assert {t.trigger for t in complaint.definition.transitions} == triggers


def test_edge_label_lists_guards_then_condition() -> None:
    wf = compile_text(SMALL, "small.yaml", registry)
    approve = next(t for t in wf.definition.transitions if t.trigger == "approve")
    assert edge_label(approve) == "approve (boss) [condition]"


def test_dot_is_a_digraph_with_start_point_and_double_bordered_finals(
    small: CompiledWorkflow,
) -> None:
    text = dot(small)
    assert text.startswith('digraph "small" {\n')
    assert text.rstrip().endswith("}")
    assert '"__start__" -> "draft";' in text
    assert '"done" [label="done", peripheries=2];' in text
    assert '"draft" -> "review" [label="submit (clerk)"];' in text


def test_dot_dashes_guarded_edges(small: CompiledWorkflow) -> None:
    assert '"review" -> "done" [label="approve (boss) [condition]", style=dashed];' in dot(small)


def test_dot_edges_count_matches_edges(complaint: CompiledWorkflow) -> None:
    arrows = re.findall(r'^    "\w+" -> "\w+" \[', dot(complaint), flags=re.MULTILINE)
    assert len(list(edges(complaint))) == len(arrows)


def test_markdown_page_embeds_the_mermaid_diagram(small: CompiledWorkflow) -> None:
    page = markdown(small)
    assert f"```mermaid\n{mermaid(small)}```\n" in page
    assert "| `cancel` |  | any non-final state | `done` | `boss` |" in page


def test_committed_diagram_docs_are_current() -> None:
    if not DOCS.is_dir():
        pytest.skip("not running from a checkout (no docs/diagrams)")
    expected = doc_pages(load_catalog([BUNDLED], registry).latest())
    actual = {p.name: p.read_text(encoding="utf-8") for p in DOCS.glob("*.md")}
    assert expected == actual, (
        "docs/diagrams is out of date: run `opcatflow diagram --write-docs docs/diagrams` "
        "from the repository root (and delete pages of removed workflows)"
    )


PARENT = """
id: parent
version: 1
title: Parent
roles: {clerk: Clerk}
start: {writes: [items]}
fields:
  items: {type: list, items: string}
states:
  open: {initial: true}
  done: {final: true}
transitions:
  - trigger: finish
    source: open
    dest: done
    roles: [clerk]
    opens:
      - {workflow: child, for_each: items, data: {text: item}}
"""
CHILD = """
id: child
version: 1
title: Child
roles: {clerk: Clerk}
start: {writes: [text]}
fields:
  text: {type: string}
states:
  open: {initial: true}
  done: {final: true}
transitions:
  - {trigger: finish, source: open, dest: done, roles: [clerk]}
"""


def test_transitions_that_open_children_say_so(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text(PARENT)
    (tmp_path / "child.yaml").write_text(CHILD)
    parent = load_catalog([tmp_path], registry).get("parent")
    assert "open --> done : finish (clerk) / opens child per items" in mermaid(parent)
    assert "| Opens |" in markdown(parent)
    assert "| Opens |" not in markdown(load_catalog([tmp_path], registry).get("child"))
