"""Deadline timers as rows, written in the transaction of the change that arms or ends them.

:class:`TimerHook` is the transaction hook the engine installs first: entering a state arms
its deadlines (a row per reminder and one for the due date), leaving it cancels what is still
pending, and an internal transition keeps them, re-arms a deadline whose date field changed,
and pauses or resumes the deadlines it names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opcatflow.engine import tables as t
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import (
    DUE,
    DeadlinePlanner,
    PlannedTimer,
    settings_problems,
    watched_fields,
)
from opcatflow.engine.definition import DeadlineSpec
from opcatflow.engine.errors import DefinitionError
from opcatflow.engine.events import DeadlineEvent, TransitionEvent
from opcatflow.engine.settings import Settings

PENDING = "pending"
PAUSED = "paused"
FIRED = "fired"
REFUSED = "refused"
FAILED = "failed"
CANCELLED = "cancelled"
OPEN = (PENDING, PAUSED)


def insert_timers(
    conn: Connection, instance_id: str, state: str, planned: Sequence[PlannedTimer], now: datetime
) -> None:
    """Write planned timers as pending rows."""
    if not planned:
        return
    conn.execute(
        t.timers.insert(),
        [
            {
                "instance_id": instance_id,
                "state": state,
                "deadline": p.deadline,
                "kind": p.kind,
                "occurrence": p.occurrence,
                "due_at": p.due_at,
                "status": PENDING,
                "attempts": 0,
                "payload": p.payload(),
                "created_at": now,
            }
            for p in planned
        ],
    )


def clock_stops(wf: CompiledWorkflow, state: str, trigger: str) -> tuple[set[str], set[str]]:
    """The deadlines ``trigger`` pauses and resumes in ``state`` (validation makes every
    alternative of one trigger declare the same)."""
    pauses: set[str] = set()
    resumes: set[str] = set()
    for option in wf.options.get((state, trigger), ()):
        pauses.update(option.spec.pauses)
        resumes.update(option.spec.resumes)
    return pauses, resumes


class TimerHook:
    """Arms, cancels, re-arms, pauses and resumes timers inside each transition.

    Args:
        settings: the NPM's calendar and deadline durations.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.planner = DeadlinePlanner(settings)

    def check(self, workflows: Iterable[CompiledWorkflow]) -> None:
        """Refuse definitions that name ``config:`` keys the settings lack.

        Raises:
            DefinitionError: each unknown key, located in its definition.
        """
        problems = settings_problems(workflows, self.settings)
        if problems:
            raise DefinitionError(problems)

    def on_change(self, conn: Connection, event: TransitionEvent) -> None:
        instance = event.instance
        c = t.timers.c
        states = event.workflow.definition.states
        # Only states that declare deadlines ever hold timers: skip the UPDATE for the others
        # (most transitions), which keeps the hot path at the instance and audit writes.
        if event.left is not None and states[event.left].deadlines:
            conn.execute(
                t.timers.update()
                .where(c.instance_id == instance.id, c.state == event.left, c.status.in_(OPEN))
                .values(status=CANCELLED, closed_at=event.at, note=f"left by {event.trigger}")
            )
        if event.entered is not None:
            planned = self.planner.arm_state(
                event.workflow, event.entered, entered=event.at, data=instance.data
            )
            insert_timers(conn, instance.id, event.entered, planned, event.at)
            return
        state = instance.state
        if event.previous is not None:
            for spec in event.workflow.definition.states[state].deadlines:
                fields = watched_fields(spec)
                if any(event.previous.data.get(f) != instance.data.get(f) for f in fields):
                    self._rearm(conn, event, spec)
        pauses, resumes = clock_stops(event.workflow, state, event.trigger)
        if pauses:
            conn.execute(
                t.timers.update()
                .where(
                    c.instance_id == instance.id,
                    c.state == state,
                    c.deadline.in_(sorted(pauses)),
                    c.status == PENDING,
                )
                .values(status=PAUSED, paused_at=event.at)
            )
        if resumes:
            self._resume(conn, instance.id, state, resumes, event.at)

    def on_deadline(self, conn: Connection, event: DeadlineEvent) -> None:
        """Nothing: the scheduler itself re-arms repeating deadlines."""

    def _rearm(self, conn: Connection, event: TransitionEvent, spec: DeadlineSpec) -> None:
        # A date this deadline counts from was set or corrected (a session moved, a published
        # date came out). Re-arm the first occurrence unless it already fell due in this stay:
        # a lapsed deadline is history, not something to fire twice.
        instance = event.instance
        c = t.timers.c
        mine = (
            c.instance_id == instance.id,
            c.state == instance.state,
            c.deadline == spec.id,
        )
        lapsed = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.timers)
            .where(
                *mine,
                c.kind == DUE,
                c.status.in_((FIRED, REFUSED, FAILED)),
                c.closed_at >= instance.state_entered_at,
            )
        ).scalar_one()
        if lapsed or (spec.every is not None and self._repeated(conn, mine)):
            return
        open_rows = conn.execute(sa.select(c.id, c.status).where(*mine, c.status.in_(OPEN)))
        paused = any(row.status == PAUSED for row in open_rows)
        conn.execute(
            t.timers.update()
            .where(*mine, c.status.in_(OPEN))
            .values(status=CANCELLED, closed_at=event.at, note=f"re-armed by {event.trigger}")
        )
        planned = self.planner.arm(
            event.workflow,
            spec,
            entered=instance.state_entered_at,
            data=instance.data,
            now=event.at,
        )
        insert_timers(conn, instance.id, instance.state, planned, event.at)
        if paused:  # a stopped clock stays stopped until resumed
            conn.execute(
                t.timers.update()
                .where(*mine, c.status == PENDING)
                .values(status=PAUSED, paused_at=event.at)
            )

    @staticmethod
    def _repeated(conn: Connection, mine: tuple[sa.ColumnElement[bool], ...]) -> bool:
        c = t.timers.c
        query = sa.select(sa.func.max(c.occurrence)).where(*mine)
        return (conn.execute(query).scalar() or 1) > 1

    @staticmethod
    def _resume(
        conn: Connection, instance_id: str, state: str, deadlines: set[str], now: datetime
    ) -> None:
        c = t.timers.c
        rows = conn.execute(
            sa.select(c.id, c.due_at, c.paused_at).where(
                c.instance_id == instance_id,
                c.state == state,
                c.deadline.in_(sorted(deadlines)),
                c.status == PAUSED,
            )
        ).all()
        for row in rows:
            stopped = now - row.paused_at
            conn.execute(
                t.timers.update()
                .where(c.id == row.id)
                .values(status=PENDING, paused_at=None, due_at=row.due_at + stopped)
            )
