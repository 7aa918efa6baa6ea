"""What the engine tells in-transaction participants (timers, the outbox) about each change.

A hook runs inside the transaction that applies the change, in the same unit of work: what
it writes commits or rolls back with the transition. Hooks must not do I/O beyond that unit
of work (no email, no HTTP): that is what the outbox is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from opcatflow.engine.compiled import CompiledWorkflow
    from opcatflow.engine.instance import Instance
    from opcatflow.engine.ports import UnitOfWork


@dataclass(slots=True)
class ChainEnd:
    """The end of an instance's audit chain while hooks add records to it (obligation
    changes): the engine stores the instance with the final one."""

    seq: int
    head: str


@dataclass(frozen=True, slots=True)
class TransitionEvent:
    """One applied change: an instance started or a trigger applied.

    Attributes:
        workflow: the compiled workflow of the instance.
        instance: the instance as it is being stored.
        previous: the instance before (``None`` when it was just started).
        trigger: the trigger applied (``start`` for a new instance).
        entered: the state entered, or ``None`` for an internal transition.
        left: the state left, or ``None`` for a start or an internal transition.
        notices: what the caller should be told (``FireResult.notices``); hooks and rules
            append to it.
        deadline_events: deadline events the change itself caused (an obligation already
            overdue when recorded): the engine passes each to every hook's ``on_deadline``
            after ``on_change``, in the same unit of work.
        chain: the end of the instance's audit chain, for hooks that append to it.
    """

    workflow: CompiledWorkflow
    instance: Instance
    previous: Instance | None
    trigger: str
    actor: str
    role: str
    at: datetime
    reason: str | None
    entered: str | None
    left: str | None
    notices: list[str] = field(default_factory=list)
    deadline_events: list[DeadlineEvent] = field(default_factory=list)
    chain: ChainEnd | None = None


@dataclass(frozen=True, slots=True)
class DeadlineEvent:
    """A deadline reminder, due date or overdue alert, as the scheduler processes it (or a
    change that recorded an obligation already overdue).

    Attributes:
        kind: ``reminder``, ``due`` or ``overdue`` (an alert step of ``overdue_alerts``).
        deadline: the deadline id declared on the state.
        due_at: when the deadline is (or was) due.
        last_day: the NPM's local date that ends at ``due_at``: what people read as "due
            on" (a period of days ends at the next local midnight, so ``due_at``'s own date
            is the day after).
    """

    workflow: CompiledWorkflow
    instance: Instance
    deadline: str
    kind: str
    due_at: datetime
    at: datetime
    last_day: date | None = None
    occurrence: int = 1
    step: int | None = None  # for ``overdue``: the index in ``overdue_alerts``


class TransactionHook(Protocol):
    """Something that must change in the same transaction as every applied transition."""

    def on_change(self, uow: UnitOfWork, event: TransitionEvent) -> None:
        """Write what follows from ``event`` through ``uow``. Raising rolls everything back."""

    def on_deadline(self, uow: UnitOfWork, event: DeadlineEvent) -> None:
        """Write what follows from a reminder or a due date (e.g. an outbox message)."""
