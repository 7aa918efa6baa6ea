"""From an engine event to outbox messages: which notifications apply, to whom, saying what.

Recipients are resolved and personal data redacted here, when the message is written: the
outbox never holds a personal value that its recipient may not see. Templates are rendered
later, by the dispatcher, from the stored (redacted) context.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.data import DataSchema
from opcatflow.engine.definition import NotificationSpec, NotifyOn, RecipientSpec
from opcatflow.engine.events import DeadlineEvent, TransitionEvent
from opcatflow.engine.instance import Instance
from opcatflow.engine.settings import Settings
from opcatflow.engine.sharing import Bodies, Policy
from opcatflow.notifications.directory import EMAIL, Directory, Target
from opcatflow.notifications.model import (
    DEAD,
    PENDING,
    ROUTE,
    WEBHOOK,
    NewMessage,
    idempotency_key,
)
from opcatflow.notifications.redaction import NOBODY, WITHHELD, Audience, hide, redact

CLOUDEVENT_TYPES = {
    "started": "org.opcatflow.instance.started",
    "transition": "org.opcatflow.transition.applied",
    "reminder": "org.opcatflow.deadline.reminder",
    "due": "org.opcatflow.deadline.due",
    "overdue": "org.opcatflow.deadline.overdue",
}
OVERDUE = "overdue"  # an overdue alert step of an obligation


@dataclass(frozen=True)
class Occurrence:
    """What happened, in the terms templates and webhooks use."""

    workflow: CompiledWorkflow
    instance: Instance
    kind: str  # started | transition | reminder | due | overdue
    at: datetime
    trigger: str | None = None
    left: str | None = None
    entered: str | None = None
    actor: str | None = None
    role: str | None = None
    reason: str | None = None
    deadline: str | None = None
    due_at: datetime | None = None
    due_on: date | None = None  # the last day, in the NPM's calendar
    step: int | None = None  # for an overdue alert: its index in ``overdue_alerts``
    # field -> the title of the register entry it refers to (notifications.titles)
    titles: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of_change(cls, event: TransitionEvent) -> Occurrence:
        return cls(
            workflow=event.workflow,
            instance=event.instance,
            kind="started" if event.previous is None else "transition",
            at=event.at,
            trigger=event.trigger,
            left=event.left,
            entered=event.entered,
            actor=event.actor,
            role=event.role,
            reason=event.reason,
        )

    @classmethod
    def of_deadline(cls, event: DeadlineEvent) -> Occurrence:
        return cls(
            workflow=event.workflow,
            instance=event.instance,
            kind=event.kind,
            at=event.at,
            deadline=event.deadline,
            due_at=event.due_at,
            # an event built without the calendar: the last day in UTC
            due_on=event.last_day or (event.due_at - timedelta(microseconds=1)).date(),
            step=event.step,
        )

    @property
    def key(self) -> tuple[object, ...]:
        """What makes this occurrence unique among all of the instance's."""
        if self.kind in ("started", "transition"):
            return (self.instance.id, self.instance.audit_seq)
        # the scheduler writes an audit record per deadline event, so audit_seq tells apart
        # two reminders of one deadline processed together (catch-up after downtime)
        assert self.due_at is not None
        inst = self.instance
        return (inst.id, inst.audit_seq, self.deadline, self.kind, self.due_at.isoformat(), self.at)

    def matches(self, spec: NotificationSpec) -> bool:
        on = spec.on
        if on.enter is not None:
            return on.enter == self.entered
        if on.transition is not None:
            return self.kind == "transition" and on.transition == self.trigger
        # an overdue alert is declared on its deadline ('overdue_alerts'), never here
        return on.deadline == self.deadline and on.at == self.kind

    def event_name(self, spec: NotificationSpec | None = None) -> str:
        wf = self.workflow.id
        if spec is not None and spec.on.enter is not None:
            return f"{wf}.enter.{spec.on.enter}"
        if self.kind in ("reminder", "due", OVERDUE):
            return f"{wf}.{self.kind}.{self.deadline}"
        return f"{wf}.{self.kind}.{self.trigger}"


def _labels(wf: CompiledWorkflow) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    d = wf.definition
    states = {name: s.label or name for name, s in d.states.items()}
    triggers: dict[str, str] = {}
    for t in d.transitions:
        triggers.setdefault(t.trigger, t.label or t.trigger)
    deadlines = {x.id: x.label or x.id for s in d.states.values() for x in s.deadlines}
    return states, triggers, deadlines


def _due(occ: Occurrence) -> tuple[str | None, str | None]:
    """The due instant and last day a message may carry: withheld while an embargo holds
    the deadline's due date (it would reveal the dates the embargo hides)."""
    if occ.deadline is not None and occ.deadline in occ.workflow.withheld_deadlines(
        None, occ.instance
    ):
        return WITHHELD, WITHHELD
    return (
        occ.due_at.isoformat() if occ.due_at else None,
        occ.due_on.isoformat() if occ.due_on else None,
    )


def base_context(occ: Occurrence) -> dict[str, Any]:
    """The template context without ``data``, ``withheld``, ``reason`` and ``recipient``."""
    wf, inst = occ.workflow, occ.instance
    states, triggers, deadlines = _labels(wf)
    due_at, due_on = _due(occ)
    return {
        "workflow": {"id": wf.id, "version": wf.version, "title": wf.definition.title},
        "instance": {
            "id": inst.id,
            "state": inst.state,
            "state_label": states.get(inst.state, inst.state),
            "version": inst.version,
            "parent_id": inst.parent_id,
            "created_at": inst.created_at.isoformat(),
        },
        "event": {
            "kind": occ.kind,
            "trigger": occ.trigger,
            "trigger_label": triggers.get(occ.trigger or "", occ.trigger),
            "from_state": occ.left,
            "from_label": states.get(occ.left) if occ.left else None,
            "to_state": occ.entered,
            "to_label": states.get(occ.entered) if occ.entered else None,
            "deadline": occ.deadline,
            "deadline_label": deadlines.get(occ.deadline) if occ.deadline else None,
            "due_at": due_at,
            "due_on": due_on,
            "at": occ.at.isoformat(),
            "actor": occ.actor,
            "role": occ.role,
        },
        "labels": {n: f.label or n.replace("_", " ") for n, f in wf.definition.fields.items()},
        # every reference field, by title when the writer read it, else by id
        "titles": {
            n: occ.titles.get(n, inst.data.get(n))
            for n, f in wf.definition.fields.items()
            if f.register_id is not None
        },
    }


def context_for(
    occ: Occurrence,
    base: Mapping[str, Any],
    audience: Audience,
    recipient: Mapping[str, Any],
    policy: Policy,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The context one recipient's template renders from, personal data redacted, and what
    the dispatcher checks again before sending it (``None`` when it shows nothing personal)."""
    schema = occ.workflow.schema
    shown = redact(
        occ.instance.data,
        schema.fields,
        schema.personal,
        audience,
        policy=policy,
        today=policy.today(occ.at),
        reason=occ.reason,
        parts=schema.personal_parts,
    )
    reason = occ.reason if shown.reason_allowed or occ.reason is None else WITHHELD
    withheld = list(shown.withheld)
    embargoed = occ.workflow.withheld_from_messages(occ.instance)
    if embargoed:  # whoever receives it: a message may be forwarded, a mailbox read by others
        for name in sorted(embargoed):
            value = shown.data.get(name)
            if value is not None:
                shown.data[name] = hide(value, None)
                if name not in withheld:
                    withheld.append(name)
        if reason is not None:  # the actor's words may give the dates away
            reason = WITHHELD
    # A field that is no reference in this instance's version (free text before the
    # registers), or whose value is withheld from this recipient, reads as ``data`` shows it
    titles = dict(base.get("titles", {}))
    for name, value in shown.data.items():
        if name not in titles or name in withheld:
            titles[name] = value
    context = {
        **base,
        "data": shown.data,
        "titles": titles,
        "withheld": withheld,
        "reason": reason,
        "recipient": dict(recipient),
    }
    recheck = None
    if shown.shown:
        recheck = {
            "body": audience.body,
            "uses": sorted(audience.consent_uses),
            "shown": sorted(shown.shown),
            "parts": {
                n: sorted(schema.personal_parts[n])
                for n in shown.shown
                if n in schema.personal_parts
            },
        }
    return context, recheck


def _machine_data(
    data: Mapping[str, Any], schema: DataSchema, embargoed: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """What a webhook may carry: no personal field, no field an embargo holds, and records
    without their personal sub-fields."""
    shown: dict[str, Any] = {}
    for name, value in data.items():
        if name not in schema.fields or name in embargoed:
            continue
        parts = schema.personal_parts.get(name)
        if parts is not None and isinstance(value, list):
            shown[name] = [
                {k: v for k, v in e.items() if k not in parts} for e in value if isinstance(e, dict)
            ]
        elif name not in schema.personal:
            shown[name] = value
    return shown


def cloudevent(occ: Occurrence, key: str) -> dict[str, Any]:
    """The CloudEvents 1.0 (structured JSON) body of a webhook: ids, workflow, states,
    trigger and the non-personal fields only."""
    inst, schema = occ.instance, occ.workflow.schema
    due_at, due_on = _due(occ)
    data = {
        "instance_id": inst.id,
        "workflow": occ.workflow.id,
        "workflow_version": occ.workflow.version,
        "version": inst.version,
        "state": inst.state,
        "trigger": occ.trigger,
        "from_state": occ.left,
        "to_state": occ.entered,
        "deadline": occ.deadline,
        "due_at": due_at,
        "due_on": due_on,
        "parent_id": inst.parent_id,
        "data": _machine_data(inst.data, schema, occ.workflow.withheld_from_messages(inst)),
    }
    return {
        "specversion": "1.0",
        "id": key,
        "source": f"urn:opcatflow:workflow:{occ.workflow.id}",
        "type": CLOUDEVENT_TYPES[occ.kind],
        "subject": inst.id,
        "time": occ.at.isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }


class Composer:
    """Builds the outbox messages of an occurrence against a recipients directory."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy if policy is not None else Settings.default().policy

    def with_bodies(self, bodies: Bodies) -> Composer:
        """The same composer, redacting for ``bodies`` (the authority register as the
        transaction of the occurrence reads it)."""
        return Composer(dataclasses.replace(self.policy, bodies=bodies))

    def messages(self, occ: Occurrence, directory: Directory) -> list[NewMessage]:
        specs: list[tuple[int | str, NotificationSpec]] = list(
            enumerate(occ.workflow.definition.notifications)
        )
        matching = [(i, s) for i, s in specs if occ.matches(s)]
        if occ.kind == OVERDUE:
            matching = [alert_spec(occ)]
        hooks = directory.subscribers(occ.workflow.id, _event_type(occ.kind))
        if not matching and not hooks:
            return []
        result: list[NewMessage] = []
        base = base_context(occ) if matching else {}
        for i, spec in matching:
            result += self._notification(occ, i, spec, base, directory)
        for endpoint in hooks:
            key = idempotency_key(*occ.key, "webhook", endpoint.id)
            result.append(
                NewMessage(
                    occ.instance.id,
                    occ.event_name(),
                    WEBHOOK,
                    endpoint.id,
                    {"cloudevent": cloudevent(occ, key)},
                    key,
                )
            )
        return result

    def _notification(
        self,
        occ: Occurrence,
        index: int | str,
        spec: NotificationSpec,
        base: Mapping[str, Any],
        directory: Directory,
    ) -> list[NewMessage]:
        event = occ.event_name(spec)
        targets: dict[tuple[str, str], Target] = {}
        unresolved: list[tuple[dict[str, Any], str, bool]] = []  # (route, error, retryable)
        for to in spec.recipients:
            found, problem = self._resolve(occ, to, directory)
            for target in found:
                targets.setdefault((target.channel, target.address or target.key), target)
            if problem is not None:
                unresolved.append(problem)
        messages = []
        for target in targets.values():
            key = idempotency_key(*occ.key, index, target.channel, target.key)
            ctx, recheck = context_for(
                occ,
                base,
                target.audience,
                {"name": target.name, "locale": target.locale},
                self.policy,
            )
            payload = {
                "template": spec.template,
                "locale": target.locale,
                "to": {"name": target.name, "address": target.address},
                "context": ctx,
            }
            if recheck is not None:
                payload["sharing"] = recheck
            messages.append(
                NewMessage(occ.instance.id, event, target.channel, target.key, payload, key)
            )
        for route, error, retryable in unresolved:
            label = _route_label(route)
            key = idempotency_key(*occ.key, index, ROUTE, label)
            recipient = {"name": "", "locale": directory.defaults.locale}
            ctx, _ = context_for(occ, base, NOBODY, recipient, self.policy)
            payload = {"template": spec.template, "route": route, "context": ctx}
            status = PENDING if retryable else DEAD
            messages.append(
                NewMessage(occ.instance.id, event, ROUTE, label, payload, key, status, error)
            )
        return messages

    def _resolve(
        self, occ: Occurrence, to: RecipientSpec, directory: Directory
    ) -> tuple[list[Target], tuple[dict[str, Any], str, bool] | None]:
        wf = occ.workflow.id
        if to.role is not None:
            found = directory.with_role(wf, to.role)
            if found:
                return found, None
            route: dict[str, Any] = {"workflow": wf, "role": to.role}
            return [], (route, f"no one in the recipients directory has role {to.role!r}", True)
        if to.assignees is not None:
            ids = _texts(occ.instance.data.get(to.assignees))
            if not ids:
                return [], None  # nobody assigned yet: nothing to send
            found, missing = directory.by_ids(ids)
            if not missing:
                return found, None
            route = {"people": missing}
            error = f"not in the recipients directory (or unreachable): {', '.join(missing)}"
            return found, (route, error, True)
        assert to.address is not None
        address = occ.instance.data.get(to.address)
        if not isinstance(address, str) or not EMAIL.match(address):
            route = {"address_field": to.address}
            error = f"field {to.address!r} holds no email address"
            return [], (route, error, False)
        audience = Audience(to.body, frozenset(to.consent_uses))
        name = occ.workflow.definition.fields[to.address].label or to.address
        target = Target(
            f"address:{address}", "email", name, address, directory.defaults.locale, audience
        )
        return [target], None


def alert_spec(occ: Occurrence) -> tuple[str, NotificationSpec]:
    """The overdue alert step ``occ`` stands for, as a notification: its template, to the
    case's assignees when the workflow names an ``assignees`` field that holds anyone, else
    to the recipients the step names."""
    declared = occ.workflow.deadlines.get(occ.deadline or "")
    assert declared is not None
    assert occ.step is not None
    step = declared.spec.overdue_alerts[occ.step]
    to: list[Any] = list(step.to)
    field = occ.workflow.definition.assignees
    if field is not None and _texts(occ.instance.data.get(field)):
        to = [RecipientSpec(assignees=field)]
    on = NotifyOn(deadline=occ.deadline, at="due")
    return f"alert{occ.step}", NotificationSpec(on=on, to=to, template=step.template)


def _route_label(route: dict[str, Any]) -> str:
    if "role" in route:
        return f"role:{route['workflow']}.{route['role']}"
    if "people" in route:
        return "people:" + ",".join(route["people"])
    return f"field:{route['address_field']}"


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Iterable):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _event_type(kind: str) -> str:
    return "deadline" if kind in ("reminder", "due", OVERDUE) else kind
