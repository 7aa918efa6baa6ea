"""Obligations, written in the transaction of the change that starts, meets or ends them.

:class:`ObligationHook` is the transaction hook the engine installs first. For each change it
works out, from the workflow's deadlines and their scopes, in this order:

1. **met**: a ``met_by`` trigger was applied, or a ``met_by`` field became set: the open
   occurrence is met (early or late, with the days late); a repeating (``every``) deadline
   still in its scope starts its next occurrence, counted from the day it was met;
2. **left**: the change leaves a deadline's scope: a deadline without ``met_by`` is met by
   leaving it; one its own escalation moved out is closed as escalated; otherwise a waiting
   occurrence is cancelled and an overdue one stays due;
3. **closed**: entering a final state cancels everything still open (note ``closed``);
4. **entered**: entering a scope from outside starts a new occurrence (already met if its
   ``met_by`` field holds a value the first time; not again once met by it), stored as due
   straight away when its date has passed (a back-dated entry: the caller is told, and the
   first alert is written in the same transaction);
5. **changed**: inside the scope, a changed anchor, published date or condition moves,
   starts or cancels a waiting occurrence; an overdue one stays (extensions move those),
   unless its anchor is cleared or its condition stops holding (then it is cancelled);
6. **paused / resumed** by the transition's ``pauses`` and ``resumes``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.deadlines import DeadlinePlanner, applies, settings_problems
from opcatflow.engine.durations import ENTERED, parse_due
from opcatflow.engine.errors import DefinitionError
from opcatflow.engine.events import DeadlineEvent, TransitionEvent
from opcatflow.engine.instance import Instance
from opcatflow.engine.ledger import Ledger
from opcatflow.engine.minimums import EARLY, Early, met_early
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.rows import WAITING, Obligation, ObligationStatus
from opcatflow.engine.scopes import Declared
from opcatflow.engine.settings import Settings

S = ObligationStatus
SCHEDULER = "scheduler"


def clock_stops(wf: CompiledWorkflow, state: str, trigger: str) -> tuple[set[str], set[str]]:
    """The deadlines ``trigger`` pauses and resumes in ``state`` (validation makes every
    alternative of one trigger declare the same)."""
    pauses: set[str] = set()
    resumes: set[str] = set()
    for option in wf.options.get((state, trigger), ()):
        pauses.update(option.spec.pauses)
        resumes.update(option.spec.resumes)
    return pauses, resumes


class ObligationHook:
    """Starts, meets, moves, pauses and ends obligations inside each change.

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

    def ledger(self, uow: UnitOfWork, event: TransitionEvent, *, actor: str, role: str) -> Ledger:
        chain = event.chain
        instance = event.instance
        if chain is not None:
            instance = dataclasses.replace(instance, audit_seq=chain.seq, audit_head=chain.head)
        book = Ledger(
            uow, event.workflow, instance, self.planner, actor=actor, role=role, at=event.at
        )
        if event.previous is None:
            book.rows_known([])  # a new instance has none yet: no need to read them
        return book

    def early(
        self, wf: CompiledWorkflow, current: Instance, trigger: str, data: dict[str, Any],
        at: datetime,
    ) -> list[Early]:  # fmt: skip
        """The minimums a change of ``current`` (``trigger``, to ``data``) meets early."""
        if not wf.deadlines.minimums:
            return []
        return met_early(
            self.planner, wf, state=current.state, entered=current.state_entered_at,
            before=current.data, data=data, trigger=trigger, at=at,
        )  # fmt: skip

    def early_refusal(
        self, wf: CompiledWorkflow, current: Instance, trigger: str, data: dict[str, Any],
        at: datetime,
    ) -> str | None:  # fmt: skip
        """Why a change is refused: a minimum with ``on_early: refuse`` met early."""
        refused = [e for e in self.early(wf, current, trigger, data, at) if e.refused]
        return refused[0].words(self.planner) if refused else None

    def _warn_early(self, uow: UnitOfWork, event: TransitionEvent) -> None:
        # on_early: warn: the fact stands; the caller is told, the trail says so
        previous = event.previous
        if previous is None:
            return
        early = self.early(event.workflow, previous, event.trigger, dict(event.instance.data),
                           event.at)  # fmt: skip
        if not early:
            return
        book = self.ledger(uow, event, actor=event.actor, role=event.role)
        for e in early:
            words = e.words(self.planner)
            book.record(e.declared.spec.id, EARLY, f"met early: {words}")
            event.notices.append(f"early: {words}; recorded, and flagged in the audit trail")
        self._finish(book, event)

    def on_change(self, uow: UnitOfWork, event: TransitionEvent) -> None:
        index = event.workflow.deadlines
        if index.minimums:
            self._warn_early(uow, event)
        if not index.declared:
            return  # most workflows' transitions: nothing to read or write
        instance, previous = event.instance, event.previous
        before = previous.data if previous is not None else {}
        data = instance.data
        changed = {f for f in index.fields if before.get(f) != data.get(f)}
        entered, left = event.entered, event.left
        became_set = {f for f in changed if before.get(f) is None and data.get(f) is not None}
        met = list(index.met_by_trigger.get(event.trigger, ()))
        for name in became_set:
            met += [d for d in index.met_by_field.get(name, ()) if d not in met]
        finals = index.finals
        moved = entered is not None
        leaving = [
            d for d in index.declared.values() if moved and d.spans(left, finals)
            and not d.spans(entered, finals)
        ]  # fmt: skip
        entering = [
            d for d in index.declared.values() if moved and d.spans(entered, finals)
            and not d.spans(left, finals)
        ]  # fmt: skip
        closing = moved and entered in finals
        staying = [
            d for d in index.spanning(instance.state)
            if d not in entering and changed & index.watched[d.spec.id]
        ]  # fmt: skip
        pauses: set[str] = set()
        resumes: set[str] = set()
        if not moved:
            pauses, resumes = clock_stops(event.workflow, instance.state, event.trigger)
        if not (met or leaving or entering or closing or staying or pauses or resumes):
            return
        book = self.ledger(uow, event, actor=event.actor, role=event.role)
        for declared in met:
            self._meet(book, declared, event)
        for declared in leaving:
            self._leave(book, declared, event)
        if closing:
            for row in [r for r in book.rows if r.status in (*WAITING, S.DUE)]:
                book.change(_replace(row, status=S.CANCELLED, note="closed"), "case closed")
        for declared in entering:
            self._enter(book, declared, event)
        for declared in staying:
            self._changed(book, declared, event)
        self._clock(book, pauses, resumes)
        self._finish(book, event)

    def on_deadline(self, uow: UnitOfWork, event: DeadlineEvent) -> None:
        """Nothing: the scheduler changes obligations through its own ledger."""

    # -- the steps -------------------------------------------------------------------------

    def _meet(self, book: Ledger, declared: Declared, event: TransitionEvent) -> None:
        spec = declared.spec
        data = event.instance.data
        field = next(
            (m.field for m in spec.met_by if m.field is not None and data.get(m.field) is not None
             and (event.previous is None or event.previous.data.get(m.field) is None)),
            None,
        )  # fmt: skip
        by = f"field:{field}" if field is not None else f"trigger:{event.trigger}"
        met_at = self.planner.met_instant(event.workflow, field, data, event.at)
        for row in book.open_of(spec.id):
            late = self.planner.days_late(row.due_at, met_at)
            done = _replace(
                row, status=S.MET, met_at=met_at, met_by=by, days_late=late, paused_at=None
            )
            words = f"{late} day(s) late" if late else "on time"
            book.change(done, f"deadline {spec.id!r} #{row.occurrence} met ({by}), {words}")
            if spec.every is not None and declared.spans(event.instance.state, book.wf.finals):
                due_at = self.planner.next_due(spec, met_at)
                if due_at is not None:
                    book.create(declared, due_at=due_at, anchor=met_at.isoformat())

    def _leave(self, book: Ledger, declared: Declared, event: TransitionEvent) -> None:
        spec = declared.spec
        escalated = event.actor == SCHEDULER and spec.on_due.trigger == event.trigger
        for row in book.open_of(spec.id):
            if escalated:
                note = f"escalated by {event.trigger}"
                book.change(_replace(row, status=S.CANCELLED, note=note), note)
            elif not spec.met_by:
                late = self.planner.days_late(row.due_at, event.at)
                by = f"left:{event.trigger}"
                done = _replace(row, status=S.MET, met_at=event.at, met_by=by, days_late=late)
                book.change(done, f"deadline {spec.id!r} #{row.occurrence} met by leaving")
            elif row.status in WAITING:
                note = f"left by {event.trigger}"
                book.change(_replace(row, status=S.CANCELLED, note=note), note)
            # an overdue one stays due: what is owed is still owed

    def _enter(self, book: Ledger, declared: Declared, event: TransitionEvent) -> None:
        spec = declared.spec
        wf, data = event.workflow, event.instance.data
        if not applies(spec, data):
            return
        met_field = next(
            (m.field for m in spec.met_by if m.field is not None and data.get(m.field) is not None),
            None,
        )
        if met_field is not None and book.of(spec.id):
            return  # met by a fact recorded in an earlier stay: never owed again
        due_at = self.planner.due(wf, spec, entered=event.at, data=data)
        if due_at is None:
            return  # no date to count from yet: a change of the anchor starts it
        anchor = self.planner.anchor(wf, spec, entered=event.at, data=data)
        if met_field is not None:
            met_at = self.planner.met_instant(wf, met_field, data, event.at)
            book.create(
                declared, due_at=due_at, anchor=anchor, met_at=met_at, met_by=f"field:{met_field}"
            )
            return
        row = book.create(declared, due_at=due_at, anchor=anchor)
        if row.status is S.DUE:
            self._tell(event, declared, row)

    def _changed(self, book: Ledger, declared: Declared, event: TransitionEvent) -> None:
        spec = declared.spec
        wf, data = event.workflow, event.instance.data
        waiting = [r for r in book.open_of(spec.id) if r.status in WAITING]
        if not book.open_of(spec.id):
            if _may_start(book.of(spec.id)):
                self._enter(book, declared, event)
            return
        holds = applies(spec, data)
        for row in book.open_of(spec.id):
            # An overdue one stays overdue when its date moves (an extension moves it), but
            # not once there is nothing left to count from: the session it was counted back
            # from was postponed, say, and the anchor cleared.
            if row.status is S.DUE and (
                not holds or self.planner.due(wf, spec, entered=event.at, data=data) is None
            ):
                why = "condition no longer holds" if not holds else "no date to count from"
                book.change(_replace(row, status=S.CANCELLED, note=why), why)
        for row in waiting:
            entered = _entered(spec.due, row, event.instance.state_entered_at)
            due_at = self.planner.due(wf, spec, entered=entered, data=data) if holds else None
            if due_at is None:
                why = "condition no longer holds" if not holds else "no date to count from"
                book.change(_replace(row, status=S.CANCELLED, note=why), why)
                continue
            if due_at == row.due_at:
                continue
            anchor = self.planner.anchor(wf, spec, entered=entered, data=data)
            moved = _replace(
                row, due_at=due_at, last_day=self.planner.last_day(due_at), anchor=anchor
            )
            book.uow.timers.close_open({row.id}, at=event.at, note=f"moved by {event.trigger}")
            if due_at <= event.at and row.status is not S.PAUSED:
                book.change(_replace(moved, status=S.DUE), f"moved by {event.trigger}: overdue")
                book.overdue(declared, moved, now=True)
                self._tell(event, declared, moved)
                continue
            book.change(moved, f"moved by {event.trigger} to {moved.last_day}")
            book.arm(declared, moved)
            if row.status is S.PAUSED:  # a stopped clock stays stopped until resumed
                book.uow.timers.pause_open({row.id}, row.paused_at or event.at)

    def _clock(self, book: Ledger, pauses: set[str], resumes: set[str]) -> None:
        at = book.at
        for name in sorted(pauses):
            for row in book.open_of(name):
                if row.status in (S.PENDING, S.EXTENDED):
                    book.change(_replace(row, status=S.PAUSED, paused_at=at), "clock stopped")
                    book.uow.timers.pause_open({row.id}, at)
        for name in sorted(resumes):
            for row in book.open_of(name):
                if row.status is S.PAUSED and row.paused_at is not None:
                    due_at = row.due_at + (at - row.paused_at)
                    resumed = _replace(
                        row,
                        status=S.PENDING,
                        paused_at=None,
                        due_at=due_at,
                        last_day=self.planner.last_day(due_at),
                    )
                    book.change(resumed, f"clock restarted: due {resumed.last_day}")
                    book.uow.timers.resume_open({row.id}, at)

    def _tell(self, event: TransitionEvent, declared: Declared, row: Obligation) -> None:
        label = declared.spec.label or declared.spec.id
        event.notices.append(
            f"deadline {declared.spec.id!r} ({label}) was already overdue: its last day was "
            f"{row.last_day}; it is recorded as overdue"
            + (" and its first alert is queued" if declared.spec.overdue_alerts else "")
        )

    def _finish(self, book: Ledger, event: TransitionEvent) -> None:
        if event.chain is not None:
            event.chain.seq, event.chain.head = book.seq, book.head
        event.deadline_events.extend(book.events)


def _replace(row: Obligation, **changes: object) -> Obligation:
    return dataclasses.replace(row, **changes)  # type: ignore[arg-type]


def _entered(due: str, row: Obligation, fallback: datetime) -> datetime:
    # A deadline counted from entering its scope keeps that instant (stored as its anchor).
    if parse_due(due).anchor == ENTERED and row.anchor:
        return datetime.fromisoformat(row.anchor)
    return fallback


def _may_start(rows: list[Obligation]) -> bool:
    # Starting an occurrence on a changed anchor or condition is for deadlines not yet owed
    # in this stay: never again after one was met or waived (later changes do not re-arm).
    if not rows:
        return True
    last = max(rows, key=lambda r: r.occurrence)
    return last.status is S.CANCELLED or (last.met_by or "").startswith("left:")


__all__ = ["ObligationHook", "clock_stops"]
