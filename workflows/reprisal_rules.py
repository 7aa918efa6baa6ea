"""The rules of the reprisal workflow from version 5: several allegations in one case, each
counted from its own received_at (docs/domain.md, "Reprisal allegations")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opcatflow.engine import GuardRefusal, RuleContext
from opcatflow.workflows.rules import registry


def _uncounted(ctx: RuleContext) -> list[dict[str, Any]]:
    """The allegations the focal point's deadline does not count yet (appended since)."""
    counted = ctx.data.get("allegations_counted") or 0
    entries = ctx.data.get("allegations") or []
    return [e for e in entries if isinstance(e, dict) and int(e.get("n") or 0) > counted]


def _at(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


@registry.guard(
    "allegation_appended",
    reason="record_allegation records a new allegation",
)
def allegation_appended(ctx: RuleContext) -> bool:
    if _uncounted(ctx):
        return True
    raise GuardRefusal("no new allegation: append one to allegations (its received_at and source)")


@registry.action(
    "received_at_from_allegations",
    writes=["received_at", "allegations_counted"],
)
def received_at_from_allegations(ctx: RuleContext) -> None:
    """Count the focal point's 24 hours from the right moment.

    In `reported` (a new case, or another allegation before the focal point was told) the
    deadline counts from the earliest allegation not yet notified; a case brought back to
    `reported` by a new allegation counts from that allegation. With no allegation at all,
    from when the case is entered.
    """
    new = _uncounted(ctx)
    times = [str(e["received_at"]) for e in new if e.get("received_at")]
    current = ctx.data.get("received_at")
    if current and ctx.state == "reported":
        times.append(str(current))
    if times:
        ctx.data["received_at"] = min(times, key=_at)
    elif not current:
        ctx.data["received_at"] = ctx.now.isoformat()
    entries = ctx.data.get("allegations") or []
    numbers = [int(e.get("n") or 0) for e in entries if isinstance(e, dict)]
    ctx.data["allegations_counted"] = max(numbers, default=0)


@registry.action("allegation_kept_as_record", writes=["allegations"])
def allegation_kept_as_record(ctx: RuleContext) -> None:
    """Before a duplicate is merged: a case that holds its allegation the way versions up to
    4 did (the `allegation` text and the case's `received_at`) and no allegation record gets
    one, so the merge copies it with its received_at. Its source was never recorded: other."""
    if ctx.data.get("allegations") or not ctx.data.get("allegation"):
        return
    received = ctx.data.get("received_at") or ctx.now.isoformat()
    entry = {"n": 1, "received_at": received, "source": "other", "text": ctx.data["allegation"]}
    ctx.data["allegations"] = [entry]
