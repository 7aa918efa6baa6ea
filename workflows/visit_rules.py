"""The rules of the visit workflow from version 5: the optional factual check and the
decision on a reprisal follow-up (docs/domain.md, "Visits")."""

from __future__ import annotations

from typing import Any

from opcatflow.engine import GuardRefusal, RuleContext
from opcatflow.workflows.rules import registry


def _factual_check_wanted(ctx: RuleContext) -> tuple[bool, str]:
    """Whether this visit's draft goes to the authorities, and who decided: the head's
    decision for the visit, else the settings' default for its kind (a kind not listed: yes)."""
    decided = ctx.data.get("factual_check_wanted")
    if decided is not None:
        return bool(decided), "the head decided so for this visit"
    kind = str(ctx.data.get("kind"))
    wanted = ctx.policy.factual_check_by_kind.get(kind, True)
    return wanted, f"the settings' visit.factual_check_by_kind says so for a {kind} visit"


@registry.guard(
    "factual_check_chosen",
    reason="this visit's draft does not go to the authorities for a factual check",
)
def factual_check_chosen(ctx: RuleContext) -> bool:
    wanted, why = _factual_check_wanted(ctx)
    if wanted:
        return True
    raise GuardRefusal(
        f"no factual check for this visit ({why}): adopt the final report, or the head "
        "decides on a factual check first (decide_factual_check)"
    )


@registry.guard(
    "factual_check_waived",
    reason="this visit's draft goes to the authorities for a factual check first",
)
def factual_check_waived(ctx: RuleContext) -> bool:
    wanted, why = _factual_check_wanted(ctx)
    if not wanted:
        return True
    raise GuardRefusal(
        f"the draft goes to the authorities for a factual check first ({why}): send it "
        "(send_for_factual_check), or the head decides, with a reason, that it does not "
        "(decide_factual_check)"
    )


@registry.action("decide_reprisal_follow_up", writes=["reprisal_follow_up_decision"])
def decide_reprisal_follow_up(ctx: RuleContext) -> None:
    """Keep the head's decision, so that it is taken once (the trigger says which)."""
    opened = ctx.trigger == "open_reprisal_follow_up"
    ctx.data["reprisal_follow_up_decision"] = "opened" if opened else "not_needed"


# -- corrections the authorities propose, and their comments (cross-cutting rule 3) ---------


@registry.guard(
    "correction_decidable",
    reason="that correction cannot be decided",
)
def correction_decidable(ctx: RuleContext) -> bool:
    """A decision names a recorded correction not yet decided; a rejection says why."""
    number = ctx.data.get("correction_n")
    entries = {e.get("n"): e for e in ctx.data.get("corrections") or [] if isinstance(e, dict)}
    entry = entries.get(number)
    if entry is None:
        known = ", ".join(str(n) for n in sorted(n for n in entries if isinstance(n, int)))
        known = known or "none recorded"
        raise GuardRefusal(f"no correction number {number} (corrections: {known})")
    if entry.get("decision"):
        raise GuardRefusal(
            f"correction {number} was already {entry['decision']} by {entry.get('decided_by')} "
            f"on {entry.get('decided_on')}: a decision is taken once"
        )
    if ctx.data.get("correction_decision") == "rejected" and not ctx.data.get("correction_reason"):
        raise GuardRefusal(f"rejecting correction {number} needs its reason (correction_reason)")
    return True


@registry.action(
    "decide_correction",
    writes=["corrections", "correction_n", "correction_decision", "correction_reason"],
)
def decide_correction(ctx: RuleContext) -> None:
    """Keep the decision on the correction's entry (who, when, why); clear the one-off fields."""
    number = ctx.data["correction_n"]
    decision = {
        "decision": ctx.data["correction_decision"],
        "reason": ctx.data.get("correction_reason"),
        "decided_by": ctx.actor,
        "decided_on": ctx.today.isoformat(),
    }
    ctx.data["corrections"] = [
        {**e, **decision} if isinstance(e, dict) and e.get("n") == number else e
        for e in ctx.data.get("corrections") or []
    ]
    ctx.data["correction_n"] = ctx.data["correction_decision"] = None
    ctx.data["correction_reason"] = None


@registry.guard(
    "corrections_decided",
    reason="every correction the authorities proposed must be decided first",
)
def corrections_decided(ctx: RuleContext) -> bool:
    pending = [
        str(e.get("n"))
        for e in ctx.data.get("corrections") or []
        if isinstance(e, dict) and not e.get("decision")
    ]
    if not pending:
        return True
    raise GuardRefusal(
        f"correction(s) {', '.join(pending)} not decided yet: accept or reject each "
        "(decide_correction) before adopting the report"
    )


@registry.action(
    "append_authority_comment",
    writes=["authority_comments", "authority_comment", "authority_comment_on"],
)
def append_authority_comment(ctx: RuleContext) -> None:
    """Keep the comment as the authorities' response, who recorded it and when."""
    entries = ctx.data.get("authority_comments") or []
    number = max((e["n"] for e in entries if isinstance(e, dict)), default=0) + 1
    entry = {
        "n": number,
        "on_what": ctx.data["authority_comment_on"],
        "text": ctx.data["authority_comment"],
        "by": ctx.actor,
        "on": ctx.today.isoformat(),
    }
    ctx.data["authority_comments"] = [*entries, entry]
    ctx.data["authority_comment"] = ctx.data["authority_comment_on"] = None


# -- access denied or obstructed -------------------------------------------------------------


def _denials(ctx: RuleContext) -> tuple[list[Any], int]:
    entries = [e for e in ctx.data.get("access_denied") or [] if isinstance(e, dict)]
    return entries, int(ctx.data.get("access_denied_escalated") or 0)


@registry.guard(
    "one_denial_appended",
    reason="record_access_denied records one new denial of access",
)
def one_denial_appended(ctx: RuleContext) -> bool:
    """Each denial is escalated on its own: exactly one new entry per firing."""
    entries, escalated = _denials(ctx)
    new = [e for e in entries if int(e.get("n") or 0) > escalated]
    if len(new) == 1:
        return True
    raise GuardRefusal(
        f"{len(new)} new denials of access: append exactly one to access_denied (each is "
        "escalated to the authority on its own)"
    )


@registry.action("count_escalated_denials", writes=["access_denied_escalated"])
def count_escalated_denials(ctx: RuleContext) -> None:
    entries, _ = _denials(ctx)
    ctx.data["access_denied_escalated"] = max((int(e.get("n") or 0) for e in entries), default=0)
