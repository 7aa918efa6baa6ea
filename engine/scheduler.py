"""The scheduler: claims due timers and fires them, each exactly once, on any number of workers.

The timers table is the truth. A batch is one transaction: claim up to ``batch_size`` due
timers (PostgreSQL: ``FOR UPDATE ... SKIP LOCKED``, so workers never claim the same row;
SQLite: the ``BEGIN IMMEDIATE`` write lock serialises workers), then for each, in a savepoint:
fire its trigger through the engine's fire, as actor and role ``scheduler`` (or write
a reminder / due audit record), mark the timer closed, arm the next occurrence of a repeating
deadline, and let the hooks write their outbox rows. A worker killed mid-batch commits none of
it: its rows unlock and another worker fires them. A timer never fires twice because only a
``pending`` row is ever claimed and the same transaction closes it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.crypto.store import SealedUnitOfWork
from opcatflow.engine.deadlines import ALERT, DUE, REMINDER, DeadlinePlanner
from opcatflow.engine.errors import ConcurrentUpdate
from opcatflow.engine.events import DeadlineEvent
from opcatflow.engine.instance import Instance
from opcatflow.engine.ledger import Ledger
from opcatflow.engine.results import FireResult
from opcatflow.engine.retention import apply_retention
from opcatflow.engine.rows import WAITING, Obligation, ObligationStatus, Timer, TimerStatus
from opcatflow.engine.runtime import Engine
from opcatflow.engine.scopes import Declared

SCHEDULER = "scheduler"  # the actor and the role of every firing


@dataclass(frozen=True, slots=True)
class Firing:
    """What processing one timer did.

    Attributes:
        outcome: ``reminded``, ``due`` (overdue, no trigger), ``applied`` or ``refused`` (the
            escalation trigger), ``alerted`` (an overdue alert), ``skipped`` (its obligation
            was closed meanwhile), or ``error`` (rolled back; retried until ``failed``).
    """

    timer_id: int
    instance_id: str
    workflow: str
    state: str
    deadline: str
    kind: str
    due_at: datetime
    outcome: str
    trigger: str | None = None
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "timer_id": self.timer_id,
            "instance_id": self.instance_id,
            "workflow": self.workflow,
            "state": self.state,
            "deadline": self.deadline,
            "kind": self.kind,
            "due_at": self.due_at.isoformat(),
            "outcome": self.outcome,
            "trigger": self.trigger,
            "detail": self.detail,
        }


@dataclass
class TickReport:
    """Everything one :meth:`Scheduler.tick` processed, in due order."""

    now: datetime
    firings: list[Firing] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)  # instances retention erased

    def __len__(self) -> int:
        return len(self.firings)

    @property
    def late(self) -> list[Firing]:
        """Firings whose due time had passed before this tick: caught up after downtime."""
        return [f for f in self.firings if f.due_at < self.now]

    def summary(self) -> dict[str, Any]:
        """Counts by outcome and by (workflow, deadline, kind), and the oldest due time."""
        return {
            "now": self.now.isoformat(),
            "processed": len(self.firings),
            "outcomes": dict(Counter(f.outcome for f in self.firings)),
            "deadlines": {
                f"{w}.{d}.{k}": n
                for (w, d, k), n in sorted(
                    Counter((f.workflow, f.deadline, f.kind) for f in self.firings).items()
                )
            },
            "oldest_due": min((f.due_at for f in self.firings), default=self.now).isoformat(),
        }


class Scheduler:
    """Fires due timers through an :class:`Engine`.

    Args:
        engine: the engine whose store holds the timers; its clock says what "now" is.
        batch_size: timers claimed per transaction.
        max_attempts: a timer whose processing keeps failing (a broken rule or hook) is marked
            ``failed`` after this many attempts, so it shows up instead of looping.
        on_firing: called after each committed batch for every firing (e.g. to log it).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 100,
        max_attempts: int = 5,
        on_firing: Callable[[Firing], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.engine = engine
        self.store = engine.store
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.on_firing = on_firing
        self.planner = DeadlinePlanner(engine.settings)
        self._retention_day: date | None = None  # the NPM's day retention last ran on

    # -- queries ---------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest due time of a pending timer (served by the (status, due_at) index)."""
        with self.store.read() as uow:
            return uow.timers.next_due()

    def due_count(self, now: datetime | None = None) -> int:
        """How many pending timers are due at ``now`` (claimed ones included)."""
        with self.store.read() as uow:
            return uow.timers.due_count(now or self.engine.clock.now())

    # -- processing ------------------------------------------------------------------------

    def tick(self, now: datetime | None = None, *, max_rounds: int = 10) -> TickReport:
        """Process every timer due at ``now`` (default: the engine clock's now), in due order.

        Timers armed by this tick's own firings that are already due (an escalation into a
        state whose deadline has passed) are processed in a further round, up to
        ``max_rounds``, so a cycle of overdue escalations cannot spin forever.
        """
        now = now or self.engine.clock.now()
        report = TickReport(now)
        self._retain(now, report)
        failed: set[int] = set()  # retried by a later tick, not straight away
        for _ in range(max_rounds):
            with self.store.read() as uow:
                high_water = uow.timers.newest_id()
            if high_water is None:
                break
            processed = 0
            while True:
                batch = self.run_batch(now, high_water, failed)
                report.firings.extend(batch)
                failed.update(f.timer_id for f in batch if f.outcome == "error")
                processed += len(batch)
                if len(batch) < self.batch_size:
                    break
            if not processed:
                break
        return report

    def _retain(self, now: datetime, report: TickReport) -> None:
        # Retention erases whole days' worth of cases: once per local day of the NPM is
        # enough, and a tick every minute then costs nothing more.
        today = self.engine.settings.calendar.local_date(now)
        if today == self._retention_day:
            return
        report.erased.extend(e.instance_id for e in apply_retention(self.engine, now))
        self._retention_day = today

    def run_batch(
        self, now: datetime, high_water: int | None = None, exclude: Collection[int] = ()
    ) -> list[Firing]:
        """Claim and process one batch in one transaction; returns what it did."""
        firings: list[Firing] = []
        results: list[FireResult] = []
        with self.store.read() as uow:
            # The empty sweep (most of them): one index-only probe, no claim, no lock.
            first = uow.timers.next_due()
        if first is None or first > now:
            return firings
        with self.store.write() as uow:
            rows = uow.timers.claim(now, self.batch_size, up_to=high_water, exclude=exclude)
            touched: set[str] = set()
            for row in rows:
                # An earlier firing of this batch may have moved the same case on and
                # cancelled this timer with the state it belonged to. (No other transaction
                # can: the claim holds these rows.)
                pending = TimerStatus.PENDING
                if row.instance_id in touched and uow.timers.status(row.id) != pending:
                    continue
                touched.add(row.instance_id)
                try:
                    with uow.savepoint():
                        firing, result = self._process(uow, row, now)
                except Exception as err:  # any failure rolls back this timer only
                    firing = self._failed(uow, row, now, err)
                    result = None
                firings.append(firing)
                if result is not None:
                    results.append(result)
        for result in results:
            self.engine._log_result(result)
        for firing in firings:
            self._log(firing)
            if self.on_firing is not None:
                self.on_firing(firing)
        return firings

    def _process(
        self, uow: SealedUnitOfWork, row: Timer, now: datetime
    ) -> tuple[Firing, FireResult | None]:
        engine = self.engine
        wf = engine.workflow(row.workflow_id, row.workflow_version)
        declared = wf.deadlines.get(row.deadline)
        obligation = None
        if row.obligation_id is not None:
            obligation = uow.obligations.get(row.obligation_id)
            if obligation is not None and not _live(row.kind, obligation.status):
                # Met, waived or moved since this timer was armed (its change closes its
                # timers, so only a row armed under an older release gets here).
                note = f"obligation {obligation.status}"
                uow.timers.close(row.id, TimerStatus.CANCELLED, attempts=row.attempts, at=now,
                                 note=note)  # fmt: skip
                return self._firing(row, "skipped", None, note), None
        if obligation is None or declared is None or row.kind == REMINDER:
            return self._plain(uow, wf, row, now, obligation)
        instance, at = engine.lock_for_record(uow, row.instance_id)
        book = Ledger(uow, wf, instance, self.planner, actor=SCHEDULER, role=SCHEDULER, at=at)
        book.rows_known([obligation])
        if row.kind == ALERT:
            step = int((row.payload or {}).get("step", 0))
            book.alert(obligation, step)
            later = self.planner.next_alert(declared.spec, step, row.due_at, now=now)
            if later is not None:  # an `every` step: the same row wakes the next round
                uow.timers.reschedule(row.id, later, attempts=row.attempts + 1)
            else:
                uow.timers.close(
                    row.id, TimerStatus.FIRED, attempts=row.attempts + 1, at=now, note=None
                )
            self._tell(uow, book)
            return self._firing(row, "alerted", None, None), None
        if obligation.status in WAITING:
            self._fall_due(book, declared, obligation)
        uow.timers.close(row.id, TimerStatus.FIRED, attempts=row.attempts + 1, at=now, note=None)
        event = DeadlineEvent(
            workflow=wf,
            instance=dataclasses.replace(instance, audit_seq=book.seq, audit_head=book.head),
            deadline=row.deadline,
            kind=DUE,
            due_at=obligation.due_at,
            at=at,
            last_day=obligation.last_day or self.planner.last_day(obligation.due_at),
            occurrence=obligation.occurrence,
        )
        for hook in engine.hooks:
            hook.on_deadline(uow, event)
        trigger = declared.spec.on_due.trigger
        if trigger is None:
            return self._firing(row, "due", None, None), None
        result = engine._fire_in(
            uow,
            row.instance_id,
            trigger,
            actor=SCHEDULER,
            roles=(SCHEDULER,),
            reason=f"deadline {row.deadline!r} due {row.due_at.isoformat()}",
        )
        if result.refusal is not None:
            uow.timers.close(row.id, TimerStatus.REFUSED, attempts=row.attempts + 1, at=now,
                             note=result.refusal.reason)  # fmt: skip
            return self._firing(row, "refused", trigger, result.refusal.reason), result
        return self._firing(row, "applied", trigger, None), result

    def _fall_due(self, book: Ledger, declared: Declared, obligation: Obligation) -> None:
        # The due date passed with the obligation still owed: it is overdue from now on
        # (a milestone is simply reached), and its alerts are armed.
        last_day = obligation.last_day or self.planner.last_day(obligation.due_at)
        if not declared.obligation:
            reached = dataclasses.replace(
                obligation, status=ObligationStatus.MET, met_at=obligation.due_at,
                met_by="reached", days_late=0, last_day=last_day,
            )  # fmt: skip
            book.change(reached, f"deadline {obligation.deadline!r} reached ({last_day})")
            return
        due = dataclasses.replace(obligation, status=ObligationStatus.DUE, last_day=last_day)
        book.change(due, f"deadline {obligation.deadline!r} due date reached (last day {last_day})")
        book.overdue(declared, due, now=False)

    def _tell(self, uow: SealedUnitOfWork, book: Ledger) -> None:
        for event in book.events:
            for hook in self.engine.hooks:
                hook.on_deadline(uow, event)

    def _plain(
        self,
        uow: SealedUnitOfWork,
        wf: CompiledWorkflow,
        row: Timer,
        now: datetime,
        obligation: Obligation | None,
    ) -> tuple[Firing, FireResult | None]:
        # A reminder, or a timer with no obligation (armed by an older release): an audit
        # record and the hooks' on_deadline.
        instance = self._audit(uow, row)
        uow.timers.close(row.id, TimerStatus.FIRED, attempts=row.attempts + 1, at=now, note=None)
        due_at = row.deadline_due
        event = DeadlineEvent(
            workflow=wf,
            instance=instance,
            deadline=row.deadline,
            kind=row.kind,
            due_at=due_at,
            at=now,
            # the day fixed when the obligation was armed (the calendar of today for a timer
            # armed before obligations)
            last_day=(obligation.last_day if obligation is not None else None)
            or self.engine.settings.calendar.last_day(due_at),
            occurrence=row.occurrence,
        )
        for hook in self.engine.hooks:
            hook.on_deadline(uow, event)
        outcome = "reminded" if row.kind == REMINDER else "due"
        return self._firing(row, outcome, None, None), None

    def _firing(self, row: Timer, outcome: str, trigger: str | None, detail: str | None) -> Firing:
        return Firing(
            row.id,
            row.instance_id,
            row.workflow_id,
            row.state,
            row.deadline,
            row.kind,
            row.due_at,
            outcome,
            trigger,
            detail,
        )

    def _audit(self, uow: SealedUnitOfWork, row: Timer) -> Instance:
        # A reminder, or a due date with nothing to fire, is still a deadline event of the
        # instance: it goes into the instance's hash chain like a transition.
        # Stamped with the clock read under the instance's lock, like a transition, not with
        # the tick's time: a change committed since the tick began may precede it in the chain.
        instance, at = self.engine.lock_for_record(uow, row.instance_id)
        seq = instance.audit_seq + 1
        what = "reminder" if row.kind == REMINDER else "due date reached"
        offset = (row.payload or {}).get("offset")
        due = row.deadline_due
        record = self.engine._writes.record(
            uow,
            instance,
            seq=seq,
            prev=instance.audit_head,
            now=at,
            actor=SCHEDULER,
            role=SCHEDULER,
            trigger=row.deadline,
            to_state=None,
            outcome=row.kind,
            reason=f"deadline {row.deadline!r} {what}"
            + (f" ({offset} before)" if offset else "")
            + f", due {due.isoformat()}",
            changes="{}",
        )
        uow.audit.append(record)
        if not uow.instances.advance_audit_head(instance.id, seq, record.hash):
            raise ConcurrentUpdate(instance.id, instance.version, instance.version)
        return instance

    def _failed(self, uow: SealedUnitOfWork, row: Timer, now: datetime, err: Exception) -> Firing:
        attempts = row.attempts + 1
        failed = attempts >= self.max_attempts
        uow.timers.close(
            row.id,
            TimerStatus.FAILED if failed else TimerStatus.PENDING,
            attempts=attempts,
            at=now if failed else None,
            note=f"{type(err).__name__}: {err}"[:2000],
        )
        return Firing(
            row.id,
            row.instance_id,
            row.workflow_id,
            row.state,
            row.deadline,
            row.kind,
            row.due_at,
            "failed" if failed else "error",
            detail=f"{type(err).__name__}: {err}",
        )

    def _log(self, firing: Firing) -> None:
        level = "error" if firing.outcome in ("error", "failed") else "info"
        getattr(self.engine.log, level)(
            "deadline_processed",
            timer_id=firing.timer_id,
            instance_id=firing.instance_id,
            workflow=firing.workflow,
            state=firing.state,
            deadline=firing.deadline,
            kind=firing.kind,
            due_at=firing.due_at.isoformat(),
            outcome=firing.outcome,
            trigger=firing.trigger,
            detail=firing.detail,
        )


def _live(kind: str, status: ObligationStatus) -> bool:
    """Whether a timer of this kind still has work for an obligation in ``status``."""
    if kind == ALERT:
        return status is ObligationStatus.DUE
    if kind == DUE:
        return status in (*WAITING, ObligationStatus.DUE) and status is not ObligationStatus.PAUSED
    return status in WAITING
