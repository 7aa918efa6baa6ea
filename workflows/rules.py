"""The named rules the bundled OPCAT workflows use (cross-cutting rules of PROCESSES.md).

Definitions refer to these by name; operators cannot add code through YAML.
"""

from __future__ import annotations

from opcatflow.engine import GuardRefusal, Registry, RuleContext

registry = Registry()

# The use of personal data each sharing trigger makes (OPCAT art. 21(2)).
SHARING_USES = {
    "inform_management": "inform_management",
    "refer": "refer_with_evidence",
    "publish": "publish",
}
DO_NO_HARM_FIELDS = ("dnh_decided_by", "dnh_reason", "dnh_recipient", "dnh_shared")


def _do_no_harm_recorded(ctx: RuleContext) -> bool:
    return all(ctx.data.get(name) for name in DO_NO_HARM_FIELDS)


@registry.guard(
    "consent_or_do_no_harm",
    reason="personal data would be shared without the person's consent for this use "
    "or a recorded do-no-harm decision",
)
def consent_or_do_no_harm(ctx: RuleContext) -> bool:
    """Sharing personal data needs consent for that use, or a complete do-no-harm decision.

    A referral that shares only preliminary findings (no evidence) shares no personal data.
    """
    if ctx.trigger == "refer" and ctx.data.get("referral_shares") != "evidence":
        return True
    use = SHARING_USES.get(ctx.trigger, ctx.trigger)
    if use in (ctx.data.get("consent") or []):
        return True
    if _do_no_harm_recorded(ctx):
        return True
    partial = [n for n in DO_NO_HARM_FIELDS if ctx.data.get(n)]
    if partial:
        missing = ", ".join(n for n in DO_NO_HARM_FIELDS if not ctx.data.get(n))
        raise GuardRefusal(f"the do-no-harm decision is incomplete: {missing} missing")
    raise GuardRefusal(
        f"no consent recorded for {use!r} and no do-no-harm decision "
        f"(who decided, why, which body receives what)"
    )


@registry.guard(
    "complainant_told_limits",
    reason="the complainant has not been told what the NPM can and cannot do",
)
def complainant_told_limits(ctx: RuleContext) -> bool:
    return bool(ctx.data.get("told_limits"))


@registry.action("record_action_taken")
def record_action_taken(ctx: RuleContext) -> None:
    """Keep the list of actions decided on a complaint (a complaint may get several)."""
    taken = list(ctx.data.get("actions_taken") or [])
    if ctx.trigger not in taken:
        taken.append(ctx.trigger)
    ctx.data["actions_taken"] = taken
