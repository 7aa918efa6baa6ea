"""The write side of the engine: what one transaction stores for a start or a trigger.

:class:`~opcatflow.engine.runtime.Engine` opens the transaction and decides; this module
writes the instance row, its audit records, the children a transition opens, and runs the
in-transaction hooks.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from opcatflow.engine.audit import (
    APPLIED,
    CURRENT_FORMAT,
    GENESIS,
    OPENED,
    REFUSED,
    STARTED,
    AuditRecord,
    Redactor,
    make_record,
)
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.contract import outside_write_set
from opcatflow.engine.crypto.cipher import reason_place
from opcatflow.engine.crypto.store import SealedUnitOfWork
from opcatflow.engine.deadlines import condition_refusal
from opcatflow.engine.errors import (
    ConcurrentUpdate,
    DefinitionError,
    LimitExceeded,
    Problem,
    VersionRetired,
)
from opcatflow.engine.events import ChainEnd, TransactionHook, TransitionEvent
from opcatflow.engine.firing import Applied, Refused, embargo_refusal
from opcatflow.engine.inputs import check_size
from opcatflow.engine.instance import Instance
from opcatflow.engine.loader import Catalog, same_content
from opcatflow.engine.registry import Lookup, Registry, RuleContext
from opcatflow.engine.rows import DefinitionStatus, StoredDefinition
from opcatflow.engine.sandbox import BudgetExceeded
from opcatflow.engine.sharing import Policy

START = "start"


@dataclass(frozen=True, slots=True)
class Child:
    workflow: CompiledWorkflow
    role: str
    data: dict[str, Any]
    reason: str | None
    instance_id: str


class AppliedPlan(NamedTuple):
    """An applied trigger's row and audit records, built but not yet written
    (:meth:`Writes.plan_applied`)."""

    workflow: CompiledWorkflow
    current: Instance
    outcome: Applied
    instance: Instance  # the row to store, its chain ending at the last record
    records: list[AuditRecord]
    children: Sequence[Child]  # started after the hooks, each with its link record above
    trigger: str
    actor: str
    role: str
    at: datetime
    reason: str | None


def start_data(wf: CompiledWorkflow, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The checked data a new instance starts with, and what is wrong with it.

    Raises:
        LimitExceeded: a value, or the whole, past its limit.
    """
    clean, errors = wf.schema.validate(data)
    check_size(clean)
    if not errors:
        errors = wf.schema.resolve({}, clean)
    required = (*wf.schema.required, *wf.definition.start.requires)
    # a value given but wrong is reported as wrong, not as missing too
    errors += [
        f"{name}: required"
        for name in dict.fromkeys(required)
        if clean.get(name) is None and data.get(name) is None
    ]
    return {k: v for k, v in clean.items() if v is not None}, errors


def start_refusal(wf: CompiledWorkflow, role: str, data: Mapping[str, Any]) -> str | None:
    """Why ``role`` may not start ``wf`` with the (schema-checked) ``data``, or ``None``:
    a field outside the start write set, or one the role may not write (``write_roles``,
    the read rule, the owner field), or personal sub-fields of records it may not read."""
    if not data:
        return None
    allowed = wf.start_writes
    if allowed is not None and not data.keys() <= allowed:
        return outside_write_set(START, data.keys() - allowed, wf.writers)
    rules = wf.field_rules
    barred = rules.unwritable(role).intersection(data)
    if barred:
        return rules.why(role, barred, wf.definition)
    embargoed = embargo_refusal(wf, role, wf.initial, {}, data)
    if embargoed is not None:
        return embargoed
    return rules.parts_refusal(role, wf.schema.records, {}, data)


def open_refusal(
    child: CompiledWorkflow, writes: frozenset[str], data: Mapping[str, Any]
) -> str | None:
    """Why an ``opens`` entry may not write ``data`` into a new ``child``, or ``None``: the
    child's start write set and the entry's own ``writes`` bound it (``validate`` checks the
    same, so this only catches a catalog that changed under a running process)."""
    allowed = child.start_writes
    if allowed is None or data.keys() <= allowed | writes:
        return None
    outside = ", ".join(sorted(data.keys() - allowed - writes))
    return f"cannot open {child.id!r}: it does not let an opening write {outside}"


def enter_initial(
    wf: CompiledWorkflow,
    data: dict[str, Any],
    *,
    instance_id: str,
    actor: str,
    role: str,
    now: datetime,
    reason: str | None,
    lookup: Lookup,
    policy: Policy,
) -> dict[str, Any]:
    """The start data after the initial state's on_enter actions (the caller's data is
    everything supplied; ``policy`` gives them the NPM's bodies and day). An action's
    exception propagates: the caller refuses the start."""
    if not wf.on_start:
        return data
    ctx = RuleContext(
        instance_id=instance_id,
        workflow=wf.id,
        state=wf.initial,
        trigger=START,
        actor=actor,
        role=role,
        now=now,
        supplied=data,
        data=dict(data),
        reason=reason,
        lookup=lookup,
        policy=policy,
    )
    for action in wf.on_start:
        action(ctx)
    return {k: v for k, v in ctx.data.items() if v is not None}


class Writes:
    """Stores the outcome of a decision inside an open transaction."""

    def __init__(
        self,
        catalog: Catalog,
        hooks: Sequence[TransactionHook],
        registry: Registry,
    ) -> None:
        self.catalog = catalog
        self.registry = registry
        self.hooks = tuple(hooks)
        self._registered: set[tuple[str, int]] = set()

    def ensure_registered(self, uow: SealedUnitOfWork, wf: CompiledWorkflow, now: datetime) -> None:
        """Store the definition an instance is pinned to (once per process).

        A copy stored under an earlier fingerprint formula with the same content gets the
        current fingerprint, in place.

        Raises:
            DefinitionError: the id and version are stored with different content.
        """
        key = (wf.id, wf.version)
        if key in self._registered:
            return
        stored = uow.definitions.get(wf.id, wf.version)
        if stored is None:
            uow.definitions.add(
                StoredDefinition(
                    wf.id, wf.version, wf.fingerprint, wf.definition.title, wf.source, now
                )
            )
            # Another process starting on the same definitions may have stored it first.
            stored = uow.definitions.get(wf.id, wf.version)
            assert stored is not None  # inserted, or skipped because the key is taken
        if stored.fingerprint == wf.fingerprint:
            pass
        elif same_content(wf, stored.fingerprint, stored.source, self.registry):
            uow.definitions.set_fingerprint(wf.id, wf.version, wf.fingerprint)
        else:
            message = (
                f"workflow {wf.id!r} version {wf.version} is already stored with different "
                "content: give the changed definition a new version (running instances stay "
                "on the version they started with)"
            )
            raise DefinitionError([Problem("<database>", 1, 1, message)])
        self._registered.add(key)

    def admit(self, uow: SealedUnitOfWork, wf: CompiledWorkflow, now: datetime) -> None:
        """Refuse a new instance of a retired version, as the database says now (another
        process may have retired it), and store the definition the first time.

        Raises:
            VersionRetired
            DefinitionError: see :meth:`ensure_registered`.
        """
        stored = uow.definitions.get(wf.id, wf.version)
        if stored is not None and stored.status is DefinitionStatus.RETIRED:
            raise VersionRetired(wf.id, wf.version)
        self.ensure_registered(uow, wf, now)

    def retired_child(self, uow: SealedUnitOfWork, children: Sequence[Child]) -> Refused | None:
        """The refusal of a transition whose ``opens`` would start a retired version."""
        for child in children:
            wf = child.workflow
            stored = uow.definitions.get(wf.id, wf.version)
            if stored is not None and stored.status is DefinitionStatus.RETIRED:
                return Refused("retired", f"cannot open {wf.id!r}: version {wf.version} is retired")
        return None

    def insert_new(
        self,
        uow: SealedUnitOfWork,
        wf: CompiledWorkflow,
        data: dict[str, Any],
        *,
        actor: str,
        role: str,
        now: datetime,
        parent_id: str | None,
        reason: str | None,
        instance_id: str,
        notices: list[str] | None = None,
    ) -> Instance:
        """Store a new instance and its start record, and run the hooks.

        ``notices``: where the hooks' notices for the caller go.
        """
        self.admit(uow, wf, now)
        keys = uow.ensure_keys(instance_id, now)  # a child gets its own, like any instance
        instance = Instance(
            instance_id, wf.id, wf.version, wf.initial, data, 1, parent_id, now, now, now, 0, ""
        )
        record = make_record(
            instance_id=instance_id,
            seq=1,
            at=now,
            actor=actor,
            role=role,
            workflow_id=wf.id,
            workflow_version=wf.version,
            trigger=START,
            from_state=None,
            to_state=wf.initial,
            outcome=STARTED,
            reason=None if reason is None else keys.seal_text(reason, reason_place(instance_id, 1)),
            changes=keys.redactor.changes({}, data, wf.schema.sealed, wf.schema.records),
            prev_hash=GENESIS,
            format=CURRENT_FORMAT,
            state_hash=uow.state_hash_to_write(instance),
        )
        instance = dataclasses.replace(instance, audit_seq=1, audit_head=record.hash)
        uow.instances.insert(instance)
        uow.audit.append(record)
        event = TransitionEvent(
            workflow=wf,
            instance=instance,
            previous=None,
            trigger=START,
            actor=actor,
            role=role,
            at=now,
            reason=reason,
            entered=wf.initial,
            left=None,
            notices=notices if notices is not None else [],
            chain=ChainEnd(instance.audit_seq, instance.audit_head),
        )
        return self._run_hooks(uow, event)

    def plan_children(self, outcome: Applied) -> list[Child] | Refused:
        """Work out, in memory, every child the transition opens; any problem refuses it."""
        planned: list[Child] = []
        for spec in outcome.option.opens:
            child_wf = self.catalog.get(spec.workflow)
            role = spec.role or outcome.ctx.role
            if role not in child_wf.start_roles:
                return Refused("role", f"role {role!r} may not open {child_wf.id!r}")
            try:
                datasets = spec.children(outcome.ctx)
            except BudgetExceeded as err:
                return Refused("guard", f"cannot open {child_wf.id!r}: data stopped: {err}")
            except Exception as err:
                return Refused("data", f"cannot open {child_wf.id!r}: {err}")
            for values in datasets:
                try:
                    clean, errors = start_data(child_wf, values)
                except LimitExceeded as err:  # computed by the definition, not supplied
                    return Refused("data", f"cannot open {child_wf.id!r}: {err}")
                if errors:
                    return Refused("data", f"cannot open {child_wf.id!r}: {'; '.join(errors)}")
                outside = open_refusal(child_wf, spec.writes, clean)
                if outside is not None:
                    return Refused("data", outside)
                child_id = str(uuid.uuid4())
                try:
                    clean = enter_initial(
                        child_wf,
                        clean,
                        instance_id=child_id,
                        actor=outcome.ctx.actor,
                        role=role,
                        now=outcome.ctx.now,
                        reason=spec.reason,
                        lookup=outcome.ctx.lookup,
                        policy=outcome.ctx.policy,
                    )
                except Exception as err:  # an on_enter action failed: open nothing
                    return Refused("action", f"cannot open {child_wf.id!r}: {err!r}")
                problem = condition_refusal(child_wf, child_wf.initial, clean)
                if problem is not None:
                    return Refused("guard", f"cannot open {child_wf.id!r}: {problem}")
                planned.append(Child(child_wf, role, clean, spec.reason, child_id))
        return planned

    def store_refusal(
        self,
        uow: SealedUnitOfWork,
        current: Instance,
        *,
        trigger: str,
        actor: str,
        role: str,
        now: datetime,
        refusal: Refused,
    ) -> None:
        seq = current.audit_seq + 1
        record = self.record(
            uow,
            current,
            seq=seq,
            prev=current.audit_head,
            now=now,
            actor=actor,
            role=role,
            trigger=trigger,
            to_state=None,
            outcome=REFUSED,
            reason=refusal.reason,
            changes="{}",
        )
        uow.audit.append(record)
        if not uow.instances.advance_audit_head(current.id, seq, record.hash):
            raise ConcurrentUpdate(current.id, current.version, current.version + 1)

    def plan_applied(
        self,
        uow: SealedUnitOfWork,
        wf: CompiledWorkflow,
        current: Instance,
        outcome: Applied,
        children: Sequence[Child],
        *,
        trigger: str,
        actor: str,
        role: str,
        now: datetime,
        reason: str | None,
    ) -> AppliedPlan:
        """The row and the audit records an applied outcome leaves, built in memory: ``uow``
        seals (the row's hash is of its sealed values; a reason is sealed with the
        instance's key) and reads the audit key a personal change is hashed with, but
        nothing is written (:meth:`store_applied` writes the plan)."""
        seq, prev = current.audit_seq + 1, current.audit_head
        # The audit key is fetched only if a personal value changed: a change of other fields
        # needs none (and is allowed on an erased instance, where asking for it is refused).
        redactor = KeysRedactor(uow, current.id, now)
        # Positional arguments, in field order, here and for the event: keyword arguments cost
        # a quarter more to bind, and these are built on every fire.
        changed = outcome.state_changed
        after = Instance(
            current.id,
            current.workflow_id,
            current.workflow_version,
            outcome.state,
            outcome.data,
            current.version + 1,
            current.parent_id,
            current.created_at,
            now,  # updated_at
            now if changed else current.state_entered_at,
            current.audit_seq,
            current.audit_head,
        )
        after_hash = uow.state_hash_to_write(after)
        records = [
            self.record(
                uow,
                current,
                seq=seq,
                prev=prev,
                now=now,
                actor=actor,
                role=role,
                trigger=trigger,
                to_state=outcome.state,
                outcome=APPLIED,
                reason=reason,
                changes=redactor.changes(
                    current.data, outcome.data, wf.schema.sealed, wf.schema.records
                ),
                state_hash=after_hash,
            )
        ]
        for child in children:  # the parent's side of each link, in its own chain
            records.append(
                self.record(
                    uow,
                    current,
                    seq=records[-1].seq + 1,
                    prev=records[-1].hash,
                    now=now,
                    actor=actor,
                    role=role,
                    trigger=trigger,
                    to_state=outcome.state,
                    outcome=OPENED,
                    reason=child.reason,
                    changes=json.dumps({"opened": [child.workflow.id, child.instance_id]}),
                    state_hash=after_hash,
                )
            )
        last = records[-1]
        updated = Instance(
            after.id, after.workflow_id, after.workflow_version, after.state, after.data,
            after.version, after.parent_id, after.created_at, after.updated_at,
            after.state_entered_at, last.seq, last.hash,
        )  # fmt: skip
        return AppliedPlan(
            wf, current, outcome, updated, records, children, trigger, actor, role, now, reason
        )

    def store_applied(self, uow: SealedUnitOfWork, plan: AppliedPlan) -> Instance:
        """Write ``plan`` (:meth:`plan_applied`), run the hooks, and start the children;
        returns the instance as stored."""
        wf, current, outcome, updated = plan.workflow, plan.current, plan.outcome, plan.instance
        if not uow.instances.update(updated, current.version):
            raise ConcurrentUpdate(current.id, current.version, current.version + 1)
        for record in plan.records:
            uow.audit.append(record)
        event = TransitionEvent(
            workflow=wf,
            instance=updated,
            previous=current,
            trigger=plan.trigger,
            actor=plan.actor,
            role=plan.role,
            at=plan.at,
            reason=plan.reason,
            entered=outcome.state if outcome.state_changed else None,
            left=current.state if outcome.state_changed else None,
            notices=outcome.ctx.notes,
            chain=ChainEnd(updated.audit_seq, updated.audit_head),
        )
        updated = self._run_hooks(uow, event)
        for child in plan.children:
            self.insert_new(
                uow,
                child.workflow,
                child.data,
                actor=plan.actor,
                role=child.role,
                now=plan.at,
                parent_id=current.id,
                instance_id=child.instance_id,
                reason=child.reason or f"opened by {wf.id} {current.id} ({plan.trigger})",
            )
        return updated

    def _run_hooks(self, uow: SealedUnitOfWork, event: TransitionEvent) -> Instance:
        """Every hook's ``on_change``, then the deadline events the change caused; returns
        the instance with its audit chain as the hooks left it."""
        for hook in self.hooks:
            hook.on_change(uow, event)
        for deadline_event in event.deadline_events:
            for hook in self.hooks:
                hook.on_deadline(uow, deadline_event)
        chain, instance = event.chain, event.instance
        if chain is not None and chain.seq != instance.audit_seq:
            instance = dataclasses.replace(instance, audit_seq=chain.seq, audit_head=chain.head)
        return instance

    def record(
        self,
        uow: SealedUnitOfWork,
        current: Instance,
        *,
        seq: int,
        prev: str,
        now: datetime,
        actor: str,
        role: str,
        trigger: str,
        to_state: str | None,
        outcome: str,
        reason: str | None,
        changes: str,
        state_hash: str | None = None,
    ) -> AuditRecord:
        """The next record of ``current``'s chain, its reason sealed with the instance's
        data key (made now for an instance an older release wrote). ``state_hash``: of the
        row the change leaves (:meth:`SealedUnitOfWork.state_hash_to_write`); by default
        ``current``'s as stored (the record changes nothing on the row)."""
        if reason is not None:
            reason = uow.ensure_keys(current.id, now).seal_text(
                reason, reason_place(current.id, seq)
            )
        return make_record(
            instance_id=current.id,
            seq=seq,
            at=now,
            actor=actor,
            role=role,
            workflow_id=current.workflow_id,
            workflow_version=current.workflow_version,
            trigger=trigger,
            from_state=current.state,
            to_state=to_state,
            outcome=outcome,
            reason=reason,
            changes=changes,
            prev_hash=prev,
            format=CURRENT_FORMAT,
            state_hash=uow.state_hash_as_stored(current) if state_hash is None else state_hash,
        )


class KeysRedactor(Redactor):
    """The redactor of one instance's audit key, fetched on the first hash asked for.

    Raises (from :meth:`digest`): InstanceErased, KeyUnavailable."""

    def __init__(self, uow: SealedUnitOfWork, instance_id: str, now: datetime) -> None:
        super().__init__(b"")
        self._uow = uow
        self._instance_id = instance_id
        self._now = now
        self._keyed: Redactor | None = None

    def digest(self, value: Any) -> str:
        if self._keyed is None:
            self._keyed = self._uow.ensure_keys(self._instance_id, self._now).redactor
        return self._keyed.digest(value)
