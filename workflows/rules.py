"""The named rules the bundled OPCAT workflows use (the rules of docs/domain.md).

Definitions refer to these by name; operators cannot add code through YAML. A guard that
refuses says why in words an NPM officer can act on; the reason is kept in the audit trail,
so it never quotes a personal value (it counts persons, it does not name them).
"""

from __future__ import annotations

from typing import Any

from opcatflow.engine import GuardRefusal, Instance, Registry, RuleContext
from opcatflow.engine.sharing import NOT_A_BODY

registry = Registry()


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


# Version 2 of complaint and reprisal (their instances still run) name this guard. Its
# do-no-harm fields named no checked body, use, date or expiry, so they no longer unlock
# anything: such a case shares on the recorded consent only. Version 3 declares `shares:`,
# which the engine checks (opcatflow.engine.sharing.may_share).
@registry.guard(
    "consent_or_do_no_harm",
    reason="personal data would be shared without the person's consent for this use",
)
def consent_or_do_no_harm(ctx: RuleContext) -> bool:
    """Version 2: sharing personal data needs the consent flag for the trigger's use."""
    use = ctx.trigger
    if ctx.trigger == "refer":
        if ctx.data.get("referral_shares") != "evidence":
            return True  # preliminary findings name nobody
        use = "refer_with_evidence"
    if ctx.trigger == "escalate" and ctx.data.get("escalation_shares_personal_data") is not True:
        return True
    if use in (ctx.data.get("consent") or []):
        return True
    raise GuardRefusal(
        f"no consent recorded for {use!r}; a do-no-harm decision is recorded on the current "
        "version of this workflow, with the body, use, fields and expiry it covers"
    )


@registry.guard(
    "publication_consent",
    reason="the report carries personal data of a person who has not consented to publication",
)
def publication_consent(ctx: RuleContext) -> bool:
    """A report is published only when every person whose data it carries consented.

    Visit version 2 only, kept for instances pinned to it: version 3 records the persons and
    their consents in ``persons`` and its ``publish`` shares through ``may_share``.

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


@registry.guard(
    "persons_recorded",
    reason="record whose personal data the report carries first: list them in persons and "
    "set persons_complete (with no persons when it carries nobody's)",
)
def persons_recorded(ctx: RuleContext) -> bool:
    """Visit version 3: a report is published only once someone has stated that ``persons``
    lists everyone whose personal data it carries (``persons_complete``, true), an empty list
    when it carries nobody's. ``publish`` then checks their consents through ``may_share``."""
    return ctx.data.get("persons_complete") is True


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


@registry.guard(
    "acknowledged_by_receipt",
    reason="this complaint's receipt must be acknowledged first",
)
def acknowledged_by_receipt(ctx: RuleContext) -> bool:
    """Only a complaint handed over in person (the channels of the settings'
    ``complaint.acknowledge_on_receipt``) is acknowledged by its receipt."""
    channel = ctx.data.get("channel")
    if channel in ctx.policy.acknowledge_on_receipt:
        return True
    raise GuardRefusal(
        f"a complaint received by {channel} is not acknowledged by its receipt: fire "
        "'acknowledge' first (receipt counts as acknowledgement only for "
        f"{', '.join(sorted(ctx.policy.acknowledge_on_receipt))})"
    )


@registry.guard(
    "acknowledged_after_receipt",
    reason="a complaint cannot be acknowledged before it was received",
)
def acknowledged_after_receipt(ctx: RuleContext) -> bool:
    on = ctx.supplied.get("acknowledged_on") or ctx.today.isoformat()
    received = ctx.data.get("received_on")
    if received is None or str(on) >= str(received):
        return True
    raise GuardRefusal(f"acknowledged on {on}, before it was received on {received}")


@registry.guard(
    "referral_body_known",
    reason="the body referred to may not receive data",
)
def referral_body_known(ctx: RuleContext) -> bool:
    body = ctx.data.get("referral_body")
    if body in ctx.policy.bodies:
        return True
    raise GuardRefusal(f"{body!r} {NOT_A_BODY}")


@registry.action("acknowledged_on_the_day_received", writes=["acknowledged_on"])
def acknowledged_on_the_day_received(ctx: RuleContext) -> None:
    """A complaint handed over in person is acknowledged the day it was received, whatever
    date the caller gave."""
    ctx.data["acknowledged_on"] = ctx.data.get("received_on")


@registry.action("acknowledged_on_receipt", writes=["acknowledged_on"])
def acknowledged_on_receipt(ctx: RuleContext) -> None:
    """Version 2 of ``complaint``: a complaint recorded without a separate acknowledgement
    counts as acknowledged the day it was received."""
    if not ctx.data.get("acknowledged_on"):
        ctx.data["acknowledged_on"] = ctx.data.get("received_on")


@registry.action("received_at_entered", writes=["received_at"])
def received_at_entered(ctx: RuleContext) -> None:
    """A reprisal allegation entered without the moment it was received counts from the
    moment it is entered (its deadlines count from ``received_at``)."""
    if ctx.data.get("received_at") is None:
        ctx.data["received_at"] = ctx.now.isoformat()


def _stamp(field: str) -> None:
    def stamp(ctx: RuleContext) -> None:
        if ctx.supplied.get(field) is None:
            ctx.data[field] = ctx.today.isoformat()

    stamp.__doc__ = f"Set {field} to today, unless the actor supplied the date."
    registry.action(f"stamp_{field}", writes=[field])(stamp)


for _field in (
    "acknowledged_on",
    "sent_on",
    "reply_received_on",
    "draft_sent_on",
    "focal_point_notified_on",
    "management_informed_on",
    "position_on",
    "closed_on",
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
    entry = {"text": ctx.data["correction"], "by": ctx.actor, "on": ctx.today.isoformat()}
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
    entry = {"on": ctx.today.isoformat(), "step": _escalation_step(ctx), "by": ctx.actor}
    _append_entry(ctx, "escalations", entry)
    ctx.data["escalation_step"] = None


@registry.action("record_escalation", writes=["escalations", "escalation_step"])
def record_escalation(ctx: RuleContext) -> None:
    """Version 1 of ``recommendation``: each step as text with its date."""
    step = ctx.data.get("escalation_step") or (
        "reply deadline passed" if ctx.role == "scheduler" else "escalated"
    )
    _append(ctx, "escalations", f"{ctx.today}: {step}")
    ctx.data["escalation_step"] = None


@registry.action("record_review", writes=["reviews", "review_note"])
def record_review(ctx: RuleContext) -> None:
    _append(ctx, "reviews", f"{ctx.today}: {ctx.data['review_note']}")
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
        ctx.data["last_contact_on"] = ctx.today.isoformat()
    ctx.data["contacts"] = (ctx.data.get("contacts") or 0) + 1
