"""The rules of the recommendation workflow from version 4: dated assessments, the links to
the recommendation a new one restates and to the visits that assessed it, and the head's
closing decision (docs/recommendations.md)."""

from __future__ import annotations

from datetime import date
from typing import Any

from opcatflow.engine import GuardRefusal, RuleContext
from opcatflow.workflows.rules import registry


def _entries(ctx: RuleContext) -> list[dict[str, Any]]:
    return [e for e in ctx.data.get("assessments") or [] if isinstance(e, dict)]


def _new(ctx: RuleContext) -> list[dict[str, Any]]:
    """The assessments appended by this firing (numbered after those recorded before)."""
    recorded = ctx.data.get("assessments_recorded") or 0
    return [e for e in _entries(ctx) if int(e.get("n") or 0) > recorded]


def latest(
    entries: list[dict[str, Any]], on_or_before: date | None = None
) -> dict[str, Any] | None:
    """The assessment that gives the status: the latest by its date (then by its number),
    among those made on or before ``on_or_before`` when given."""
    limit = None if on_or_before is None else on_or_before.isoformat()
    dated = [e for e in entries if e.get("on") and (limit is None or str(e["on"]) <= limit)]
    if not dated:
        return None
    return max(dated, key=lambda e: (str(e["on"]), int(e.get("n") or 0)))


@registry.guard("one_assessment_appended", reason="assess records one new assessment")
def one_assessment_appended(ctx: RuleContext) -> bool:
    """Each firing records exactly one assessment, dated no later than today and not before
    the recommendation was sent, following (if it says so) an earlier one."""
    new = _new(ctx)
    if len(new) != 1:
        raise GuardRefusal(
            f"{len(new)} new assessments: append exactly one to assessments (its on, status, "
            "evidence; follows: the n of an earlier one it follows)"
        )
    entry = new[0]
    on = date.fromisoformat(str(entry["on"]))
    if on > ctx.today:  # a day still to come in the NPM's time zone
        raise GuardRefusal(f"assessment on {on} is in the future: an assessment is a fact")
    sent = ctx.data.get("sent_on")
    if sent and on < date.fromisoformat(str(sent)):
        raise GuardRefusal(f"assessment on {on} is before the recommendation was sent ({sent})")
    follows = entry.get("follows")
    if follows is not None:
        earlier = {int(e.get("n") or 0) for e in _entries(ctx)} - {int(entry["n"])}
        if int(follows) not in earlier:
            known = ", ".join(str(n) for n in sorted(earlier)) or "none yet"
            raise GuardRefusal(
                f"assessment {entry['n']} follows {follows}, which is not an earlier "
                f"assessment of this recommendation (recorded: {known})"
            )
    return True


@registry.guard("assessed_by_visits", reason="assessed_by names visits")
def assessed_by_visits(ctx: RuleContext) -> bool:
    for visit_id in ctx.data.get("assessed_by") or []:
        found = ctx.lookup(str(visit_id))
        if found is None or found.workflow_id != "visit":
            raise GuardRefusal(f"assessed_by: {visit_id!r} is not a visit")
    return True


@registry.action(
    "assessment_recorded",
    writes=["assessments", "assessments_recorded", "implementation_status"],
)
def assessment_recorded(ctx: RuleContext) -> None:
    """Say who assessed (the actor, unless the source names someone), count the assessment,
    and keep the status of the latest one by date."""
    entries = _entries(ctx)
    recorded = ctx.data.get("assessments_recorded") or 0
    ctx.data["assessments"] = [
        {**e, "by": ctx.actor} if int(e.get("n") or 0) > recorded and not e.get("by") else e
        for e in entries
    ]
    ctx.data["assessments_recorded"] = max((int(e.get("n") or 0) for e in entries), default=0)
    last = latest(entries)
    ctx.data["implementation_status"] = None if last is None else last["status"]


@registry.action("count_followup_from", writes=["followup_from"])
def count_followup_from(ctx: RuleContext) -> None:
    """The follow-up check counts from the last thing heard: the latest assessment's date,
    else the reply's, else the day the reply was escalated."""
    last = latest(_entries(ctx))
    if last is not None:
        ctx.data["followup_from"] = str(last["on"])
    elif ctx.data.get("reply_received_on"):
        ctx.data["followup_from"] = ctx.data["reply_received_on"]
    elif not ctx.data.get("followup_from"):
        ctx.data["followup_from"] = ctx.today.isoformat()


@registry.guard(
    "repeats_an_earlier_recommendation",
    reason="repeats names an earlier recommendation",
)
def repeats_an_earlier_recommendation(ctx: RuleContext) -> bool:
    earlier_id = str(ctx.data.get("repeats"))
    if earlier_id == ctx.instance_id:
        raise GuardRefusal("a recommendation cannot repeat itself")
    earlier = ctx.lookup(earlier_id)
    if earlier is None or earlier.workflow_id != "recommendation":
        raise GuardRefusal(f"repeats: {earlier_id!r} is not a recommendation")
    this = ctx.lookup(ctx.instance_id)
    if this is not None and earlier.created_at > this.created_at:
        raise GuardRefusal(f"repeats: {earlier_id!r} was entered after this one")
    return True


@registry.guard(
    "assessed_before_closing",
    reason="a recommendation is closed on an assessment",
)
def assessed_before_closing(ctx: RuleContext) -> bool:
    if _entries(ctx):
        return True
    raise GuardRefusal(
        "no assessment yet: record one first (assess); its status is what the recommendation "
        "closes on (no_longer_relevant for one overtaken by events)"
    )
