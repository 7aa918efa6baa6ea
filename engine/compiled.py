"""A validated definition compiled once into lookup tables and a shared ``transitions`` machine.

The machine has no models: instances are plain records, bound to it for one call through a
throwaway cursor (see :mod:`opcatflow.engine.firing`). Building a machine or calling
``add_model`` per instance would cost milliseconds and kilobytes per instance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from transitions import Machine, State

from opcatflow.engine.contract import (
    Writers,
    checks_write_sets,
    field_rules,
    outside_write_set,
    start_writes,
    transition_writes,
    withheld_fields,
    writers,
)
from opcatflow.engine.data import DataSchema
from opcatflow.engine.definition import TransitionSpec, WorkflowDefinition
from opcatflow.engine.errors import Problem, RefusalKind
from opcatflow.engine.expressions import CONTEXT_NAMES, Expression, compile_guard
from opcatflow.engine.refs import ref_fields
from opcatflow.engine.registry import GuardRefusal, GuardRule, Registry, RuleContext
from opcatflow.engine.sandbox import EXPRESSION_LIMITS, BudgetExceeded, shared_budget
from opcatflow.engine.scopes import DeadlineIndex
from opcatflow.engine.yamlsource import Located


@dataclass
class Cursor:
    """The model ``transitions`` moves during one call: a state and the rule context."""

    state: str
    ctx: RuleContext
    failures: list[tuple[RefusalKind, str]] = field(default_factory=list)
    applied: Option | None = None


@dataclass(frozen=True)
class ChildSpec:
    """A compiled ``opens`` entry: which workflow, under which role, with which data."""

    workflow: str
    role: str | None
    data: tuple[tuple[str, Expression], ...]
    for_each: str | None
    reason: str | None
    writes: frozenset[str] = frozenset()  # child fields written beyond the child's start set

    def children(self, ctx: RuleContext) -> list[dict[str, Any]]:
        """The data of each child to open, evaluated over the parent's new data.

        Every expression of every child shares one budget.

        Raises:
            BudgetExceeded: the expressions went past the budget.
        """
        names: dict[str, Any] = {**ctx.data, "data": ctx.data, "actor": ctx.actor}
        names.update(role=ctx.role, trigger=ctx.trigger, now=ctx.now)
        items = (ctx.data.get(self.for_each) or []) if self.for_each else [None]
        result = []
        with shared_budget(EXPRESSION_LIMITS):
            for item in items:
                scope = {**names, "item": item}
                values = {name: expr(**scope) for name, expr in self.data}
                result.append({k: v for k, v in values.items() if v is not None})
        return result


@dataclass(frozen=True)
class Option:
    """One declared transition from one source state, with everything needed to admit it."""

    spec: TransitionSpec
    roles: frozenset[str]
    guards: tuple[GuardRule, ...]
    when: Expression | None
    field_names: tuple[str, ...]
    opens: tuple[ChildSpec, ...] = ()
    writable: frozenset[str] | None = None  # None: any field (a stored copy without writes)
    writers: Writers = field(default_factory=lambda: Writers({}, declared=True), repr=False)

    def admit(self, cursor: Cursor) -> bool:
        """Check role, write set, required fields, guards and expression; record why not on
        the cursor."""
        ctx = cursor.ctx
        if ctx.role not in self.roles:
            cursor.failures.append(("role", f"role {ctx.role!r} may not do this"))
            return False
        if self.writable is not None and not ctx.supplied.keys() <= self.writable:
            outside = ctx.supplied.keys() - self.writable
            cursor.failures.append(
                ("data", outside_write_set(self.spec.trigger, outside, self.writers))
            )
            return False
        missing = [name for name in self.spec.requires if ctx.data.get(name) in (None, "", [])]
        if missing:
            cursor.failures.append(("data", f"missing required field(s): {', '.join(missing)}"))
            return False
        for rule in self.guards:
            try:
                allowed = rule.func(ctx)
            except GuardRefusal as refusal:
                cursor.failures.append(("guard", f"{rule.name}: {refusal.reason}"))
                return False
            except Exception as err:  # a broken rule refuses; it never crashes a transition
                cursor.failures.append(("guard", f"{rule.name} failed: {err!r}"))
                return False
            if not allowed:
                cursor.failures.append(("guard", f"{rule.name}: {rule.reason}"))
                return False
        if self.when is not None:
            try:
                allowed = bool(self.when(**self._names(ctx)))
            except BudgetExceeded as err:
                cursor.failures.append(("guard", f"condition {self.spec.when!r} stopped: {err}"))
                return False
            except Exception as err:
                cursor.failures.append(("guard", f"condition {self.spec.when!r} failed: {err}"))
                return False
            if not allowed:
                cursor.failures.append(("guard", f"condition {self.spec.when!r} is not met"))
                return False
        cursor.applied = self
        return True

    def _names(self, ctx: RuleContext) -> dict[str, Any]:
        names = {name: ctx.data.get(name) for name in self.field_names}
        names.update(
            data=ctx.data, actor=ctx.actor, role=ctx.role, trigger=ctx.trigger, now=ctx.now
        )
        return names


class ActionWroteOutside(Exception):
    """An action changed a field outside the writes it declared in the registry."""

    def __init__(self, action: str, fields: Iterable[str], declared: Iterable[str]) -> None:
        self.action = action
        self.fields = tuple(sorted(fields))
        allowed = ", ".join(sorted(declared)) or "none"
        super().__init__(
            f"action {action!r} changed {', '.join(self.fields)}, outside the writes it "
            f"declares in the registry ({allowed})"
        )


@dataclass(frozen=True, slots=True)
class ActionRun:
    """A registered action, with the writes it may make (``None``: not checked)."""

    name: str
    func: Callable[[RuleContext], None]
    writes: frozenset[str] | None

    def __call__(self, ctx: RuleContext) -> None:
        if self.writes is None:
            self.func(ctx)
            return
        before = _snapshot(ctx.data)
        self.func(ctx)
        data = ctx.data
        changed = {k for k in before.keys() | data.keys() if before.get(k) != data.get(k)}
        if not changed <= self.writes:
            raise ActionWroteOutside(self.name, changed - self.writes, self.writes)


def _snapshot(data: Mapping[str, Any]) -> dict[str, Any]:
    # Two levels deep: an action that appends to a list (or edits a record) in place is
    # caught too; values are JSON, so lists of scalars or of flat objects.
    return {
        k: [dict(i) if isinstance(i, dict) else i for i in v] if isinstance(v, list) else v
        for k, v in data.items()
    }


def _run_actions(actions: tuple[ActionRun, ...]) -> Callable[[Any], None]:
    def run(event: Any) -> None:
        for action in actions:
            action(event.model.ctx)

    return run


def fingerprint(definition: WorkflowDefinition) -> str:
    """SHA-256 of the definition's content (not its formatting or comments).

    Values equal to their default are left out, so a new optional key in the format (whose
    default keeps the old behaviour) changes no stored fingerprint, and writing a default
    out (``required: false``) is the same content as leaving it out.
    """
    content = definition.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class CompiledWorkflow:
    """One definition version, ready to run. Built once per (id, version) and shared.

    ``compat`` marks a definition compiled from the copy kept in the database (a version
    instances are pinned to): rules added to the format later do not apply to it as errors,
    and if it declares ``writes`` nowhere, any transition may write any field (the rule it
    was written under). Definitions from files are strict.
    """

    @cached_property
    def deadlines(self) -> DeadlineIndex:
        """Its deadlines (state-level and workflow-level), indexed by id and by scope."""
        return DeadlineIndex(self.definition)

    def __init__(
        self,
        definition: WorkflowDefinition,
        registry: Registry,
        source: str,
        doc: Located | None = None,
        *,
        compat: bool = False,
        compat_problems: tuple[Problem, ...] = (),
    ) -> None:
        self.definition = definition
        self.source = source
        self.doc = doc  # positions, for checks that need the whole catalog
        # Compiled from the copy the database kept (docs/definitions.md, "Compatibility
        # mode"): rules added to the format after it was stored are not applied as errors.
        self.compat = compat
        self.compat_problems = compat_problems
        self.id = definition.id
        self.version = definition.version
        self.fingerprint = fingerprint(definition)
        self.schema = DataSchema(definition.fields)
        self.refs = ref_fields(definition)  # fields holding register entry ids
        self.checks_writes = checks_write_sets(definition, compat=compat)
        self.start_writes = start_writes(definition) if self.checks_writes else None
        self.field_rules = field_rules(definition)
        self.writers = writers(definition, self.field_rules)
        states = definition.states
        self.initial = next(name for name, s in states.items() if s.initial)
        self.finals = frozenset(name for name, s in states.items() if s.final)
        self.start_roles = frozenset(definition.start.roles or definition.roles)
        self.triggers = frozenset(t.trigger for t in definition.transitions)
        self.options: dict[tuple[str, str], list[Option]] = {}

        # Entering the initial state at start runs its on_enter actions too, as every later
        # entry does: an instance is born in that state (``transitions`` itself does not
        # call on_enter for the initial state, so the engine runs them; see ``Writes``).
        def actions(names: Iterable[str]) -> tuple[ActionRun, ...]:
            return tuple(
                ActionRun(
                    name,
                    registry.actions[name],
                    registry.action_writes.get(name, frozenset()) if self.checks_writes else None,
                )
                for name in names
            )

        self.on_start = actions(states[self.initial].on_enter)
        field_names = tuple(n for n in definition.fields if n not in CONTEXT_NAMES)
        machine_states = [
            State(name, on_enter=[_run_actions(actions(s.on_enter))]) if s.on_enter else State(name)
            for name, s in states.items()
        ]
        self.machine = Machine(
            model=None,
            states=machine_states,
            initial=self.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for spec in definition.transitions:
            sources = (
                [n for n in states if n not in self.finals] if spec.source == "*" else spec.sources
            )
            option = Option(
                spec=spec,
                roles=frozenset(spec.roles),
                guards=tuple(registry.guards[g] for g in spec.guards),
                when=compile_guard(spec.when) if spec.when else None,
                field_names=field_names,
                opens=tuple(
                    ChildSpec(
                        workflow=o.workflow,
                        role=o.role,
                        data=tuple((k, compile_guard(v)) for k, v in o.data.items()),
                        for_each=o.for_each,
                        reason=o.reason,
                        writes=frozenset(o.writes or ()),
                    )
                    for o in spec.opens
                ),
                writable=transition_writes(spec) if self.checks_writes else None,
                writers=self.writers,
            )
            after: Any = [_run_actions(actions(spec.actions))]
            for src in sources:
                self.options.setdefault((src, spec.trigger), []).append(option)
                self.machine.add_transition(
                    spec.trigger,
                    src,
                    spec.dest,  # None: internal transition, no exit or entry
                    conditions=[_admitter(option)],
                    after=after if spec.actions else None,
                )

    def triggers_from(self, state: str) -> list[str]:
        """Triggers declared from ``state``, in declaration order."""
        return list(dict.fromkeys(t for (s, t) in self.options if s == state))

    @cached_property
    def roles(self) -> Mapping[str, str]:
        return self.definition.roles

    def withheld_fields(self, roles: Iterable[str]) -> frozenset[str]:
        """The fields a caller holding ``roles`` may not read: the read rule, the one place
        it is decided (HTTP views, the CLI's ``--role`` and the write checks ask here).

        A personal field is readable by the roles of its ``visible_to``, else of the
        workflow's ``personal_visible_to``; every other field by every role. A caller may
        not write a field it may not read.
        """
        return withheld_fields(self.definition, roles)

    def readable_fields(self, roles: Iterable[str]) -> frozenset[str]:
        """The fields a caller holding ``roles`` may read (see :meth:`withheld_fields`)."""
        return frozenset(self.definition.fields) - self.withheld_fields(roles)

    def __repr__(self) -> str:
        return f"<CompiledWorkflow {self.id} v{self.version}>"


def _admitter(option: Option) -> Callable[[Any], bool]:
    def admit(event: Any) -> bool:
        return option.admit(event.model)

    return admit
