"""Named Python rules that definitions refer to: guards, actions and report projections.

workflows/ fills a :class:`Registry` with decorators; the engine is handed it. Definitions
name rules, never code, so an operator editing YAML cannot run anything new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from opcatflow.engine.instance import Instance
from opcatflow.engine.projection_spec import Projection
from opcatflow.engine.sharing import Policy

NO_POLICY = Policy()


class GuardRefusal(Exception):
    """Raised by a guard to refuse with a specific reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


Lookup = Callable[[str], Instance | None]
"""Reads another instance by id; ``None`` when there is no such instance."""


def no_lookup(instance_id: str) -> Instance | None:
    """The lookup of a context with no store behind it: every instance is unknown."""
    return None


@dataclass(slots=True)  # not frozen: built on every decision, and freezing costs 4 µs
class RuleContext:
    """What a guard or action sees.

    ``data`` is the instance data with the supplied data merged in. Actions may change it;
    guards must not. ``lookup`` reads another instance (read-only, in the transaction of the
    call), for rules that depend on other instances: a visit's team refers to experts.
    ``policy`` is what the NPM's settings say (bodies, complaint channels).
    """

    instance_id: str
    workflow: str
    state: str
    trigger: str
    actor: str
    role: str
    now: datetime
    supplied: Mapping[str, Any]
    data: dict[str, Any]
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    lookup: Lookup = field(default=no_lookup, repr=False, compare=False)
    policy: Policy = field(default=NO_POLICY, repr=False, compare=False)

    @property
    def today(self) -> date:
        """The NPM's current day (``now`` in its time zone): a rule reads a register entry
        as it holds on this day (:func:`opcatflow.engine.registers.current_values`)."""
        return self.policy.today(self.now)


Guard = Callable[[RuleContext], bool]
Action = Callable[[RuleContext], None]


@dataclass(frozen=True)
class GuardRule:
    name: str
    func: Guard
    reason: str


class Registry:
    """Guards and actions by name."""

    def __init__(self) -> None:
        self.guards: dict[str, GuardRule] = {}
        self.actions: dict[str, Action] = {}
        self.action_writes: dict[str, frozenset[str]] = {}
        self.projections: dict[str, Projection] = {}

    @property
    def size(self) -> int:
        """How many rules are registered: it only grows (a name is never replaced)."""
        return len(self.guards) + len(self.actions) + len(self.projections)

    def guard(self, name: str, *, reason: str) -> Callable[[Guard], Guard]:
        """Register a guard. It returns True to allow; ``reason`` explains a False.

        A guard may also raise :class:`GuardRefusal` for a more specific reason.
        """

        def register(func: Guard) -> Guard:
            if name in self.guards:
                raise ValueError(f"guard {name!r} is already registered")
            self.guards[name] = GuardRule(name, func, reason)
            return func

        return register

    def action(self, name: str, *, writes: Iterable[str] = ()) -> Callable[[Action], Action]:
        """Register an action: it runs when its transition applies and may change ``data``.

        Args:
            name: The name definitions refer to.
            writes: The fields it may set or clear. ``validate`` refuses a transition (or
                state) whose actions write outside the transition's write set, and at run
                time an action that changes any other field fails (kind ``action``).
        """

        def register(func: Action) -> Action:
            if name in self.actions:
                raise ValueError(f"action {name!r} is already registered")
            self.actions[name] = func
            self.action_writes[name] = frozenset(writes)
            return func

        return register

    def project(
        self,
        workflow: str,
        *,
        fields: Iterable[str] = (),
        records: Mapping[str, Iterable[str]] | None = None,
    ) -> Projection:
        """Keep these non-personal values of ``workflow``'s instances in the report
        projection, written in the transaction of every write of an instance.

        ``validate`` (and every load of a definition) refuses a definition in which one of
        them is personal or confidential, or not a plain value: reports group on them.
        """
        if workflow in self.projections:
            raise ValueError(f"a projection of {workflow!r} is already registered")
        projection = Projection(
            workflow,
            tuple(fields),
            {name: tuple(subs) for name, subs in (records or {}).items()},
        )
        self.projections[workflow] = projection
        return projection
