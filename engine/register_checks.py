"""``validate`` checks of registers and references.

A register (a workflow declaring ``register:``) must have the lifecycle the engine relies on
when it checks and resolves references: an initial state ``active``, final states
``retired`` and ``merged``, a ``retired_on`` date and a ``merged_into`` reference to its own
entries; and a title field that can name an entry anywhere (required, text, not personal).
A ``ref`` field must name a register that is loaded: that needs the catalog, so it is
checked with the other cross-workflow checks (:func:`ref_problems`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from opcatflow.engine.definition import FieldType, WorkflowDefinition
from opcatflow.engine.errors import Problem
from opcatflow.engine.refs import ACTIVE, MERGED, MERGED_INTO, RETIRED, RETIRED_ON
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.yamlsource import Located, Path

if TYPE_CHECKING:
    from opcatflow.engine.compiled import CompiledWorkflow


def register_problems(doc: Located, wf: WorkflowDefinition) -> list[Problem]:
    """What a register declaration lacks (nothing for a workflow that is not a register)."""
    spec = wf.as_register
    if spec is None:
        return []
    problems: list[Problem] = []

    def add(loc: Path, message: str) -> None:
        problems.append(doc.problem(loc, message))

    title = wf.fields.get(spec.title_field)
    loc: Path = ("register", "title_field")
    if title is None:
        known = wf.fields
        add(loc, f"unknown field {spec.title_field!r}{did_you_mean(spec.title_field, known)}")
    elif title.type is not FieldType.STRING or not title.required or title.personal:
        add(
            loc,
            f"the title field {spec.title_field!r} must be a required string field that is "
            "not personal (it names the entry wherever it is referred to)",
        )
    elif title.confidential:
        add(loc, f"the title field {spec.title_field!r} must not be confidential")
    for state, initial, final in (
        (ACTIVE, True, False),
        (RETIRED, False, True),
        (MERGED, False, True),
    ):
        found = wf.states.get(state)
        want = "the initial state" if initial else "a final state"
        if found is None or found.initial != initial or found.final != final:
            add(("states",), f"a register needs {want} {state!r} (docs/registers.md)")
    merged_into = wf.fields.get(MERGED_INTO)
    if (
        merged_into is None
        or merged_into.type is not FieldType.REF
        or merged_into.register_id != wf.id
    ):
        add(
            ("fields",),
            f"a register needs the field {MERGED_INTO!r} as {{type: ref, register: {wf.id}}}: "
            "the entry a merged one now is",
        )
    retired_on = wf.fields.get(RETIRED_ON)
    if retired_on is None or retired_on.type is not FieldType.DATE:
        add(("fields",), f"a register needs the field {RETIRED_ON!r} (a date): when it was retired")
    return problems


def ref_problems(
    workflows: Iterable[CompiledWorkflow], everyone: Iterable[CompiledWorkflow]
) -> list[Problem]:
    """A ``ref`` naming a register that is not loaded (or a workflow that is no register),
    in each of ``workflows``; ``everyone`` holds the workflows that may be named."""
    registers = {wf.id for wf in everyone if wf.definition.as_register is not None}
    others = {wf.id for wf in everyone} - registers
    return [p for wf in workflows for p in _ref_problems(wf, registers, others)]


def _ref_problems(wf: CompiledWorkflow, registers: set[str], others: set[str]) -> Iterator[Problem]:
    for ref in wf.refs:
        if ref.register in registers:
            continue
        if ref.register in others:
            message = f"workflow {ref.register!r} is not a register (it declares no 'register:')"
        else:
            message = (
                f"unknown register {ref.register!r}{did_you_mean(ref.register, registers)} "
                f"(registers: {', '.join(sorted(registers)) or 'none'})"
            )
        if wf.doc is None:
            yield Problem(f"<{wf.id} v{wf.version}>", 1, 1, message)
        else:
            yield wf.doc.problem(ref.loc, message)
