"""Checks a definition as a whole: the graph, the names it uses, the fields it reads.

Every check appends a located :class:`Problem`; nothing stops at the first one, so an
operator sees all of them in one run.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from opcatflow.engine.contract import SYSTEM_ROLES
from opcatflow.engine.contract_checks import file_problems
from opcatflow.engine.deadline_checks import (
    check_assignees,
    check_clock_stops,
    check_deadlines,
    declared,
)
from opcatflow.engine.definition import FieldType, OpenSpec, TransitionSpec, WorkflowDefinition
from opcatflow.engine.errors import Problem
from opcatflow.engine.expressions import (
    CONTEXT_NAMES,
    ExpressionError,
    budget_problem,
    referenced_names,
)
from opcatflow.engine.privacy_checks import privacy_problems
from opcatflow.engine.register_checks import register_problems
from opcatflow.engine.registry import Registry
from opcatflow.engine.sharing_checks import sharing_problems
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.summary import summary_problems
from opcatflow.engine.yamlsource import Located, Path


def pydantic_problems(doc: Located, err: ValidationError) -> list[Problem]:
    problems: dict[tuple[int, int], Problem] = {}
    for e in err.errors():
        loc: Path = tuple(e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
        elif e["type"] == "missing":
            message = f"missing required key {loc[-1]!r}"
            loc = loc[:-1]
        problem = doc.problem(loc, message)
        problems.setdefault((problem.line, problem.column), problem)
    return list(problems.values())


# Names a definition cannot be compiled without: the machine needs its states, the registry
# must hold its guards and actions. In compatibility mode only these stay errors.
_FATAL_KINDS = frozenset({"guard", "action", "source state", "destination state"})


class _Checker:
    def __init__(
        self, doc: Located, wf: WorkflowDefinition, registry: Registry, *, compat: bool
    ) -> None:
        self.compat = compat
        self.doc = doc
        self.wf = wf
        self.registry = registry
        self.problems: list[Problem] = []
        self.fatal: list[Problem] = []
        self.roles = set(wf.roles) | SYSTEM_ROLES

    def add(self, loc: Path, message: str, *, fatal: bool = False) -> None:
        problem = self.doc.problem(loc, message)
        self.problems.append(problem)
        if fatal:
            self.fatal.append(problem)

    def run(self) -> list[Problem]:
        self.check_fields()
        self.check_states()
        self.check_transitions()
        self.check_graph()
        self.check_start()
        check_deadlines(self)
        check_clock_stops(self)
        check_assignees(self)
        self.check_notifications()
        self.problems.extend(summary_problems(self.doc, self.wf))
        self.problems.extend(privacy_problems(self.doc, self.wf))
        if not self.compat:  # rules of the data contract, newer than some stored copies
            self.problems.extend(file_problems(self.doc, self.wf, self.registry))
            self.problems.extend(sharing_problems(self.doc, self.wf))
            self.problems.extend(register_problems(self.doc, self.wf))
        return sorted(self.problems, key=lambda p: (p.line, p.column))

    def check_name(self, loc: Path, kind: str, name: str, known: Iterable[str]) -> bool:
        known = list(known)
        if name in known:
            return True
        self.add(
            loc, f"unknown {kind} {name!r}{did_you_mean(name, known)}", fatal=kind in _FATAL_KINDS
        )
        return False

    def check_guard(self, loc: Path, name: str) -> None:
        known = self.registry.guards
        if name in known:
            return
        self.add(
            loc,
            f"unknown guard {name!r}{did_you_mean(name, known)}: guards are Python functions "
            "in the registry (the bundled ones in workflows/rules.py), not part of the "
            f"definition; registered: {', '.join(sorted(known)) or 'none'} (for a condition "
            "over the data, use 'when')",
            fatal=True,  # a stored copy naming a guard the registry lacks cannot run either
        )

    def check_fields(self) -> None:
        # Who may read personal values: declared roles only (the scheduler reads nothing).
        for j, role in enumerate(self.wf.personal_visible_to):
            self.check_name(("personal_visible_to", j), "role", role, self.wf.roles)
        for name, spec in self.wf.fields.items():
            if spec.visible_to is None:
                continue
            if not (spec.personal or spec.personal_parts):
                self.add(
                    ("fields", name, "visible_to"),
                    f"field {name!r} is not personal: 'visible_to' is only for personal fields",
                )
            for j, role in enumerate(spec.visible_to):
                self.check_name(("fields", name, "visible_to", j), "role", role, self.wf.roles)

    def check_states(self) -> None:
        initials = [n for n, s in self.wf.states.items() if s.initial]
        if not initials:
            message = "no initial state: mark exactly one state 'initial: true'"
            self.add(("states",), message, fatal=True)
        for extra in initials[1:]:
            self.add(
                ("states", extra, "initial"),
                f"several initial states ({', '.join(initials)}): keep exactly one",
            )
        for name, state in self.wf.states.items():
            if state.initial and state.final:
                self.add(("states", name, "final"), f"state {name!r} is both initial and final")
            for i, action in enumerate(state.on_enter):
                self.check_name(
                    ("states", name, "on_enter", i), "action", action, self.registry.actions
                )

    def check_transitions(self) -> None:
        seen: dict[tuple[str, str], tuple[int, TransitionSpec]] = {}
        states = self.wf.states
        for i, t in enumerate(self.wf.transitions):
            at: Path = ("transitions", i)
            if t.source != "*":
                for j, src in enumerate(t.sources):
                    loc = (*at, "source", j) if isinstance(t.source, list) else (*at, "source")
                    if self.check_name(loc, "source state", src, states) and states[src].final:
                        self.add(loc, f"transition {t.trigger!r} leaves final state {src!r}")
            if t.dest is not None:
                self.check_name((*at, "dest"), "destination state", t.dest, states)
            for j, role in enumerate(t.roles):
                self.check_name((*at, "roles", j), "role", role, self.roles)
            for j, guard in enumerate(t.guards):
                self.check_guard((*at, "guards", j), guard)
            for j, action in enumerate(t.actions):
                self.check_name((*at, "actions", j), "action", action, self.registry.actions)
            for j, name in enumerate(t.requires):
                self.check_name((*at, "requires", j), "field", name, self.wf.fields)
            if t.when is not None:
                self.check_expression((*at, "when"), t.when)
            for j, spec in enumerate(t.opens):
                self.check_open((*at, "opens", j), spec)
            for src in self.expand(t):
                key = (t.trigger, src)
                if key in seen:
                    first_index, first = seen[key]
                    if not (first.guards or first.when) and set(first.roles) & set(t.roles):
                        line = self.doc.where(("transitions", first_index))[0]
                        self.add(
                            at,
                            f"trigger {t.trigger!r} from {src!r} is also declared at line "
                            f"{line} with no guard or 'when' to tell them apart, so this one "
                            "can never apply",
                        )
                else:
                    seen[key] = (i, t)

    def check_open(self, loc: Path, spec: OpenSpec) -> None:
        extra: set[str] = set()
        if spec.for_each is not None:
            field = self.wf.fields.get(spec.for_each)
            if field is None or field.type is not FieldType.LIST:
                self.add((*loc, "for_each"), f"for_each needs a list field, not {spec.for_each!r}")
            extra.add("item")
        if spec.role is not None:
            self.check_name((*loc, "role"), "role", spec.role, self.roles)
        for name, source in spec.data.items():
            self.check_expression((*loc, "data", name), source, extra)

    def check_expression(self, loc: Path, source: str, extra: set[str] | None = None) -> None:
        try:
            names = referenced_names(source)
        except ExpressionError as err:
            self.add(loc, str(err), fatal=True)
            return
        known = set(self.wf.fields) | CONTEXT_NAMES | {"data"} | (extra or set())
        for name in sorted(names - known):
            self.add(loc, f"expression reads undeclared field {name!r}{did_you_mean(name, known)}")
        problem = budget_problem(source, frozenset(self.wf.fields))
        if problem is not None:
            self.add(loc, problem)

    def expand(self, t: TransitionSpec) -> list[str]:
        if t.source == "*":
            return [n for n, s in self.wf.states.items() if not s.final]
        return [s for s in t.sources if s in self.wf.states]

    def check_graph(self) -> None:
        states = self.wf.states
        initial = next((n for n, s in states.items() if s.initial), None)
        exits: dict[str, set[str]] = {n: set() for n in states}
        for t in self.wf.transitions:
            if t.dest is None or t.dest not in states:
                continue
            for src in self.expand(t):
                if src != t.dest:
                    exits[src].add(t.dest)
        if initial is not None:
            reached, frontier = {initial}, [initial]
            while frontier:
                for nxt in exits[frontier.pop()] - reached:
                    reached.add(nxt)
                    frontier.append(nxt)
            for name in states:
                if name not in reached:
                    self.add(("states", name), f"state {name!r} is unreachable from {initial!r}")
        for name, state in states.items():
            if not state.final and not exits[name]:
                self.add(
                    ("states", name),
                    f"state {name!r} is not final and has no transition out of it",
                )

    def check_start(self) -> None:
        for j, role in enumerate(self.wf.start.roles or []):
            self.check_name(("start", "roles", j), "role", role, self.roles)
        for j, name in enumerate(self.wf.start.requires):
            self.check_name(("start", "requires", j), "field", name, self.wf.fields)

    def check_notifications(self) -> None:
        triggers = {t.trigger for t in self.wf.transitions}
        deadlines = {d.id for _, d, _ in declared(self.wf)}
        for i, n in enumerate(self.wf.notifications):
            at: Path = ("notifications", i)
            if n.on.deadline is not None and n.on.at == "due" and not self.compat:
                self.add(
                    (*at, "on", "at"),
                    "a message for an overdue deadline is one of its 'overdue_alerts' (sent "
                    "until it is met, to the case's assignees or these roles): move it there, "
                    "e.g. {after: 0 days, to: [...], template: " + n.template + "}",
                )
            if n.on.enter is not None:
                self.check_name((*at, "on", "enter"), "state", n.on.enter, self.wf.states)
            if n.on.transition is not None:
                self.check_name((*at, "on", "transition"), "trigger", n.on.transition, triggers)
            if n.on.deadline is not None:
                self.check_name((*at, "on", "deadline"), "deadline", n.on.deadline, deadlines)
            for j, to in enumerate(n.to):
                if isinstance(to, str):
                    self.check_name((*at, "to", j), "role", to, self.roles)
                    continue
                if to.role is not None:
                    self.check_name((*at, "to", j, "role"), "role", to.role, self.roles)
                if to.assignees is not None:
                    self.check_text_field((*at, "to", j, "assignees"), to.assignees, lists=True)
                if to.address is not None:
                    self.check_text_field((*at, "to", j, "address"), to.address, lists=False)

    def check_text_field(self, loc: Path, name: str, *, lists: bool) -> None:
        if not self.check_name(loc, "field", name, self.wf.fields):
            return
        spec = self.wf.fields[name]
        text = (FieldType.STRING, FieldType.TEXT)
        if spec.type in text or (lists and spec.type is FieldType.LIST and spec.items in text):
            return
        wanted = "text or a list of text" if lists else "text"
        self.add(loc, f"field {name!r} is {spec.type.value}, not {wanted}")


def check_definition(
    doc: Located, wf: WorkflowDefinition, registry: Registry, *, compat: bool = False
) -> list[Problem]:
    """Every cross-reference and graph problem of one parsed definition, in file order.

    ``compat``: a stored copy, checked only by the rules of the format it was stored under.
    """
    return _Checker(doc, wf, registry, compat=compat).run()


def check_stored_definition(
    doc: Located, wf: WorkflowDefinition, registry: Registry
) -> tuple[list[Problem], list[Problem]]:
    """The checks of compatibility mode, for a definition the database kept: ``(errors,
    tolerated)``. Errors are the problems it cannot run with (an unknown state, guard or
    action, an expression that does not parse); every other problem, such as one found by a
    rule added to the format after the definition was stored, is tolerated. The data
    contract's rules, newer than some stored copies, are not checked at all."""
    checker = _Checker(doc, wf, registry, compat=True)
    problems = checker.run()
    fatal = set(map(id, checker.fatal))
    return [p for p in problems if id(p) in fatal], [p for p in problems if id(p) not in fatal]
