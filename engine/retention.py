"""Retention: a workflow's ``retention: <n> <unit> after closed`` erases its cases that long
after they reached a final state, unless a legal hold suspends it.

The period is counted in the NPM's calendar: a case closed (entered a final state) on local
day D is kept through D + period (its last day), and erased once that day is over. The
scheduler applies it (:meth:`Scheduler.tick` runs :func:`apply_retention` once per local day
of the NPM); ``opcatflow retention --due`` lists what it will erase ahead of time. Each
erasure is an ordinary :func:`~opcatflow.engine.erasure.erase`, audited in the case's chain
(actor ``scheduler``, role ``retention``, the definition's period as its reason).

A legal hold (:func:`hold`, :func:`release`) is set and lifted with a reason, each audited;
a held case is listed but not erased until its hold is lifted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from opcatflow.engine.audit import HELD, RELEASED
from opcatflow.engine.erasure import ERASER_ROLES, Erasure, erase
from opcatflow.engine.errors import InstanceErased, TransitionRefused
from opcatflow.engine.inputs import check_call
from opcatflow.engine.instance import Instance
from opcatflow.engine.privacy_checks import parse_retention
from opcatflow.engine.runtime import Engine

RETENTION_ACTOR = "scheduler"
RETENTION_ROLE = "retention"
_PAGE = 500


@dataclass(frozen=True)
class RetentionDue:
    """A closed case and the day retention erases it."""

    instance_id: str
    workflow: str
    state: str
    closed_on: date  # the local day it reached its final state
    kept_until: date  # its last day: erased once this day is over
    retention: str  # as the definition says it
    held: bool  # a legal hold suspends its erasure

    def as_json(self) -> dict[str, object]:
        return {
            "instance_id": self.instance_id,
            "workflow": self.workflow,
            "state": self.state,
            "closed_on": self.closed_on.isoformat(),
            "kept_until": self.kept_until.isoformat(),
            "retention": self.retention,
            "held": self.held,
        }


def due(engine: Engine, *, through: date) -> list[RetentionDue]:
    """Every closed case of a workflow with ``retention:``, not yet erased, whose last day
    kept is ``through`` or earlier (the day before today: those due now), by that day."""
    found: list[RetentionDue] = []
    for instances in _closed_pages(engine):
        candidates = [_due(engine, i) for i in instances]
        ids = [c.instance_id for c in candidates if c is not None and c.kept_until <= through]
        if not ids:
            continue
        with engine.store.read() as uow:
            erased = uow.data_keys.erased_among(ids)
            held = uow.privacy.held_among(ids)
        for c in candidates:
            if c is not None and c.instance_id in ids and c.instance_id not in erased:
                found.append(RetentionDue(**{**c.__dict__, "held": c.instance_id in held}))
    return sorted(found, key=lambda d: (d.kept_until, d.instance_id))


def apply_retention(engine: Engine, now: datetime | None = None) -> list[Erasure]:
    """Erase every case whose retention ended before ``now`` (default: the engine's clock)
    and that no legal hold suspends; each in its own unit of work, audited."""
    now = now or engine.clock.now()
    yesterday = engine.settings.calendar.local_date(now) - timedelta(days=1)
    erased = []
    for item in due(engine, through=yesterday):
        if item.held:
            continue
        try:
            erased.append(
                erase(
                    engine,
                    item.instance_id,
                    actor=RETENTION_ACTOR,
                    role=RETENTION_ROLE,
                    reason=f"retention: {item.retention}, kept until {item.kept_until}",
                    legal_basis=f"retention schedule of workflow {item.workflow}",
                    allowed=True,
                )
            )
        except InstanceErased:
            continue  # another worker erased it meanwhile
    if erased:
        engine.log.info("retention_applied", erased=len(erased))
    return erased


def _closed_pages(engine: Engine) -> Iterator[list[Instance]]:
    with_retention = sorted({wf.id for wf in engine.catalog if wf.definition.retention})
    for workflow in with_retention:
        finals = sorted(
            {name for wf in engine.catalog if wf.id == workflow
             for name, spec in wf.definition.states.items() if spec.final}
        )  # fmt: skip
        for state in finals:
            after = None
            while True:
                page = engine.query(workflow=workflow, state=state, after=after, limit=_PAGE)
                if page:
                    yield page
                if len(page) < _PAGE:
                    break
                after = page[-1]


def _due(engine: Engine, instance: Instance) -> RetentionDue | None:
    wf = engine.workflow(instance.workflow_id, instance.workflow_version)
    text = wf.definition.retention
    if text is None or not wf.definition.states[instance.state].final:
        return None
    calendar = engine.settings.calendar
    closed_on = calendar.local_date(instance.state_entered_at)
    kept_until = calendar.shift_date(closed_on, parse_retention(text), 1)
    return RetentionDue(
        instance.id, instance.workflow_id, instance.state, closed_on, kept_until, text, False
    )


def hold(engine: Engine, instance_id: str, *, actor: str, role: str, reason: str) -> bool:
    """Put a case under a legal hold (retention will not erase it); audited. Returns whether
    it was not held yet. Raises: TransitionRefused (role, or no reason), InstanceNotFound."""
    return _change_hold(engine, instance_id, actor=actor, role=role, reason=reason, held=True)


def release(engine: Engine, instance_id: str, *, actor: str, role: str, reason: str) -> bool:
    """Lift a case's legal hold; audited. Returns whether it was held. Raises what
    :func:`hold` raises."""
    return _change_hold(engine, instance_id, actor=actor, role=role, reason=reason, held=False)


def _change_hold(
    engine: Engine, instance_id: str, *, actor: str, role: str, reason: str, held: bool
) -> bool:
    check_call(actor=actor, role=role, reason=reason)
    trigger = "legal-hold" if held else "legal-hold-release"
    if not reason.strip():
        raise TransitionRefused(instance_id, trigger, "data", "a legal hold needs a reason")
    with engine.store.write() as uow:
        current, at = engine.lock_for_record(uow, instance_id)
        if uow.data_keys.erased_among([instance_id]):
            raise InstanceErased(instance_id, trigger)
        wf = engine.workflow(current.workflow_id, current.workflow_version)
        allowed = ERASER_ROLES | set(wf.definition.erasable_by)
        if role not in allowed:
            roles = ", ".join(sorted(allowed))
            raise TransitionRefused(
                instance_id, trigger, "role", f"role {role!r} may not set or lift a legal hold "
                f"(allowed: {roles})",
            )  # fmt: skip
        changed = (
            uow.privacy.hold(instance_id, actor, at) if held else uow.privacy.release(instance_id)
        )
        if not changed:
            return False
        seq = current.audit_seq + 1
        record = engine._writes.record(
            uow, current, seq=seq, prev=current.audit_head, now=at, actor=actor, role=role,
            trigger=trigger, to_state=None, outcome=HELD if held else RELEASED, reason=reason,
            changes=json.dumps({"legal_hold": [not held, held]}),
        )  # fmt: skip
        uow.audit.append(record)
        uow.instances.advance_audit_head(current.id, seq, record.hash)
    engine.log.info("legal_hold_changed", instance_id=instance_id, held=held, actor=actor)
    return True
