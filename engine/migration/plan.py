"""Migration plans: how running instances of one definition version move to another.

A plan is a YAML file, validated like a definition (every problem as path:line:col)::

    workflow: complaint
    from: 3
    to: 4
    states:                        # every non-final state of version 3 that holds instances
      received: received
      acknowledged: screening      # a state of version 4
      recorded:
        to: recorded
        deadlines: {feedback_recorded: feedback}   # a deadline renamed; `name: null` drops it
      closed_early:                # a final state: its instances stay on version 3 unless
        to: recorded               # the plan reopens them, saying so
        reopen: true
        set: {outcome_note: "'reopened: ' ~ entered_on"}   # per-state values (expressions)
    data:
      rename: {told_limits: limits_explained}
      set_default: {urgency: routine}              # where the instance has no value
      drop: [theme]
      set: {source: "'other' if source == 'cpt' else source"}   # in every state
      convert: [institution]      # free text to register ids (engine.migration.convert)

``set`` gives fields of the target values computed by sandboxed expressions (as an
``opens`` entry's data is) over the instance's data as it was (before renames and drops),
plus ``state`` (its state) and ``entered_on`` (the day it entered that state, in the NPM's
time zone); under ``data`` for every state, under a state for that state (winning), applied
after the plan's other ``data`` changes. ``reopen: true`` is how a plan moves the instances
of a *final* state (a version that drops it, say, so that cases closed under it go on):
without it a final state is refused, as its cases stay closed.

A deadline not named under ``deadlines`` keeps its name, which the target state must then
declare. Whether every occupied state is mapped is known only from the database: the run
checks it (:mod:`opcatflow.engine.migration.run`), located at ``states``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.errors import DefinitionError, NotFound, Problem
from opcatflow.engine.expressions import Expression, ExpressionError, compile_guard
from opcatflow.engine.migration.convert import Target, targets
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.validation import pydantic_problems
from opcatflow.engine.yamlsource import Located, load_yaml

Resolve = Callable[[str, int], CompiledWorkflow]
"""A workflow version by id and number (the engine's: files, deployed or stored)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateTarget(_Strict):
    to: str
    deadlines: dict[str, str | None] = Field(default_factory=dict)
    reopen: bool = False
    set: dict[str, str] = Field(default_factory=dict)


class DataChanges(_Strict):
    rename: dict[str, str] = Field(default_factory=dict)
    set_default: dict[str, Any] = Field(default_factory=dict)
    drop: list[str] = Field(default_factory=list)
    set: dict[str, str] = Field(default_factory=dict)
    convert: list[str] = Field(default_factory=list)


class PlanModel(_Strict):
    workflow: str
    from_: int = Field(alias="from", ge=1)
    to: int = Field(ge=1)
    states: dict[str, str | StateTarget]
    data: DataChanges = Field(default_factory=DataChanges)


@dataclass(frozen=True)
class Move:
    """Where the instances of one state go: the state, and each deadline's new name
    (``None``: dropped, its open timers cancelled); the values ``set`` computes, by field;
    ``reopen``: the state is final (its cases go on in the target)."""

    to: str
    deadlines: Mapping[str, str | None]
    set: Mapping[str, Expression] = field(default_factory=dict)
    reopen: bool = False


@dataclass(frozen=True)
class Plan:
    """A validated plan with both versions resolved.

    Attributes:
        digest: SHA-256 of the plan file's text, recorded in every ``migrated`` record.
        moves: by source state.
        added: for each target state, the deadlines no source timer carries into it (armed
            from the instance's entry into its state, never from now).
    """

    path: str
    digest: str
    source: CompiledWorkflow
    target: CompiledWorkflow
    moves: Mapping[str, Move]
    rename: Mapping[str, str]
    set_default: Mapping[str, Any]
    drop: frozenset[str]
    doc: Located
    set: Mapping[str, Expression] = field(default_factory=dict)
    convert: tuple[Target, ...] = ()

    @property
    def workflow(self) -> str:
        return self.source.id

    def unmapped_problem(self, states: Mapping[str, int]) -> Problem | None:
        """The problem of running instances in states the plan does not map (by count)."""
        missing = {s: n for s, n in states.items() if s not in self.moves}
        if not missing:
            return None
        listed = ", ".join(f"{s!r} ({n})" for s, n in sorted(missing.items()))
        return self.doc.problem(
            ("states",),
            f"states holding instances of version {self.source.version} are not mapped: {listed}",
        )


def load_plan(text: str, path: str, resolve: Resolve) -> Plan:
    """Parse and check a plan against the two versions it names.

    Raises:
        DefinitionError: every problem, located (``path:line:col: message``).
    """
    doc = load_yaml(text, path)
    if not isinstance(doc.value, dict):
        raise DefinitionError([Problem(path, 1, 1, "a migration plan must be a mapping")])
    try:
        model = PlanModel.model_validate(doc.value)
    except ValidationError as err:
        raise DefinitionError(pydantic_problems(doc, err)) from None
    problems: list[Problem] = []
    versions = []
    for key, number in (("from", model.from_), ("to", model.to)):
        try:
            versions.append(resolve(model.workflow, number))
        except NotFound:
            what = f"no version {number} of {model.workflow!r} is loaded or stored"
            problems.append(doc.problem((key,), what))
    if model.from_ == model.to:
        problems.append(doc.problem(("to",), "`to` must be another version than `from`"))
    if problems:
        raise DefinitionError(problems)
    source, target = versions
    checker = _Checker(doc, source, target)
    moves = checker.states(model.states)
    checker.data(model.data)
    computed = checker.compile_set(model.data.set, ("data",))
    convert = checker.convert(model.data.convert)
    if checker.problems:
        raise DefinitionError(checker.problems)
    return Plan(
        path=path,
        digest=hashlib.sha256(text.encode()).hexdigest(),
        source=source,
        target=target,
        moves=moves,
        rename=dict(model.data.rename),
        set_default=dict(model.data.set_default),
        drop=frozenset(model.data.drop),
        doc=doc,
        set=computed,
        convert=tuple(convert),
    )


class _Checker:
    def __init__(self, doc: Located, source: CompiledWorkflow, target: CompiledWorkflow) -> None:
        self.doc = doc
        self.source = source
        self.target = target
        self.problems: list[Problem] = []

    def add(self, loc: tuple[str | int, ...], message: str) -> None:
        self.problems.append(self.doc.problem(loc, message))

    def states(self, states: Mapping[str, str | StateTarget]) -> dict[str, Move]:
        src, dst = self.source, self.target
        moves: dict[str, Move] = {}
        for name, raw in states.items():
            target = StateTarget(to=raw) if isinstance(raw, str) else raw
            loc: tuple[str | int, ...] = ("states", name)
            if name not in src.definition.states:
                hint = did_you_mean(name, src.definition.states)
                self.add(loc, f"version {src.version} has no state {name!r}{hint}")
                continue
            if name in src.finals and not target.reopen:
                self.add(
                    loc,
                    f"{name!r} is final: its instances stay on version {src.version} "
                    "(reopen: true moves them on)",
                )
                continue
            if target.reopen and name not in src.finals:
                self.add((*loc, "reopen"), f"{name!r} is not final: there is nothing to reopen")
                continue
            to_loc = loc if isinstance(raw, str) else (*loc, "to")
            if target.to not in dst.definition.states:
                hint = did_you_mean(target.to, dst.definition.states)
                self.add(to_loc, f"version {dst.version} has no state {target.to!r}{hint}")
                continue
            if target.to in dst.finals:
                self.add(to_loc, f"{target.to!r} is final: close cases with a transition")
                continue
            deadlines = self._deadlines(name, target, loc)
            computed = self.compile_set(target.set, loc)
            moves[name] = Move(target.to, deadlines, computed, target.reopen)
        return moves

    def compile_set(
        self, expressions: Mapping[str, str], loc: tuple[str | int, ...]
    ) -> dict[str, Expression]:
        dst = self.target.definition.fields
        compiled: dict[str, Expression] = {}
        for name, source in expressions.items():
            at = (*loc, "set", name)
            if name not in dst:
                hint = did_you_mean(name, dst)
                self.add(at, f"version {self.target.version} has no field {name!r}{hint}")
                continue
            try:
                compiled[name] = compile_guard(source)
            except ExpressionError as err:
                self.add(at, str(err))
        return compiled

    def _deadlines(
        self, state: str, target: StateTarget, loc: tuple[str | int, ...]
    ) -> dict[str, str | None]:
        old = spanning(self.source, state)
        new = spanning(self.target, target.to)
        mapping: dict[str, str | None] = {}
        for name, renamed in target.deadlines.items():
            at = (*loc, "deadlines", name)
            if name not in old:
                self.add(at, f"state {state!r} has no deadline {name!r}{did_you_mean(name, old)}")
            elif renamed is not None and renamed not in new:
                hint = did_you_mean(renamed, new)
                self.add(at, f"state {target.to!r} of the target has no deadline {renamed!r}{hint}")
            else:
                mapping[name] = renamed
        for name in sorted(old - target.deadlines.keys()):
            if name in new:
                mapping[name] = name
            else:
                self.add(
                    loc,
                    f"deadline {name!r} of {state!r} has no counterpart in {target.to!r}: map it "
                    f"(deadlines: {{{name}: NEW}}) or drop it ({name}: null)",
                )
        return mapping

    def data(self, changes: DataChanges) -> None:
        src = self.source.definition.fields
        dst = self.target.definition.fields
        for old, new in changes.rename.items():
            at = ("data", "rename", old)
            if old not in src:
                self.add(at, f"version {self.source.version} has no field {old!r}")
            elif new not in dst:
                hint = did_you_mean(new, dst)
                self.add(at, f"version {self.target.version} has no field {new!r}{hint}")
        for name, value in changes.set_default.items():
            at = ("data", "set_default", name)
            if name not in dst:
                hint = did_you_mean(name, dst)
                self.add(at, f"version {self.target.version} has no field {name!r}{hint}")
                continue
            _, errors = self.target.schema.validate({name: value})
            if errors:
                self.add(at, "; ".join(errors))
        for i, name in enumerate(changes.drop):
            if name not in src:
                self.add(
                    ("data", "drop", i), f"version {self.source.version} has no field {name!r}"
                )
        kept = src.keys() - changes.rename.keys() - set(changes.drop)
        for name in sorted(kept - dst.keys()):
            self.add(
                ("data",) if "data" in self.doc.value else (),
                f"field {name!r} is not in version {self.target.version}: rename or drop it",
            )

    def convert(self, names: list[str]) -> list[Target]:
        """The fields converted from free text to register ids: each a reference (or a
        list of them, or a records sub-field) of the target version."""

        def problem(i: int, message: str) -> None:
            self.add(("data", "convert", i), message)

        return targets(self.target, names, problem)


def spanning(wf: CompiledWorkflow, state: str) -> set[str]:
    """The deadlines whose scope holds ``state`` (declared on it, on a group of states that
    holds it, or on the whole instance)."""
    index = wf.deadlines
    return {n for n, d in index.declared.items() if d.spans(state, index.finals)}
