"""The named rules the bundled OPCAT workflows use (the cross-cutting rules of PROCESSES.md).

Definitions refer to these by name; operators cannot add code through YAML. A guard that
refuses says why in words an NPM officer can act on; the reason is kept in the audit trail,
so it never quotes a personal value (it counts persons, it does not name them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opcatflow.engine import GuardRefusal, Instance, Registry, RuleContext

registry = Registry()


def _today(ctx: RuleContext) -> str:
    return ctx.now.date().isoformat()


def _append(ctx: RuleContext, field: str, entry: str) -> None:
    ctx.data[field] = [*(ctx.data.get(field) or []), entry]


def _append_entry(ctx: RuleContext, field: str, entry: dict[str, Any]) -> None:
    """Append an entry to a records field keyed by a number ``n``: the next one."""
    entries = ctx.data.get(field) or []
    number = max((e["n"] for e in entries if isinstance(e, dict)), default=0) + 1
    ctx.data[field] = [*entries, {"n": number, **entry}]


def _keys(value: Any, key: str) -> set[str]:
    """The keys of a records field; a plain list of text (version 1 of the workflow that
    wrote it) is read as its keys."""
    return {str(e.get(key)) if isinstance(e, dict) else str(e) for e in value or []}


# -- consent and do no harm (cross-cutting rule 1, OPCAT art. 21(2)) -------------------------


def _always(data: Mapping[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Sharing:
    """What a sharing trigger does with personal data: the use a person consents to, and
    whether this particular firing shares personal data at all."""

    use: str
    shares_personal_data: Callable[[Mapping[str, Any]], bool] = _always


SHARING = {
    "inform_management": Sharing("inform_management"),
    # Preliminary findings name nobody; evidence (interview notes, medical files) does.
    "refer": Sharing("refer_with_evidence", lambda d: d.get("referral_shares") == "evidence"),
    "publish": Sharing("publish"),
    "escalate": Sharing("escalate", lambda d: d.get("escalation_shares_personal_data") is True),
}
DO_NO_HARM_FIELDS = ("dnh_decided_by", "dnh_reason", "dnh_recipient", "dnh_shared")


@registry.guard(
    "consent_or_do_no_harm",
    reason="personal data would be shared without the person's consent for this use "
    "or a recorded do-no-harm decision",
)
def consent_or_do_no_harm(ctx: RuleContext) -> bool:
    """Sharing personal data needs consent for that use, or a complete do-no-harm decision
    (who decided, why, which body receives what); the decision's fields are audited."""
    sharing = SHARING.get(ctx.trigger, Sharing(ctx.trigger))
    if not sharing.shares_personal_data(ctx.data):
        return True
    if sharing.use in (ctx.data.get("consent") or []):
        return True
    recorded = [name for name in DO_NO_HARM_FIELDS if ctx.data.get(name)]
    if len(recorded) == len(DO_NO_HARM_FIELDS):
        return True
    if recorded:
        missing = ", ".join(n for n in DO_NO_HARM_FIELDS if n not in recorded)
        raise GuardRefusal(f"the do-no-harm decision is incomplete: {missing} missing")
    raise GuardRefusal(
        f"no consent recorded for {sharing.use!r} and no do-no-harm decision "
        f"(who decided, why, which body receives what)"
    )


@registry.guard(
    "publication_consent",
    reason="the report carries personal data of a person who has not consented to publication",
)
def publication_consent(ctx: RuleContext) -> bool:
    """A report is published only when every person whose data it carries consented.

    A do-no-harm decision names one receiving body; it never makes data public. The persons
    and consents are recorded before publishing (an explicit empty list when the report
    carries nobody's data), not in the publishing step itself.
    """
    if {"report_persons", "publication_consents"} & ctx.supplied.keys():
        raise GuardRefusal(
            "record whose data the report carries, and their consents, before publishing, "
            "not in the publishing step"
        )
    if "report_persons" not in ctx.data:
        raise GuardRefusal(
            "nobody has recorded whose personal data the report carries "
            "(record an empty list when it carries none)"
        )
    persons = set(ctx.data.get("report_persons") or [])
    missing = persons - set(ctx.data.get("publication_consents") or [])
    if missing:
        raise GuardRefusal(
            f"the report carries personal data of {len(missing)} person(s) who have not "
            "consented to publication: obtain their consent or remove their data"
        )
    return True


# -- complaints -------------------------------------------------------------------------------


@registry.guard(
    "complainant_told_limits",
    reason="the complainant has not been told what the NPM can and cannot do",
)
def complainant_told_limits(ctx: RuleContext) -> bool:
    return bool(ctx.data.get("told_limits"))


@registry.action("record_action_taken", writes=["actions_taken"])
def record_action_taken(ctx: RuleContext) -> None:
    """Keep the list of actions decided on a complaint (a complaint may get several)."""
    if ctx.trigger not in (ctx.data.get("actions_taken") or []):
        _append(ctx, "actions_taken", ctx.trigger)


@registry.action("acknowledged_on_receipt", writes=["acknowledged_on"])
def acknowledged_on_receipt(ctx: RuleContext) -> None:
    """A complaint recorded without a separate acknowledgement (made in person) counts as
    acknowledged the day it was received."""
    if not ctx.data.get("acknowledged_on"):
        ctx.data["acknowledged_on"] = ctx.data.get("received_on")


def _stamp(field: str) -> None:
    def stamp(ctx: RuleContext) -> None:
        if ctx.supplied.get(field) is None:
            ctx.data[field] = _today(ctx)

    stamp.__doc__ = f"Set {field} to today, unless the actor supplied the date."
    registry.action(f"stamp_{field}", writes=[field])(stamp)


for _field in (
    "acknowledged_on",
    "sent_on",
    "reply_received_on",
    "draft_sent_on",
    "focal_point_notified_on",
    "management_informed_on",
):
    _stamp(_field)


# -- visits (cross-cutting rules 3 and 4) ------------------------------------------------------


def _expert_problem(expert_id: str, expert: Instance | None, place: str, declared: set[str]) -> str:
    if expert is None or expert.workflow_id != "expert":
        return f"{expert_id} is not an expert record"
    name = expert.data.get("name") or expert_id
    data = expert.data
    if expert.state != "available":
        return f"expert {name} is not accredited and available (state: {expert.state})"
    if data.get("confidentiality_signed") is not True:
        return f"expert {name} has not signed the confidentiality agreement"
    if not data.get("training_completed_on"):
        return f"expert {name} has not completed the initial training"
    if place in _keys(data.get("conflicts_of_interest"), "place"):
        return f"expert {name} declared a conflict of interest for {place}"
    if expert_id not in declared:
        return f"expert {name} has not declared that they have no conflict of interest for {place}"
    return ""


@registry.guard("visit_team_ready", reason="the visit team is not ready")
def visit_team_ready(ctx: RuleContext) -> bool:
    """At least one NPM member or staff member; every external expert accredited (an
    ``expert`` instance in state ``available``), bound by confidentiality, trained, and free
    of conflicts of interest for this place."""
    if not [m for m in ctx.data.get("team_members") or [] if m.strip()]:
        raise GuardRefusal(
            "the team has no NPM member or staff member (external experts never visit alone)"
        )
    place = ctx.data.get("place") or ""
    declared = _keys(ctx.data.get("experts_no_conflict"), "expert")
    problems = [
        _expert_problem(expert_id, ctx.lookup(expert_id), place, declared)
        for expert_id in dict.fromkeys(ctx.data.get("team_experts") or [])
    ]
    if any(problems):
        raise GuardRefusal("; ".join(p for p in problems if p))
    return True


@registry.guard("expert_took_part", reason="only experts who took part may comment on the draft")
def expert_took_part(ctx: RuleContext) -> bool:
    """An external expert comments only on the draft of a visit they were on; members always."""
    if ctx.role != "expert":
        return True
    for expert_id in ctx.data.get("team_experts") or []:
        expert = ctx.lookup(expert_id)
        if expert is not None and expert.data.get("user") == ctx.actor:
            return True
    raise GuardRefusal(f"{ctx.actor} was not on this visit's team as an external expert")


@registry.action("append_draft_comment", writes=["draft_comments", "draft_comment"])
def append_draft_comment(ctx: RuleContext) -> None:
    """Keep the comment, with its author as the engine knows them (never as typed)."""
    entry = {"by": ctx.actor, "role": ctx.role, "text": ctx.data["draft_comment"]}
    _append_entry(ctx, "draft_comments", entry)
    ctx.data["draft_comment"] = None


@registry.action("record_draft_comment", writes=["draft_comments", "draft_comment"])
def record_draft_comment(ctx: RuleContext) -> None:
    """Version 1 of ``visit`` (its instances still run): comments as text."""
    _append(ctx, "draft_comments", f"{ctx.actor} ({ctx.role}): {ctx.data['draft_comment']}")
    ctx.data["draft_comment"] = None


@registry.guard(
    "factual_corrections_only",
    reason="the authorities may correct facts, not findings or recommendations",
)
def factual_corrections_only(ctx: RuleContext) -> bool:
    """Independence: a correction to a finding or a recommendation is refused."""
    target = ctx.data.get("correction_to")
    if target == "fact":
        return True
    raise GuardRefusal(
        f"a correction to a {target} is refused: the authorities may correct facts only; "
        "findings and recommendations are the NPM's own"
    )


@registry.action("append_factual_correction", writes=["corrections", "correction", "correction_to"])
def append_factual_correction(ctx: RuleContext) -> None:
    """Keep the (factual) correction, who recorded it and when; clear the one-off fields."""
    entry = {"text": ctx.data["correction"], "by": ctx.actor, "on": _today(ctx)}
    _append_entry(ctx, "corrections", entry)
    ctx.data["correction"] = ctx.data["correction_to"] = None


@registry.action("record_factual_correction", writes=["corrections", "correction", "correction_to"])
def record_factual_correction(ctx: RuleContext) -> None:
    """Version 1 of ``visit``: the correction kept as text, marked factual."""
    _append(ctx, "corrections", f"factual: {ctx.data['correction']}")
    ctx.data["correction"] = ctx.data["correction_to"] = None


@registry.action("mark_factual_check_lapsed", writes=["factual_check_lapsed"])
def mark_factual_check_lapsed(ctx: RuleContext) -> None:
    ctx.data["factual_check_lapsed"] = True


# -- recommendations and reprisals ----------------------------------------------------------


def _escalation_step(ctx: RuleContext) -> str:
    step = ctx.data.get("escalation_step") or (
        "reply deadline passed" if ctx.role == "scheduler" else "escalated"
    )
    return str(step)


@registry.action("append_escalation", writes=["escalations", "escalation_step"])
def append_escalation(ctx: RuleContext) -> None:
    """Log each escalation step: its date, what was done, by whom (the scheduler's says the
    deadline passed)."""
    entry = {"on": _today(ctx), "step": _escalation_step(ctx), "by": ctx.actor}
    _append_entry(ctx, "escalations", entry)
    ctx.data["escalation_step"] = None


@registry.action("record_escalation", writes=["escalations", "escalation_step"])
def record_escalation(ctx: RuleContext) -> None:
    """Version 1 of ``recommendation``: each step as text with its date."""
    step = ctx.data.get("escalation_step") or (
        "reply deadline passed" if ctx.role == "scheduler" else "escalated"
    )
    _append(ctx, "escalations", f"{_today(ctx)}: {step}")
    ctx.data["escalation_step"] = None


@registry.action("record_review", writes=["reviews", "review_note"])
def record_review(ctx: RuleContext) -> None:
    _append(ctx, "reviews", f"{_today(ctx)}: {ctx.data['review_note']}")
    ctx.data["review_note"] = None


@registry.action("last_contact_on_report", writes=["last_contact_on"])
def last_contact_on_report(ctx: RuleContext) -> None:
    """Until someone records a contact, the report of the risk is the last contact."""
    if not ctx.data.get("last_contact_on"):
        ctx.data["last_contact_on"] = ctx.data.get("reported_on")


@registry.action("record_contact_check", writes=["last_contact_on", "contacts"])
def record_contact_check(ctx: RuleContext) -> None:
    """Count a contact with the people concerned and keep its date (today unless given)."""
    if ctx.supplied.get("last_contact_on") is None:
        ctx.data["last_contact_on"] = _today(ctx)
    ctx.data["contacts"] = (ctx.data.get("contacts") or 0) + 1
