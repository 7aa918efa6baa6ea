"""Which states a deadline spans: its declaration with its scope, and every deadline of a
workflow indexed for the obligation hook and the scheduler (``CompiledWorkflow.deadlines``).
"""

from __future__ import annotations

from dataclasses import dataclass

from opcatflow.engine.definition import DeadlineSpec, WorkflowDefinition
from opcatflow.engine.durations import ENTERED, parse_due
from opcatflow.engine.expressions import CONTEXT_NAMES, referenced_names

INSTANCE = "instance"  # the scope of a deadline spanning the whole instance


def watched_fields(spec: DeadlineSpec) -> set[str]:
    """The data fields a deadline's due date depends on (anchor, published date, and those
    its ``when`` condition reads)."""
    fields = {parse_due(spec.due).anchor, spec.published}
    if spec.when is not None:
        fields |= referenced_names(spec.when) - CONTEXT_NAMES - {"data"}
    return {f for f in fields if f is not None and f != ENTERED}


@dataclass(frozen=True, slots=True)
class Declared:
    """A deadline as the workflow declares it, with the states it spans.

    Attributes:
        states: the scope; ``None`` for the whole instance (every state but the final ones).
        at: where it is declared in the definition (for located problems).
    """

    spec: DeadlineSpec
    states: frozenset[str] | None
    at: tuple[str | int, ...]

    def spans(self, state: str | None, finals: frozenset[str]) -> bool:
        if state is None:
            return False
        if self.states is None:
            return state not in finals
        return state in self.states

    @property
    def scope(self) -> str:
        return INSTANCE if self.states is None else " ".join(sorted(self.states))

    @property
    def obligation(self) -> bool:
        """Overdue, alerted and met (not a milestone)."""
        return self.spec.kind == "obligation"


class DeadlineIndex:
    """The deadlines of one workflow, indexed for the obligation hook and the scheduler.

    Built once per compiled workflow (``CompiledWorkflow.deadlines``).
    """

    def __init__(self, definition: WorkflowDefinition) -> None:
        declared: dict[str, Declared] = {}
        for name, state in definition.states.items():
            for i, spec in enumerate(state.deadlines):
                declared.setdefault(
                    spec.id, Declared(spec, frozenset((name,)), ("states", name, "deadlines", i))
                )
        for i, spec in enumerate(definition.deadlines):
            scope = spec.scope
            states = None if scope == INSTANCE or scope is None else frozenset(scope)
            declared.setdefault(spec.id, Declared(spec, states, ("deadlines", i)))
        # Minimums (``not_before``) are checked when what meets them happens; they are never
        # owed, so the obligation hook, the scheduler and the listings do not see them.
        self.minimums = {k: d for k, d in declared.items() if d.spec.minimum}
        declared = {k: d for k, d in declared.items() if not d.spec.minimum}
        self.declared = declared
        self.finals = frozenset(n for n, s in definition.states.items() if s.final)
        self.met_by_trigger: dict[str, list[Declared]] = {}
        self.met_by_field: dict[str, list[Declared]] = {}
        for d in declared.values():
            for met in d.spec.met_by:
                if met.trigger is not None:
                    self.met_by_trigger.setdefault(met.trigger, []).append(d)
                if met.field is not None:
                    self.met_by_field.setdefault(met.field, []).append(d)
        self.watched = {d.spec.id: watched_fields(d.spec) for d in declared.values()}
        # The fields whose change the hook must look at: anchors, published dates,
        # conditions, and those that meet an obligation by becoming set.
        self.fields = frozenset(
            {f for fields in self.watched.values() for f in fields} | set(self.met_by_field)
        )

    def get(self, deadline: str) -> Declared | None:
        return self.declared.get(deadline)

    def spanning(self, state: str | None) -> list[Declared]:
        return [d for d in self.declared.values() if d.spans(state, self.finals)]
