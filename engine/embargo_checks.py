"""``validate`` checks of ``embargoes`` (docs/definitions.md, "Embargoes"): everything a
block names exists, its flag is a boolean that the roles it keeps out cannot write, and no
deadline or summary shows an embargoed value without the block saying so."""

from __future__ import annotations

from collections.abc import Iterable

from opcatflow.engine.definition import FieldType, WorkflowDefinition
from opcatflow.engine.errors import Problem
from opcatflow.engine.expressions import ExpressionError, referenced_names
from opcatflow.engine.scopes import watched_fields
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.yamlsource import Located, Path


def _deadline_ids(wf: WorkflowDefinition) -> dict[str, set[str]]:
    """Every deadline id -> the fields its due date depends on."""
    found: dict[str, set[str]] = {}
    specs = [*(d for s in wf.states.values() for d in s.deadlines), *wf.deadlines]
    for spec in specs:
        try:
            found[spec.id] = watched_fields(spec)
        except ValueError:  # a due date that does not parse: the deadline checks say so
            found[spec.id] = set()
    return found


def embargo_problems(doc: Located, wf: WorkflowDefinition) -> list[Problem]:
    problems: list[Problem] = []

    def unknown(loc: Path, kind: str, name: str, known: Iterable[str]) -> bool:
        known = list(known)
        if name in known:
            return False
        problems.append(doc.problem(loc, f"unknown {kind} {name!r}{did_you_mean(name, known)}"))
        return True

    if not wf.embargoes:
        return problems
    deadlines = _deadline_ids(wf)
    seen: set[str] = set()
    for i, embargo in enumerate(wf.embargoes):
        at: Path = ("embargoes", i)
        if embargo.id in seen:
            problems.append(doc.problem((*at, "id"), f"embargo {embargo.id!r} is declared twice"))
        seen.add(embargo.id)
        for j, role in enumerate(embargo.from_roles):
            unknown((*at, "from_roles", j), "role", role, wf.roles)
        for j, state in enumerate(embargo.while_in):
            unknown((*at, "while_in", j), "state", state, wf.states)
        flag = wf.fields.get(embargo.flag)
        if not unknown((*at, "flag"), "field", embargo.flag, wf.fields):
            assert flag is not None
            if flag.type is not FieldType.BOOLEAN:
                problems.append(
                    doc.problem(
                        (*at, "flag"),
                        f"flag {embargo.flag!r} is {flag.type.value}: an embargo's flag is a "
                        "boolean field (the embargo holds while it is true)",
                    )
                )
            writers = flag.write_roles
            if writers is None or set(writers) & set(embargo.from_roles):
                problems.append(
                    doc.problem(
                        (*at, "flag"),
                        f"flag {embargo.flag!r} must declare write_roles without the roles the "
                        f"embargo keeps out ({', '.join(embargo.from_roles)}): whoever may "
                        "clear it may lift the embargo",
                    )
                )
        embargoed = set(embargo.fields)
        for j, name in enumerate(embargo.fields):
            if unknown((*at, "fields", j), "field", name, wf.fields):
                continue
            if name == wf.summary_field:
                problems.append(
                    doc.problem(
                        (*at, "fields", j),
                        f"field {name!r} is the summary_field: summaries are shown in every "
                        "list and calendar, so it cannot be embargoed",
                    )
                )
        for j, name in enumerate(embargo.deadlines):
            unknown((*at, "deadlines", j), "deadline", name, deadlines)
        problems.extend(_children_problems(doc, wf, i, embargoed))
        for name, watched in deadlines.items():
            if watched & embargoed and name not in embargo.deadlines:
                fields = ", ".join(sorted(watched & embargoed))
                problems.append(
                    doc.problem(
                        (*at, "deadlines"),
                        f"deadline {name!r} is counted from {fields}, which the embargo "
                        "withholds: its due date would reveal them; list it in 'deadlines'",
                    )
                )
    return problems


def _children_problems(
    doc: Located, wf: WorkflowDefinition, index: int, embargoed: set[str]
) -> list[Problem]:
    """A child opened while the embargo may hold must not be given an embargoed value: the
    child's workflow knows no embargo, so its views and messages would show it."""
    embargo = wf.embargoes[index]
    finals = {n for n, s in wf.states.items() if s.final}
    problems = []
    for i, t in enumerate(wf.transitions):
        sources = set(wf.states) - finals if t.source == "*" else set(t.sources)
        if not t.opens or not sources & set(embargo.while_in):
            continue
        for j, spec in enumerate(t.opens):
            for name, source in spec.data.items():
                try:
                    read = referenced_names(source)
                except ExpressionError:
                    continue  # an expression that does not parse: the transition checks say so
                leaked = sorted(read & embargoed)
                if leaked:
                    problems.append(
                        doc.problem(
                            ("transitions", i, "opens", j, "data", name),
                            f"{t.trigger} gives its {spec.workflow} child {', '.join(leaked)} "
                            f"while embargo {embargo.id!r} may hold: the child would show "
                            "what the embargo withholds",
                        )
                    )
    return problems
