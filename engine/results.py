"""What a fire returns: a module of its own so the parts of a fire (engine/merging.py) can
build one without importing the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from opcatflow.engine.errors import TransitionRefused
from opcatflow.engine.instance import Instance

if TYPE_CHECKING:
    from opcatflow.engine.compiled import CompiledWorkflow
    from opcatflow.engine.firing import Applied, Refused
    from opcatflow.engine.writes import Child


class FireResult(NamedTuple):
    """What a fire did, as its ``also`` callback sees it: the new instance, or the refusal
    stored in the audit trail (``role`` is the role it was applied or refused under).

    A named tuple (immutable, and cheaper to build than a frozen dataclass): one is built on
    every fire."""

    previous: Instance
    instance: Instance | None
    refusal: TransitionRefused | None
    trigger: str
    actor: str
    role: str
    opened: tuple[str, ...]
    notices: tuple[str, ...] = ()  # what the caller should be told (an overdue deadline...)


class FireDecision(NamedTuple):
    """What the engine decided a fire does, before anything is stored
    (:meth:`~opcatflow.engine.runtime.Engine.decide_fire`): the role it applies or is
    refused under, the outcome, and the children an applied outcome opens."""

    workflow: CompiledWorkflow
    role: str
    outcome: Applied | Refused
    children: tuple[Child, ...] = ()
