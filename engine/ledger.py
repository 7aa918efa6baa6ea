"""Every change to an obligation goes through a :class:`Ledger`: the row, its timers, and an
audit record in the instance's chain, in one unit of work.

The transition hook, the scheduler, and waivers and extensions all use it, so an obligation
never changes without its record, and its timers always follow its status.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from opcatflow.engine.audit import CURRENT_FORMAT, LEGACY_FORMAT, make_record
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.crypto.cipher import reason_place
from opcatflow.engine.crypto.store import SealedUnitOfWork
from opcatflow.engine.deadlines import DUE, DeadlinePlanner, PlannedTimer
from opcatflow.engine.errors import ConcurrentUpdate
from opcatflow.engine.events import DeadlineEvent
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.rows import (
    OPEN_OBLIGATION,
    WAITING,
    NewObligation,
    Obligation,
    ObligationStatus,
)
from opcatflow.engine.scopes import Declared

S = ObligationStatus


class Ledger:
    """Obligation changes of one instance, within one unit of work, by one actor.

    Args:
        instance: the instance as stored now (its audit chain ends at its ``audit_seq``).
        at: the time of the change (the clock read under the instance's lock).
    """

    def __init__(
        self,
        uow: UnitOfWork,
        wf: CompiledWorkflow,
        instance: Instance,
        planner: DeadlinePlanner,
        *,
        actor: str,
        role: str,
        at: datetime,
    ) -> None:
        self.uow = uow
        self.wf = wf
        self.instance = instance
        self.planner = planner
        self.actor = actor
        self.role = role
        self.at = at
        self.seq = instance.audit_seq
        self.head = instance.audit_head
        self.events: list[DeadlineEvent] = []  # overdue now: for the hooks' on_deadline
        self._rows: list[Obligation] | None = None

    # -- reading ---------------------------------------------------------------------------

    @property
    def rows(self) -> list[Obligation]:
        """Every obligation of the instance (read once, kept up to date by this ledger)."""
        if self._rows is None:
            self._rows = self.uow.obligations.of_instance(self.instance.id)
        return self._rows

    def rows_known(self, rows: list[Obligation]) -> None:
        """Use ``rows`` as the instance's obligations instead of reading them."""
        self._rows = rows

    def of(self, deadline: str) -> list[Obligation]:
        return [o for o in self.rows if o.deadline == deadline]

    def open_of(self, deadline: str) -> list[Obligation]:
        return [o for o in self.of(deadline) if o.status in OPEN_OBLIGATION]

    def next_occurrence(self, deadline: str) -> int:
        return max((o.occurrence for o in self.of(deadline)), default=0) + 1

    # -- writing ---------------------------------------------------------------------------

    def audit(self, deadline: str, outcome: str, reason: str, row: Obligation) -> None:
        """Append one record about ``row`` to the instance's chain: trigger the deadline,
        outcome its new status (or ``overdue`` for an alert sent), the reason in words."""
        self.record(deadline, outcome, reason)

    def record(self, deadline: str, outcome: str, reason: str) -> None:
        """Append one record about ``deadline`` to the instance's chain (a minimum met
        early has no row: its record is all there is)."""
        seq = self.seq + 1
        # A waiver's or an extension's reason is a person's words: sealed like every reason.
        stored_reason, form, state = reason, LEGACY_FORMAT, None
        if isinstance(self.uow, SealedUnitOfWork):
            keys = self.uow.ensure_keys(self.instance.id, self.at)
            stored_reason = keys.seal_text(reason, reason_place(self.instance.id, seq))
            form = CURRENT_FORMAT
            state = self.uow.state_hash_as_stored(self.instance)
        record = make_record(
            instance_id=self.instance.id,
            seq=seq,
            at=self.at,
            actor=self.actor,
            role=self.role,
            workflow_id=self.instance.workflow_id,
            workflow_version=self.instance.workflow_version,
            trigger=deadline,
            from_state=self.instance.state,
            to_state=None,
            outcome=outcome,
            reason=stored_reason,
            # as every deadline record: no data change; the reason says what became of it
            changes="{}",
            prev_hash=self.head,
            format=form,
            state_hash=state,
        )
        self.uow.audit.append(record)
        if not self.uow.instances.advance_audit_head(self.instance.id, seq, record.hash):
            raise ConcurrentUpdate(self.instance.id, self.instance.version, self.instance.version)
        self.seq, self.head = seq, record.hash

    def create(
        self,
        declared: Declared,
        *,
        due_at: datetime,
        anchor: str | None,
        met_at: datetime | None = None,
        met_by: str | None = None,
    ) -> Obligation:
        """Store a new occurrence: met already (``met_at``), due already (its date has
        passed: its first alert is sent now), or pending with its timers."""
        spec = declared.spec
        occurrence = self.next_occurrence(spec.id)
        last_day = self.planner.last_day(due_at)
        status = S.PENDING
        days_late = None
        if met_at is not None:
            status, days_late = S.MET, self.planner.days_late(due_at, met_at)
        elif due_at <= self.at:
            status = S.MET if not declared.obligation else S.DUE
            if status is S.MET:
                met_at, met_by, days_late = due_at, "reached", 0
        new = NewObligation(
            instance_id=self.instance.id,
            deadline=spec.id,
            occurrence=occurrence,
            scope=declared.scope,
            anchor=anchor,
            due_at=due_at,
            last_day=last_day,
            status=status,
            met_at=met_at,
            met_by=met_by,
            days_late=days_late,
        )
        new_id = self.uow.obligations.add(new, self.at)
        row = Obligation(
            id=new_id,
            instance_id=new.instance_id,
            workflow_id=self.wf.id,
            workflow_version=self.wf.version,
            state=self.instance.state,
            deadline=new.deadline,
            occurrence=occurrence,
            scope=new.scope,
            anchor=anchor,
            due_at=due_at,
            last_day=last_day,
            status=status,
            paused_at=None,
            met_at=met_at,
            met_by=met_by,
            days_late=days_late,
            note=None,
            created_at=self.at,
            updated_at=self.at,
        )
        self.rows.append(row)
        if status is S.PENDING:
            self.arm(declared, row)
            counted = f", counted from {anchor}" if anchor else ""
            owed = f" owed by {spec.owed_by}" if spec.owed_by else ""
            self.audit(
                spec.id,
                str(status),
                f"{self._name(row)}{owed}: last day {_day(row)}{counted}",
                row,
            )
        elif status is S.DUE:
            self.audit(
                spec.id,
                str(status),
                f"{self._name(row)} was already due when recorded (last day {_day(row)})",
                row,
            )
            self.overdue(declared, row, now=True)
        else:
            self.audit(spec.id, str(status), f"{self._name(row)} {self._met_words(row)}", row)
        return row

    def change(self, row: Obligation, reason: str, outcome: str | None = None) -> Obligation:
        """Store ``row`` (a changed copy of a stored obligation) and audit it."""
        self.uow.obligations.update(row, self.at)
        rows = self.rows
        for i, old in enumerate(rows):
            if old.id == row.id:
                rows[i] = row
        self.audit(row.deadline, outcome or str(row.status), reason, row)
        if row.status not in WAITING:
            self.uow.timers.close_open({row.id}, at=self.at, note=str(row.status))
        return row

    def arm(self, declared: Declared, row: Obligation) -> None:
        """The reminders still ahead and the due timer of a waiting obligation."""
        planned = self.planner.timers(
            declared.spec,
            row.due_at,
            now=self.at,
            occurrence=row.occurrence,
            obligation_id=row.id,
        )
        self.uow.timers.arm(self.instance.id, self.instance.state, planned, self.at)

    def overdue(self, declared: Declared, row: Obligation, *, now: bool) -> None:
        """Arm the overdue alerts of an obligation that just became due. With ``now`` (it
        was recorded overdue, not reached by the scheduler), the first alert whose time has
        come is sent in this unit of work instead of at the next sweep; and an escalation
        still waits for the scheduler (its due timer fires it)."""
        spec = declared.spec
        planned = self.planner.alerts(
            spec, row.due_at, occurrence=row.occurrence, obligation_id=row.id
        )
        if now:
            ready = [p for p in planned if p.due_at <= self.at and p.step is not None]
            first = min(ready, key=lambda p: (p.due_at, p.step or 0), default=None)
            if first is not None and first.step is not None:
                planned.remove(first)
                later = self.planner.next_alert(spec, first.step, first.due_at, now=self.at)
                if later is not None:
                    planned.append(_moved(first, later))
                self.alert(row, first.step)
            if spec.on_due.trigger is not None:
                planned.append(self._due_timer(declared, row))
        self.uow.timers.arm(self.instance.id, self.instance.state, planned, self.at)

    def alert(self, row: Obligation, step: int) -> None:
        """Audit one overdue alert and hand it to the hooks (the outbox writes it)."""
        declared = self.wf.deadlines.get(row.deadline)
        assert declared is not None
        alert = declared.spec.overdue_alerts[step]
        when = alert.after if alert.after is not None else f"every {alert.every}"
        self.audit(
            row.deadline,
            "overdue",
            f"{self._name(row)} overdue since {_day(row)}: alert {step + 1} ({when})",
            row,
        )
        self.events.append(
            DeadlineEvent(
                workflow=self.wf,
                # the chain as it ends with this alert's record: tells two alerts apart
                instance=dataclasses.replace(
                    self.instance, audit_seq=self.seq, audit_head=self.head
                ),
                deadline=row.deadline,
                kind="overdue",
                due_at=row.due_at,
                at=self.at,
                last_day=row.last_day or self.planner.last_day(row.due_at),
                occurrence=row.occurrence,
                step=step,
            )
        )

    def _due_timer(self, declared: Declared, row: Obligation) -> PlannedTimer:
        return PlannedTimer(declared.spec.id, DUE, row.due_at, row.occurrence, obligation_id=row.id)

    def _name(self, row: Obligation) -> str:
        return f"deadline {row.deadline!r} #{row.occurrence}"

    def _met_words(self, row: Obligation) -> str:
        late = row.days_late or 0
        return f"met ({row.met_by})" + (f", {late} day(s) late" if late else ", on time")


def _day(row: Obligation) -> str:
    return row.last_day.isoformat() if row.last_day else row.due_at.isoformat()


def _moved(planned: PlannedTimer, at: datetime) -> PlannedTimer:
    return dataclasses.replace(planned, due_at=at)
