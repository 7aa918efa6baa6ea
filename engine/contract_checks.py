"""``validate`` checks of the data contract: the names it uses, alternatives that must agree,
and fields or requirements nothing can ever write.

The per-file checks run from :mod:`opcatflow.engine.validation`; the checks that need the
workflows opening this one (their ``opens`` write into its instances) run over a catalog
from :mod:`opcatflow.engine.loader`. Neither applies to a stored copy (compatibility mode).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from opcatflow.engine.contract import (
    NO_WRITES_HINT,
    SYSTEM_ROLES,
    start_writes,
    transition_writes,
)
from opcatflow.engine.definition import FieldType, TransitionSpec, WorkflowDefinition
from opcatflow.engine.errors import Problem
from opcatflow.engine.registry import Registry
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.yamlsource import Located, Path

if TYPE_CHECKING:
    from opcatflow.engine.compiled import CompiledWorkflow


def sources(wf: WorkflowDefinition, t: TransitionSpec) -> list[str]:
    if t.source == "*":
        return [n for n, s in wf.states.items() if not s.final]
    return [s for s in t.sources if s in wf.states]


class _FileChecks:
    def __init__(self, doc: Located, wf: WorkflowDefinition, registry: Registry) -> None:
        self.doc = doc
        self.wf = wf
        self.registry = registry
        self.problems: list[Problem] = []

    def add(self, loc: Path, message: str) -> None:
        self.problems.append(self.doc.problem(loc, message))

    def names(self, loc: Path, kind: str, names: Iterable[str], known: Iterable[str]) -> None:
        known = list(known)
        for j, name in enumerate(names):
            if name not in known:
                self.add((*loc, j), f"unknown {kind} {name!r}{did_you_mean(name, known)}")

    def run(self) -> list[Problem]:
        wf = self.wf
        fields = wf.fields
        self.names(("start", "writes"), "field", wf.start.writes or (), fields)
        for i, t in enumerate(wf.transitions):
            self.names(("transitions", i, "writes"), "field", t.writes or (), fields)
        for name, spec in fields.items():
            self.names(("fields", name, "write_roles"), "role", spec.write_roles or (), wf.roles)
            self.check_writers_read(name)
        self.check_owner()
        self.check_alternatives()
        self.check_action_writes()
        return self.problems

    def check_writers_read(self, name: str) -> None:
        spec = self.wf.fields[name]
        parts = spec.personal_parts
        if not (spec.personal or parts):
            return
        readers = spec.visible_to or self.wf.personal_visible_to
        what = (
            f"the personal field {name!r}, so it may never write it"
            if spec.personal
            else f"the personal sub-fields of {name!r} ({', '.join(sorted(parts))}), so it may "
            "never write them"
        )
        for j, role in enumerate(spec.write_roles or ()):
            if role in self.wf.roles and role not in readers:
                self.add(
                    ("fields", name, "write_roles", j),
                    f"role {role!r} may not read {what}: add it to the field's 'visible_to' "
                    "(or 'personal_visible_to')",
                )

    def check_owner(self) -> None:
        owner = self.wf.owner
        if owner is None:
            return
        self.names(("owner", "roles"), "role", owner.roles, self.wf.roles)
        spec = self.wf.fields.get(owner.field)
        if spec is None:
            known = self.wf.fields
            self.add(
                ("owner", "field"),
                f"unknown field {owner.field!r}{did_you_mean(owner.field, known)}",
            )
            return
        if spec.type not in (FieldType.STRING, FieldType.TEXT):
            self.add(
                ("owner", "field"),
                f"the owner field {owner.field!r} is {spec.type.value}: it must be text "
                "(an actor id)",
            )
        for j, role in enumerate(spec.write_roles or ()):
            if role in owner.roles:
                self.add(
                    ("fields", owner.field, "write_roles", j),
                    f"role {role!r} is an owner role: it may never write the owner field "
                    f"{owner.field!r}",
                )

    def check_alternatives(self) -> None:
        """Alternatives of one (trigger, source) must require and write the same fields:
        different roles alone never tell them apart, and a copy that lost a ``requires``
        would let one role skip a data requirement."""
        first: dict[tuple[str, str], int] = {}
        alternatives: dict[int, list[int]] = {}
        transitions = self.wf.transitions
        for i, t in enumerate(transitions):
            for src in sources(self.wf, t):
                j = first.setdefault((t.trigger, src), i)
                if j != i:
                    alternatives.setdefault(i, []).append(j)
                    alternatives.setdefault(j, []).append(i)
        for i, t in enumerate(transitions):
            others = alternatives.get(i, [])
            if t.differs is not None and not others:
                self.add(
                    ("transitions", i, "differs"),
                    f"'differs' but no other transition has trigger {t.trigger!r} from the "
                    "same source",
                )
            earlier = sorted(j for j in set(others) if j < i)
            for j in earlier:
                o = transitions[j]
                if t.differs is not None or o.differs is not None:
                    continue
                what = _difference(o, t)
                if what:
                    line = self.doc.where(("transitions", j))[0]
                    self.add(
                        ("transitions", i, "trigger"),
                        f"trigger {t.trigger!r} is also declared at line {line} from the same "
                        f"source with other {what}: alternatives of one trigger must require and "
                        "write the same fields (different roles alone never tell them apart); "
                        "make them identical, or say why with 'differs: <reason>'",
                    )
                    break

    def check_action_writes(self) -> None:
        declared = self.registry.action_writes
        for i, t in enumerate(self.wf.transitions):
            allowed = transition_writes(t)
            for j, action in enumerate(t.actions):
                outside = sorted(declared.get(action, frozenset()) - allowed)
                if outside and action in self.registry.actions:
                    self.add(
                        ("transitions", i, "actions", j),
                        f"action {action!r} writes {', '.join(outside)}, outside what "
                        f"{t.trigger!r} writes: add {'them' if len(outside) > 1 else 'it'} to "
                        "the transition's 'writes'",
                    )


def _difference(a: TransitionSpec, b: TransitionSpec) -> str:
    parts = []
    if set(a.requires) != set(b.requires):
        parts.append("'requires'")
    if set(a.writes or ()) != set(b.writes or ()):
        parts.append("'writes'")
    return " and ".join(parts)


def file_problems(doc: Located, wf: WorkflowDefinition, registry: Registry) -> list[Problem]:
    """The data-contract problems one definition file shows on its own."""
    return _FileChecks(doc, wf, registry).run()


def no_writes_hint(doc: Located) -> Problem | None:
    """A hint, not a problem, for a definition document (valid or not) that declares
    ``writes`` on no transition and not on ``start``: a file written before write sets
    existed, which now writes only its ``requires``. ``validate`` prints it for an operator
    migrating such a file."""
    raw = doc.value
    if not isinstance(raw, dict) or not isinstance(raw.get("transitions"), list):
        return None
    start = raw.get("start")
    steps = [start, *raw["transitions"]]
    if any(isinstance(step, dict) and "writes" in step for step in steps):
        return None
    return doc.problem(("transitions",), f"hint: {NO_WRITES_HINT}")


# -- over a catalog: who can ever write each field --------------------------------------------


def catalog_problems(
    workflows: Iterable[CompiledWorkflow], everyone: Iterable[CompiledWorkflow], registry: Registry
) -> list[Problem]:
    """Problems of ``workflows`` that need the others: ``opens`` entries writing into a child
    outside what it allows, and fields or requirements nothing can ever write. ``everyone``
    holds every workflow whose ``opens`` may write into them (``workflows`` included)."""
    everyone = list(everyone)
    problems: list[Problem] = []
    for wf in workflows:
        problems.extend(_open_problems(wf, everyone))
        if wf.compat:
            continue
        opened = {
            name
            for parent in everyone
            for t in parent.definition.transitions
            for o in t.opens
            if o.workflow == wf.id
            for name in o.data
        }
        problems.extend(_unwritten(wf, opened, registry))
    return problems


def _find(everyone: list[CompiledWorkflow], workflow: str) -> CompiledWorkflow | None:
    found = [w for w in everyone if w.id == workflow]
    return max(found, key=lambda w: w.version) if found else None


def _open_problems(wf: CompiledWorkflow, everyone: list[CompiledWorkflow]) -> Iterator[Problem]:
    for i, t in enumerate(wf.definition.transitions):
        for j, spec in enumerate(t.opens):
            child = _find(everyone, spec.workflow)
            if child is None:
                continue  # reported by check_links
            loc: Path = ("transitions", i, "opens", j)
            fields = child.definition.fields
            for k, name in enumerate(spec.writes or ()):
                if name not in fields:
                    message = f"workflow {child.id!r} has no field {name!r}"
                    yield _at(wf, (*loc, "writes", k), message + did_you_mean(name, fields))
                elif name not in spec.data:
                    message = f"{name!r} is in 'writes' but 'data' does not set it"
                    yield _at(wf, (*loc, "writes", k), message)
            allowed = child.start_writes
            if allowed is None:
                continue
            for name in spec.data:
                if name in fields and name not in allowed and name not in (spec.writes or ()):
                    yield _at(
                        wf,
                        (*loc, "data", name),
                        f"{child.id!r} does not let a start write {name!r}: add it to this "
                        "entry's 'writes' (or to the child's 'start: writes')",
                    )


def _unwritten(wf: CompiledWorkflow, opened: set[str], registry: Registry) -> Iterator[Problem]:
    d = wf.definition
    rules = wf.field_rules
    people = set(d.roles) - SYSTEM_ROLES

    def by_caller(name: str, roles: Iterable[str]) -> bool:
        return any(r in people and name not in rules.unwritable(r) for r in roles)

    def by_actions(actions: Iterable[str]) -> set[str]:
        return {n for a in actions for n in registry.action_writes.get(a, ())}

    at_start = {n for n in start_writes(d) if by_caller(n, wf.start_roles)} | opened
    at_start |= by_actions(d.states[wf.initial].on_enter)
    entered = {s: by_actions(spec.on_enter) for s, spec in d.states.items()}
    # what each transition's caller may write; then with its actions and the state it enters
    callers = [{n for n in transition_writes(t) if by_caller(n, t.roles)} for t in d.transitions]
    written = [
        callers[k] | by_actions(t.actions) | (entered[t.dest] if t.dest else set())
        for k, t in enumerate(d.transitions)
    ]
    anywhere = at_start.union(*written)
    for name in d.fields:
        if name not in anywhere:
            yield _at(
                wf,
                ("fields", name),
                f"nothing can ever write field {name!r}: no start, transition, action or "
                "opening writes it (add it to the 'writes' of a transition, or of 'start')",
            )
    before = _reaching(d)
    for i, t in enumerate(d.transitions):
        for j, name in enumerate(t.requires):
            if name not in anywhere or name in at_start or name in callers[i]:
                continue
            for src in sources(d, t):
                earlier = before[src]
                if not any(
                    name in written[k]
                    and any(s in earlier for s in sources(d, w))
                    and (w.dest is None or w.dest in earlier)
                    for k, w in enumerate(d.transitions)
                ):
                    yield _at(
                        wf,
                        ("transitions", i, "requires", j),
                        f"{t.trigger!r} from {src!r} requires {name!r}, but nothing can write "
                        f"it before then (no start, earlier transition, action or opening; its "
                        "roles may not write it)",
                    )
                    break


def _reaching(d: WorkflowDefinition) -> dict[str, set[str]]:
    """State -> the states from which it can be reached (itself included)."""
    into: dict[str, set[str]] = {s: set() for s in d.states}
    for t in d.transitions:
        if t.dest is not None and t.dest in into:
            for src in sources(d, t):
                into[t.dest].add(src)
    result = {}
    for state in d.states:
        seen, frontier = {state}, [state]
        while frontier:
            for prev in into[frontier.pop()] - seen:
                seen.add(prev)
                frontier.append(prev)
        result[state] = seen
    return result


def _at(wf: CompiledWorkflow, loc: Path, message: str) -> Problem:
    if wf.doc is None:
        return Problem(f"<{wf.id} v{wf.version}>", 1, 1, message)
    return wf.doc.problem(loc, message)
