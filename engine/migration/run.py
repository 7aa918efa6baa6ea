"""Running a migration plan: per instance, a dry run or one transaction each.

Instances are read in batches (``batch`` per read, oldest first); each is then migrated in
its own unit of work: locked, checked again (still on the plan's ``from`` version), moved to
the target version and state with its data changed, its timers carried
(:mod:`~opcatflow.engine.migration.carry`), and a ``migrated`` record appended to its audit
chain (from, to, the plan's SHA-256). An instance the target version refuses (its data
invalid there, a required field empty, a deadline condition failing) is listed with the
reason and left as it was; the others go on. A run killed half way leaves every instance
either migrated or not: running the plan again migrates the rest.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opcatflow.engine.audit import CURRENT_FORMAT, AuditRecord, make_record
from opcatflow.engine.crypto.cipher import reason_place
from opcatflow.engine.crypto.store import SealedUnitOfWork
from opcatflow.engine.deadlines import condition_refusal
from opcatflow.engine.errors import DefinitionError
from opcatflow.engine.instance import Instance
from opcatflow.engine.ledger import Ledger
from opcatflow.engine.migration.arm import Arming, plan_arming
from opcatflow.engine.migration.carry import TimerMove, carry_timers
from opcatflow.engine.migration.convert import Conversion, OperatorMapping, prepare, values_of
from opcatflow.engine.migration.plan import Plan, load_plan
from opcatflow.engine.runtime import Engine

MIGRATED = "migrated"  # the audit outcome
MIGRATE = "migrate"  # the audit trigger


@dataclass(frozen=True)
class InstanceOutcome:
    """What the plan does (or would do) to one instance.

    Attributes:
        outcome: ``migrated``, ``would migrate`` (dry run), ``refused`` (left as it was,
            ``reason`` says why), or ``skipped`` (already moved by another run).
        data: what changes in its data, by field name (never a value).
    """

    instance_id: str
    from_state: str
    to_state: str
    outcome: str
    reason: str | None = None
    data: tuple[str, ...] = ()
    timers: tuple[TimerMove, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "outcome": self.outcome,
            "reason": self.reason,
            "data": list(self.data),
            "timers": [t.as_json() for t in self.timers],
        }


@dataclass
class MigrationReport:
    """Every instance a run looked at, in order."""

    workflow: str
    from_version: int
    to_version: int
    plan: str  # SHA-256 of the plan file
    dry_run: bool
    outcomes: list[InstanceOutcome] = field(default_factory=list)
    finished: int = 0  # instances in a final state: they stay on the old version

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for o in self.outcomes:
            found[o.outcome] = found.get(o.outcome, 0) + 1
        return found

    @property
    def refused(self) -> list[InstanceOutcome]:
        return [o for o in self.outcomes if o.outcome == "refused"]

    def as_json(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "from": self.from_version,
            "to": self.to_version,
            "plan": self.plan,
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "finished_kept": self.finished,
            "instances": [o.as_json() for o in self.outcomes],
        }


def migrate_data(
    plan: Plan,
    data: Mapping[str, Any],
    conversion: Conversion | None = None,
    computed: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The instance data after the plan's renames, drops, conversions and defaults, then the
    values its state's ``set`` computed; what changed (field names only), and the values to
    convert the conversion does not know."""
    new = dict(data)
    notes = []
    unknown: list[str] = []
    for old, name in plan.rename.items():
        if old in new:
            new[name] = new.pop(old)
            notes.append(f"renamed {old} to {name}")
    for name in sorted(plan.drop):
        if new.pop(name, None) is not None:
            notes.append(f"dropped {name}")
    if conversion is not None:
        new, converted, unknown = conversion.apply(new)
        notes += converted
    for name, value in plan.set_default.items():
        if new.get(name) is None:
            new[name] = value
            notes.append(f"set {name} (default)")
    for name, value in (computed or {}).items():
        new[name] = value
        notes.append(f"set {name}")
    return new, notes, unknown


def computed_values(
    plan: Plan, current: Instance, entered_on: str
) -> tuple[dict[str, Any], str | None]:
    """The values the plan's ``set`` gives ``current`` in its state, or why they cannot be
    computed (the instance is then refused, as for invalid data)."""
    expressions = {**plan.set, **plan.moves[current.state].set}
    if not expressions:
        return {}, None
    data = dict(current.data)
    names = {**data, "data": data, "state": current.state, "entered_on": entered_on}
    values: dict[str, Any] = {}
    for name, expression in expressions.items():
        try:
            values[name] = expression(**names)
        except Exception as err:  # a bounded sandbox: past its budget, or a bad operand
            return {}, f"set {name}: {expression.source!r} failed: {err}"
    return values, None


class Migrator:
    """Runs plans through an engine (its store, clock, audit key, deadline settings).

    Args:
        actor: who the ``migrated`` records name.
        role: the role they name (an operator's, not a workflow's).
    """

    def __init__(self, engine: Engine, *, actor: str = "migration", role: str = "admin") -> None:
        self.engine = engine
        self.actor = actor
        self.role = role

    def load(self, text: str, path: str) -> Plan:
        """Raises: DefinitionError (every problem located), as for a definition."""
        return load_plan(text, path, self.engine.workflow)

    def run(
        self,
        plan: Plan,
        *,
        dry_run: bool,
        batch: int = 100,
        on_outcome: Callable[[InstanceOutcome], None] | None = None,
        mapping: OperatorMapping | None = None,
    ) -> MigrationReport:
        """Migrate (or, with ``dry_run``, describe) every running instance of the plan's
        ``from`` version.

        Raises:
            DefinitionError: a non-final state holding instances is not mapped (located at
                the plan's ``states``); nothing is migrated.
            UnmappedValues: a value to convert to a register id matches no entry (or
                several) and ``mapping`` does not give it; nothing is migrated.
        """
        self.check_occupied(plan)
        conversion = self.conversion(plan, mapping, batch) if plan.convert else None
        report = MigrationReport(
            plan.workflow, plan.source.version, plan.target.version, plan.digest, dry_run
        )
        for page in self._pages(plan, batch):
            running = [
                i for i in page if i.state not in plan.source.finals or i.state in plan.moves
            ]
            report.finished += len(page) - len(running)
            if dry_run:  # one read per page: nothing is locked, nothing written
                with self.engine.store.read() as uow:
                    now = self.engine.clock.now()
                    outcomes = [
                        self._one(uow, plan, i, now, apply=False, conversion=conversion)
                        for i in running
                    ]
            else:
                outcomes = [self._apply(plan, i.id, conversion) for i in running]
            for outcome in outcomes:
                report.outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
        return report

    def check_occupied(self, plan: Plan) -> None:
        """Raises: DefinitionError when running instances sit in states the plan omits."""
        with self.engine.store.read() as uow:
            census = uow.instances.census()
        occupied = {
            state: n
            for (w, v, state), n in census.items()
            if (w, v) == (plan.workflow, plan.source.version) and state not in plan.source.finals
        }
        problem = plan.unmapped_problem(occupied)
        if problem is not None:
            raise DefinitionError([problem])

    def conversion(
        self, plan: Plan, mapping: OperatorMapping | None, batch: int = 100
    ) -> Conversion:
        """Every free-text value the plan converts, in every running instance, matched to
        a register entry (or given by ``mapping``).

        Raises:
            UnmappedValues: every value left without an entry, and every mapping problem.
        """
        found: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for page in self._pages(plan, batch):
            for instance in page:
                if instance.state in plan.source.finals:
                    continue
                data, _, _ = migrate_data(plan, instance.data)
                for target, text in set(values_of(plan.convert, data)):
                    holders = found[(target.register, text)]
                    holders[target.name] = holders.get(target.name, 0) + 1
        return prepare(plan.doc, plan.convert, found, self.engine.registers, mapping)

    def _pages(self, plan: Plan, batch: int) -> Iterator[list[Instance]]:
        after: tuple[datetime, str] | None = None
        while True:
            with self.engine.store.read() as uow:
                page = uow.instances.query(
                    workflow=plan.workflow,
                    workflow_version=plan.source.version,
                    after=after,
                    limit=batch,
                )
            yield page
            if len(page) < batch:
                return
            after = (page[-1].created_at, page[-1].id)

    def _apply(
        self, plan: Plan, instance_id: str, conversion: Conversion | None
    ) -> InstanceOutcome:
        with self.engine.store.write() as uow:
            current, now = self.engine.lock_for_record(uow, instance_id)
            if current.workflow_version != plan.source.version:
                return InstanceOutcome(current.id, current.state, current.state, "skipped")
            outcome = self._one(uow, plan, current, now, apply=True, conversion=conversion)
        if outcome.outcome == MIGRATED:
            self.engine.log.info(
                "instance_migrated",
                instance_id=instance_id,
                workflow=plan.workflow,
                from_version=plan.source.version,
                to_version=plan.target.version,
                plan=plan.digest,
            )
        return outcome

    def _one(
        self,
        uow: SealedUnitOfWork,
        plan: Plan,
        current: Instance,
        now: datetime,
        *,
        apply: bool,
        conversion: Conversion | None = None,
    ) -> InstanceOutcome:
        move = plan.moves[current.state]
        target = plan.target
        planner = self.engine.timers.planner
        entered_on = planner.calendar.local_date(current.state_entered_at).isoformat()
        computed, failed = computed_values(plan, current, entered_on)
        data, notes, unknown = migrate_data(plan, current.data, conversion, computed)
        if move.reopen:
            notes.insert(0, f"reopened from final state {current.state}")
        if unknown:  # written since the values were read: a new run matches or maps them
            reason = f"not matched to a register entry: {', '.join(unknown)}; run the plan again"
            base = (current.id, current.state, move.to)
            return InstanceOutcome(*base, "refused", reason, tuple(notes))
        clean, errors = target.schema.validate(data)
        errors = ([failed] if failed else []) + errors
        if not errors:
            errors = target.schema.resolve({}, clean)
        missing = [n for n in target.schema.required if clean.get(n) is None]
        errors += [
            f"{n}: required by version {target.version} (give a set_default)" for n in missing
        ]
        if not errors:
            problem = condition_refusal(target, move.to, clean)
            errors += [problem] if problem is not None else []
        base = (current.id, current.state, move.to)
        if errors:
            return InstanceOutcome(*base, "refused", "; ".join(errors), tuple(notes))
        clean = {k: v for k, v in clean.items() if v is not None}
        rows = uow.obligations.of_instance(current.id)
        arming = plan_arming(uow, plan, current, clean, rows, planner=planner)
        armed = [a for a in arming if a.due_at is not None]
        # A dry run writes nothing, not even the instance's keys: its record is not made.
        after = Instance(
            id=current.id,
            workflow_id=current.workflow_id,
            workflow_version=target.version,
            state=move.to,
            data=clean,
            version=current.version + 1,
            parent_id=current.parent_id,
            created_at=current.created_at,
            updated_at=now,
            state_entered_at=current.state_entered_at,  # the anchor its deadlines count from
            audit_seq=current.audit_seq,
            audit_head=current.audit_head,
        )
        record = self._record(uow, plan, current, after, armed=armed) if apply else None
        if record is not None:
            after = dataclasses.replace(after, audit_seq=record.seq, audit_head=record.hash)
        timers = carry_timers(
            uow, plan, current, after, planner=planner, at=now, apply=apply, rows=rows
        )
        timers += [TimerMove.of(a, now=now) for a in arming]
        if record is None:
            return InstanceOutcome(*base, "would migrate", None, tuple(notes), tuple(timers))
        if not uow.instances.update(after, current.version):
            return InstanceOutcome(*base, "skipped", "changed meanwhile")
        uow.audit.append(record)
        self._arm(uow, plan, after, armed, now=now)
        return InstanceOutcome(*base, MIGRATED, None, tuple(notes), tuple(timers))

    def _arm(
        self,
        uow: SealedUnitOfWork,
        plan: Plan,
        after: Instance,
        armed: list[Arming],
        *,
        now: datetime,
    ) -> None:
        """Create the obligations of the deadlines armed at migration, each with its record
        after the ``migrated`` one; one overdue already has its first alert handed to the
        hooks (the outbox), as entering its scope late would."""
        if not armed:
            return
        book = Ledger(
            uow, plan.target, after, self.engine.timers.planner,
            actor=self.actor, role=self.role, at=now,
        )  # fmt: skip
        for arming in armed:
            assert arming.due_at is not None
            book.create(arming.declared, due_at=arming.due_at, anchor=arming.anchor)
        for event in book.events:
            for hook in self.engine.hooks:
                hook.on_deadline(uow, event)

    def _record(
        self,
        uow: SealedUnitOfWork,
        plan: Plan,
        current: Instance,
        after: Instance,
        *,
        armed: list[Arming],
    ) -> AuditRecord:
        data, state, now = after.data, after.state, after.updated_at
        source, target = plan.source, plan.target
        sealed = source.schema.sealed | target.schema.sealed
        records = {**source.schema.records, **target.schema.records}
        keys = uow.ensure_keys(current.id, now)  # made now for an instance an older release wrote
        diff = keys.redactor.changes(current.data, data, sealed, records)
        seq = current.audit_seq + 1
        reason = f"migration plan {plan.digest[:12]}: v{source.version} to v{target.version}"
        changes = {
            "migrated": {"from": source.version, "to": target.version, "plan": plan.digest},
            "data": json.loads(diff),
        }
        if armed:  # deadlines new in the target state, counted from facts the case holds
            changes["armed"] = [a.as_json() for a in armed]
        return make_record(
            instance_id=current.id,
            seq=seq,
            at=now,
            actor=self.actor,
            role=self.role,
            workflow_id=current.workflow_id,
            workflow_version=target.version,
            trigger=MIGRATE,
            from_state=current.state,
            to_state=state,
            outcome=MIGRATED,
            reason=keys.seal_text(reason, reason_place(current.id, seq)),
            changes=json.dumps(changes, sort_keys=True, separators=(",", ":")),
            prev_hash=current.audit_head,
            format=CURRENT_FORMAT,
            state_hash=uow.state_hash_to_write(after),
        )
