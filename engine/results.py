"""What a fire returns: a module of its own so the parts of a fire (engine/merging.py) can
build one without importing the engine."""

from __future__ import annotations

from typing import NamedTuple

from opcatflow.engine.errors import TransitionRefused
from opcatflow.engine.instance import Instance


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
