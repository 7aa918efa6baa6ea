"""The rules of the visit workflow from version 5: the optional factual check and the
decision on a reprisal follow-up (docs/domain.md, "Visits")."""

from __future__ import annotations

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
