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

from opcatflow.engine.data import DataSchema
from opcatflow.engine.definition import TransitionSpec, WorkflowDefinition
from opcatflow.engine.errors import Problem
from opcatflow.engine.expressions import CONTEXT_NAMES, compile_guard
from opcatflow.engine.registry import GuardRefusal, GuardRule, Registry, RuleContext
from opcatflow.engine.yamlsource import Located


@dataclass
class Cursor:
    """The model ``transitions`` moves during one call: a state and the rule context."""

    state: str
    ctx: RuleContext
    failures: list[tuple[str, str]] = field(default_factory=list)
    applied: Option | None = None


@dataclass(frozen=True)
class ChildSpec:
    """A compiled ``opens`` entry: which workflow, under which role, with which data."""

    workflow: str
    role: str | None
    data: tuple[tuple[str, Callable[..., Any]], ...]
    for_each: str | None
    reason: str | None

    def children(self, ctx: RuleContext) -> list[dict[str, Any]]:
        """The data of each child to open, evaluated over the parent's new data."""
        names: dict[str, Any] = {**ctx.data, "data": ctx.data, "actor": ctx.actor}
        names.update(role=ctx.role, trigger=ctx.trigger, now=ctx.now)
        items = (ctx.data.get(self.for_each) or []) if self.for_each else [None]
        result = []
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
    when: Callable[..., Any] | None
    field_names: tuple[str, ...]
    opens: tuple[ChildSpec, ...] = ()

    def admit(self, cursor: Cursor) -> bool:
        """Check role, required fields, guards and expression; record why not on the cursor."""
        ctx = cursor.ctx
        if ctx.role not in self.roles:
            cursor.failures.append(("role", f"role {ctx.role!r} may not do this"))
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


def _run_actions(actions: tuple[Callable[[RuleContext], None], ...]) -> Callable[[Any], None]:
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
    content = definition.model_dump(mode="json", exclude_defaults=True)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class CompiledWorkflow:
    """One definition version, ready to run. Built once per (id, version) and shared."""

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
        states = definition.states
        self.initial = next(name for name, s in states.items() if s.initial)
        self.finals = frozenset(name for name, s in states.items() if s.final)
        self.start_roles = frozenset(definition.start.roles or definition.roles)
        self.triggers = frozenset(t.trigger for t in definition.transitions)
        self.options: dict[tuple[str, str], list[Option]] = {}

        # Entering the initial state at start runs its on_enter actions too, as every later
        # entry does: an instance is born in that state (``transitions`` itself does not
        # call on_enter for the initial state, so the engine runs them; see ``Writes``).
        self.on_start = tuple(registry.actions[a] for a in states[self.initial].on_enter)
        field_names = tuple(n for n in definition.fields if n not in CONTEXT_NAMES)
        machine_states = [
            State(name, on_enter=[_run_actions(tuple(registry.actions[a] for a in s.on_enter))])
            if s.on_enter
            else State(name)
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
                    )
                    for o in spec.opens
                ),
            )
            after: Any = [_run_actions(tuple(registry.actions[a] for a in spec.actions))]
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

    def hidden_fields(self, roles: Iterable[str]) -> frozenset[str]:
        """The personal fields none of ``roles`` may read (declared with ``visible_to`` on
        the field, else ``personal_visible_to`` on the workflow)."""
        held = frozenset(roles)
        default = self.definition.personal_visible_to
        return frozenset(
            name
            for name in self.schema.personal
            if held.isdisjoint(self.definition.fields[name].visible_to or default)
        )

    def __repr__(self) -> str:
        return f"<CompiledWorkflow {self.id} v{self.version}>"


def _admitter(option: Option) -> Callable[[Any], bool]:
    def admit(event: Any) -> bool:
        return option.admit(event.model)

    return admit
