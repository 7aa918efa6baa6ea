"""Deciding one trigger against one instance, in memory: no I/O, no clock reads.

The store-backed :class:`~opcatflow.engine.runtime.Engine` wraps this in a transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from transitions.core import MachineError

from opcatflow.engine.compiled import ActionWroteOutside, CompiledWorkflow, Cursor, Option
from opcatflow.engine.deadlines import condition_refusal
from opcatflow.engine.definition import TransitionSpec
from opcatflow.engine.embargo import embargoed_fields
from opcatflow.engine.errors import RefusalKind
from opcatflow.engine.inputs import check_size
from opcatflow.engine.registry import NO_POLICY, Lookup, RuleContext, no_lookup
from opcatflow.engine.sharing import (
    DECISIONS,
    NOT_A_BODY,
    REASON,
    Policy,
    decision_problems,
    may_share,
)
from opcatflow.engine.suggest import did_you_mean


@dataclass(frozen=True, slots=True)
class Applied:
    state: str
    data: dict[str, Any]
    state_changed: bool
    option: Option
    ctx: RuleContext


@dataclass(frozen=True, slots=True)
class Refused:
    kind: RefusalKind
    reason: str


def decide(
    wf: CompiledWorkflow,
    *,
    instance_id: str,
    state: str,
    data: Mapping[str, Any],
    trigger: str,
    actor: str,
    role: str,
    supplied: Mapping[str, Any],
    now: datetime,
    reason: str | None = None,
    lookup: Lookup = no_lookup,
    policy: Policy = NO_POLICY,
) -> Applied | Refused:
    """Apply ``trigger`` to an instance in ``state`` with ``data``, or say why not.

    The data contract is checked here, with the role and guards: an owner role acts only on
    its own instances (kind ``role``); ``supplied`` may hold only fields of the option's write
    set, and none the role may not write or read, nor a personal sub-field of a records field
    the role may not read (kind ``data``); actions may change only
    the fields they declare (kind ``action``). ``lookup`` and ``policy`` are handed to the
    rules (see :class:`RuleContext`). A transition that ``shares`` personal data is refused
    (kind ``guard``) unless :func:`~opcatflow.engine.sharing.may_share` allows it, and
    do-no-harm decisions it records are checked against the policy's bodies (kind ``data``).

    Raises:
        LimitExceeded: a field's value, or the data it would leave, past its limit.
    """
    owner = wf.field_rules
    if role in owner.owner_roles and data.get(owner.owner_field or "") != actor:
        # Before anything else: a refusal must not tell what state someone else's instance is in
        return Refused(
            "role",
            f"role {role!r} acts only on instances it owns (field {owner.owner_field!r}), "
            "and this one is not its own",
        )
    options = wf.options.get((state, trigger))
    if options is None:
        if trigger not in wf.triggers:
            return Refused(
                "trigger", f"unknown trigger {trigger!r}{did_you_mean(trigger, wf.triggers)}"
            )
        possible = ", ".join(wf.triggers_from(state)) or "none: the instance is finished"
        return Refused(
            "state", f"{trigger!r} cannot be fired in state {state!r} (possible: {possible})"
        )
    if not any(role in o.roles for o in options):
        allowed = sorted({r for o in options for r in o.roles})
        return Refused(
            "role", f"role {role!r} may not fire {trigger!r} (allowed: {', '.join(allowed)})"
        )
    clean, errors = wf.schema.validate(supplied)
    if errors:
        return Refused("data", "; ".join(errors))
    if clean:
        # Before the records changes are applied: whether one writes a personal sub-field
        # is told from what the caller supplied, not from what applying it would reveal
        rules = wf.field_rules
        barred = rules.unwritable(role).intersection(clean)
        if barred:
            return Refused("data", rules.why(role, barred, wf.definition))
        hidden = rules.parts_refusal(role, wf.schema.records, data, clean)
        if hidden is not None:
            return Refused("data", hidden)
        embargoed = embargo_refusal(wf, role, state, data, clean)
        if embargoed is not None:
            return Refused("data", embargoed)
        errors = wf.schema.resolve(data, clean)
        if errors:
            return Refused("data", "; ".join(errors))
    merged = {**data, **clean} if clean else dict(data)
    ctx = RuleContext(
        instance_id=instance_id,
        workflow=wf.id,
        state=state,
        trigger=trigger,
        actor=actor,
        role=role,
        now=now,
        supplied=clean,
        data=merged,
        reason=reason,
        lookup=lookup,
        policy=policy,
    )
    cursor = Cursor(state, ctx)
    try:
        applied = wf.machine.events[trigger].trigger(cursor)
    except MachineError as err:  # cannot happen for a validated definition; refuse, never crash
        return Refused("state", str(err))
    except ActionWroteOutside as err:
        return Refused("action", str(err))
    except Exception as err:  # an action failed: nothing is stored
        return Refused("action", f"action failed: {err!r}")
    if not applied:
        return _refusal(cursor.failures)
    new_data = {k: v for k, v in ctx.data.items() if v is not None}
    if wf.schema.records:
        # After the actions ran: an append-only record is refused whoever rewrote it
        problems = wf.schema.append_only_problems(data, new_data)
        if problems:
            return Refused("data", "; ".join(problems))
    if new_data != data:  # unchanged data was within the limit when it was stored
        check_size(new_data)  # each change within the limit may still add up past it
    assert cursor.applied is not None
    changed = cursor.state != state
    problem = condition_refusal(wf, cursor.state, new_data, None if changed else data)
    if problem is not None:
        return Refused("guard", problem)
    sharing = sharing_refusal(
        wf, cursor.applied.spec, before=data, after=new_data, policy=policy, now=now
    )
    if sharing is not None:
        return sharing
    return Applied(cursor.state, new_data, changed, cursor.applied, ctx)


def embargo_refusal(
    wf: CompiledWorkflow,
    role: str,
    state: str,
    data: Mapping[str, Any],
    supplied: Mapping[str, Any],
) -> str | None:
    """No write without read: ``role`` may not write a field an embargo withholds from it,
    whether the embargo holds before the write or would hold after it."""
    if not wf.definition.embargoes:
        return None
    after = {**data, **supplied}
    hidden = embargoed_fields(wf.definition, [role], state, data) | embargoed_fields(
        wf.definition, [role], state, after
    )
    barred = sorted(hidden.intersection(supplied))
    if not barred:
        return None
    return (
        f"role {role!r} may not write {', '.join(barred)} (withheld from it while an "
        "embargo holds on this instance)"
    )


def sharing_refusal(
    wf: CompiledWorkflow,
    spec: TransitionSpec,
    *,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    policy: Policy,
    now: datetime,
) -> Refused | None:
    """Refuse recording a do-no-harm decision the policy does not allow, or sharing data
    :func:`may_share` does not allow (on the data as the transition leaves it)."""
    if DECISIONS in wf.schema.fields and before.get(DECISIONS) != after.get(DECISIONS):
        problems = decision_problems(
            before.get(DECISIONS),
            after.get(DECISIONS),
            bodies=policy.bodies,
            fields=[*wf.schema.fields, REASON],  # the reason is shared like a field
        )
        if problems:
            return Refused("data", "; ".join(problems))
    shares = spec.shares
    if shares is None:
        return None
    recipient = after.get(shares.recipient) if shares.recipient else None
    if shares.recipient and recipient not in policy.bodies:
        return Refused("data", f"{shares.recipient}: {recipient!r} {NOT_A_BODY}")
    verdict = may_share(
        after,
        use=shares.use,
        recipient=None if recipient is None else str(recipient),
        fields=shares.fields,
        personal=wf.schema.personal,
        bodies=policy.bodies,
        today=policy.today(now),
    )
    if verdict.allowed:
        return None
    withheld = ", ".join(sorted(verdict.withheld))
    return Refused("guard", f"{spec.trigger} would share personal data ({withheld}): {verdict.why}")


def _refusal(failures: list[tuple[RefusalKind, str]]) -> Refused:
    # Prefer the most specific failure: a guard or data problem of an option the role could
    # take says more than "role may not" from an option meant for someone else.
    useful = [f for f in failures if f[0] != "role"] or failures
    kind = useful[0][0]
    return Refused(kind, "; ".join(dict.fromkeys(reason for _, reason in useful)))
