"""UN calendar knowledge for the international engagement cycles (spt_visit, spt_advisory,
cat_cycle, upr_cycle, sp_visit), and the actions those definitions name.

The UN publishes the exact dates of its sessions late, sometimes years after a cycle opens.
Until it does, a cycle carries estimates computed here from the rules in docs/domain.md, each
with a ``<field>_estimated`` flag; a date the user enters replaces the estimate and clears
the flag. Deadlines count from these dates (the engine re-arms them when one changes), so
entering a published date moves every pending timer in the same transaction.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from opcatflow.engine import RuleContext
from opcatflow.engine.partial_dates import counted_day
from opcatflow.workflows.rules import registry

# The engagement cycles, as `opcatflow calendar` lists them.
CYCLES = ("spt_visit", "spt_advisory", "cat_cycle", "upr_cycle", "sp_visit")

# The UPR working group meets three times a year; the next cycle of a State is reviewed in the
# session 14 sessions after its previous review (HRC resolution 16/21, session numbering).
UPR_SESSIONS_PER_YEAR = 3
UPR_CYCLE_SESSIONS = 14
# ... but the sessions are not evenly spread: in the third and fourth cycles the same State
# came back 4.9 to 5.5 years after its previous review, not 14 x 4 months. The next review is
# estimated in the session of the same season five years on.
UPR_CYCLE_YEARS = 5
UPR_SEASONS = ("jan_feb", "apr_may", "oct_nov")
# The Monday on or after these days opened the recent sessions (42nd-50th: 23 January 2023,
# 1 May 2023, 6 November 2023, 22 January 2024 ... 3 November 2025); a session lasts two weeks.
UPR_SESSION_OPENS = ((1, 20), (4, 28), (11, 3))
UPR_SESSION_DAYS = 12  # Monday of the first week to Friday of the second
# The dates upr_session_dates fills with an estimate until someone enters them
UPR_ESTIMATES = ("session_end", "review_on", "hrc_session_start")
# The Human Rights Council session that adopts an outcome: a January/February review -> the
# June session, April/May -> September, October/November -> March of the next year. Recent
# openings: 19 June 2023, 11 September 2023, 26 February 2024, 18 June 2024, 24 February 2025.
HRC_ADOPTION_OPENS = ((6, 15, 0), (9, 8, 0), (2, 24, 1))  # month, day, years after the review


def _monday_on_or_after(day: date) -> date:
    return day + timedelta(days=(7 - day.weekday()) % 7)


def upr_season(session_start: date) -> int:
    """Which of the three yearly working-group sessions a start date belongs to (0, 1, 2)."""
    if session_start.month <= 3:
        return 0
    return 1 if session_start.month <= 7 else 2


def upr_session_estimate(session_start: date, sessions_later: int) -> date:
    """The estimated opening day of the working-group session ``sessions_later`` sessions after
    the one that opened on ``session_start`` (three a year, in their usual weeks)."""
    season = upr_season(session_start) + sessions_later
    year = session_start.year + season // UPR_SESSIONS_PER_YEAR
    month, day = UPR_SESSION_OPENS[season % UPR_SESSIONS_PER_YEAR]
    return _monday_on_or_after(date(year, month, day))


def hrc_adoption_estimate(review_on: date) -> date:
    """The estimated opening day of the Human Rights Council session that adopts the outcome
    of a review held on ``review_on``."""
    month, day, years = HRC_ADOPTION_OPENS[upr_season(review_on)]
    return _monday_on_or_after(date(review_on.year + years, month, day))


def _date(ctx: RuleContext, name: str) -> date | None:
    value = ctx.data.get(name)
    return counted_day(value) if isinstance(value, str) else value


def _set_estimate(ctx: RuleContext, name: str, estimate: date | None) -> None:
    """Fill ``name`` with ``estimate`` unless the actor entered it (then it is no estimate)."""
    flag = f"{name}_estimated"
    if ctx.supplied.get(name) is not None:
        ctx.data[flag] = False
    elif ctx.data.get(name) is None or ctx.data.get(flag):
        ctx.data[name] = estimate.isoformat() if estimate else None
        ctx.data[flag] = estimate is not None


def _append(ctx: RuleContext, field: str, entry: str) -> None:
    ctx.data[field] = [*(ctx.data.get(field) or []), entry]


# -- UPR --------------------------------------------------------------------------------------


@registry.action(
    "upr_session_dates",
    writes=[
        "session_start_estimated",
        "session_season",
        *(f"{name}{flag}" for name in UPR_ESTIMATES for flag in ("", "_estimated")),
    ],
)
def upr_session_dates(ctx: RuleContext) -> None:
    """From the working-group session: its season (which sets how early the stakeholder
    submission is due), its last day, the review day, and the Human Rights Council session
    that will adopt the outcome; each an estimate until entered."""
    start = _date(ctx, "session_start")
    if start is None:
        return
    if ctx.supplied.get("session_start") is not None:  # entered: no estimate, unless it says so
        ctx.data["session_start_estimated"] = bool(ctx.supplied.get("session_start_estimated"))
    held = _date(ctx, "review_held_on")
    if held is not None and (ctx.data.get("review_on") is None or estimated(ctx.data, "review_on")):
        # the review took place: its day replaces the estimate, whatever the session dates
        ctx.data["review_on"], ctx.data["review_on_estimated"] = held.isoformat(), False
    ctx.data["session_season"] = UPR_SEASONS[upr_season(held or start)]
    _set_estimate(ctx, "session_end", start + timedelta(days=UPR_SESSION_DAYS - 1))
    _set_estimate(ctx, "review_on", start)
    review = _date(ctx, "review_on") or start
    _set_estimate(ctx, "hrc_session_start", hrc_adoption_estimate(review))


@registry.action("upr_portal_notice", writes=[])
def upr_portal_notice(ctx: RuleContext) -> None:
    """A submission dated before OHCHR's portal opened is recorded (it is what the NPM says
    happened) with a notice to check the date."""
    sent, opens = _date(ctx, "submitted_on"), _date(ctx, "stakeholder_portal_opens_on")
    if sent is not None and opens is not None and sent < opens:
        ctx.notes.append(
            f"submitted_on {sent.isoformat()} is before the stakeholder portal opened "
            f"({opens.isoformat()}): check the date"
        )


@registry.action(
    "upr_next_cycle", writes=["next_session_start", "next_session_number", "next_cycle"]
)
def upr_next_cycle(ctx: RuleContext) -> None:
    """The next review: the working-group session 14 sessions after the one that held this
    review, opening about five years after it, in the same season (an estimate until the UN
    publishes its dates)."""
    held = _date(ctx, "review_held_on") or _date(ctx, "session_start")
    assert held is not None  # the review took place (the close_cycle guard)
    later = UPR_CYCLE_YEARS * UPR_SESSIONS_PER_YEAR
    ctx.data["next_session_start"] = upr_session_estimate(held, later).isoformat()
    number = ctx.data.get("session_number")
    ctx.data["next_session_number"] = number + UPR_CYCLE_SESSIONS if number else None
    ctx.data["next_cycle"] = (ctx.data.get("cycle") or 1) + 1


@registry.guard("review_held", reason="the review has not taken place")
def review_held(ctx: RuleContext) -> bool:
    """A cycle closes (and anchors the next) only on a review that took place."""
    return bool(ctx.data.get("review_held_on"))


# -- moved and postponed sessions or visits --------------------------------------------------


def _moved(*fields: str, estimates: tuple[str, ...] = ()) -> None:
    def action(ctx: RuleContext) -> None:
        # the dates someone entered; estimates derive from them (or, alone, from the rules)
        entered = [
            f"{f} {ctx.data[f]}" for f in fields if ctx.data.get(f) and not estimated(ctx.data, f)
        ]
        anchor = fields[0]
        if not entered and ctx.data.get(anchor):
            entered = [f"{anchor} {ctx.data[anchor]} (estimated)"]
        was = ", ".join(entered)
        reason = ctx.data.get("postponement_reason") or "no reason recorded"
        _append(ctx, "postponements", f"{ctx.today}: {was or 'no dates yet'} ({reason})")
        for name in fields:
            ctx.data[name] = None
        for name in estimates:
            ctx.data[f"{name}_estimated"] = None
        ctx.data["postponement_reason"] = None

    action.__doc__ = (
        f"Keep the dates that will not hold ({', '.join(fields)}) in 'postponements' and clear "
        "them: a session or visit that did not take place never anchors a deadline."
    )
    flags = [f"{name}_estimated" for name in estimates]
    writes = [*fields, *flags, "postponements", "postponement_reason"]
    registry.action(f"postpone_{fields[0]}", writes=writes)(action)


_UPR_MOVED = ("session_start", "session_end", "review_on", "hrc_session_start")
_moved(*_UPR_MOVED, estimates=_UPR_MOVED)
_moved("cat_session_start", "cat_session_last_day", estimates=("cat_session_last_day",))
_moved("visit_starts_on", "visit_ends_on")


# -- CAT --------------------------------------------------------------------------------------


@registry.guard(
    "written_information_sent",
    reason="only those who sent written information to the Committee may brief it in private",
)
def written_information_sent(ctx: RuleContext) -> bool:
    """The closed briefing is for those who sent written information in this cycle."""
    return bool(ctx.data.get("loi_information_sent_on") or ctx.data.get("information_sent_on"))


@registry.action(
    "cat_observations_session",
    writes=[
        "observations_session_last_day",
        "observations_session_last_day_estimated",
        "next_cycle",
    ],
)
def cat_observations_session(ctx: RuleContext) -> None:
    """The concluding observations count from the last day of the session that adopted them:
    by default the session of the examination (an estimate while its last day is one)."""
    if ctx.supplied.get("observations_session_last_day") is None:
        ctx.data["observations_session_last_day"] = ctx.data.get("cat_session_last_day")
        ctx.data["observations_session_last_day_estimated"] = estimated(
            ctx.data, "cat_session_last_day"
        )
    else:
        ctx.data["observations_session_last_day_estimated"] = False
    ctx.data["next_cycle"] = (ctx.data.get("cycle") or 1) + 1


# A CAT session runs four weeks, Monday to Friday (79th: 15 April - 10 May 2024; 80th:
# 8 July - 2 August 2024; 81st: 28 October - 22 November 2024): the last day a moved session
# is given until the Committee publishes it.
CAT_SESSION_DAYS = 26


@registry.guard("cat_session_in_order", reason="the session's last day is before its first day")
def cat_session_in_order(ctx: RuleContext) -> bool:
    """A session ending before it starts would anchor the follow-up a year too early."""
    start, last = _date(ctx, "cat_session_start"), _date(ctx, "cat_session_last_day")
    return start is None or last is None or last >= start


@registry.action(
    "cat_session_dates",
    writes=[
        "cat_session_last_day",
        "cat_session_last_day_estimated",
        "observations_session_last_day_estimated",
    ],
)
def cat_session_dates(ctx: RuleContext) -> None:
    """A session known by its first day only: its last day estimated (four weeks) and flagged
    until entered; a notice when the first day is a Saturday or a Sunday (a typing error, as
    sessions open on a working day)."""
    start = _date(ctx, "cat_session_start")
    if "cat_session_start" in ctx.supplied or "cat_session_last_day" in ctx.supplied:
        estimate = start + timedelta(days=CAT_SESSION_DAYS - 1) if start else None
        _set_estimate(ctx, "cat_session_last_day", estimate)
    if ctx.supplied.get("observations_session_last_day") is not None:
        ctx.data["observations_session_last_day_estimated"] = False
    if ctx.supplied.get("cat_session_start") is not None and start and start.weekday() >= 5:
        ctx.notes.append(
            f"cat_session_start {start.isoformat()} is a {start.strftime('%A')}: "
            "sessions open on a working day, check the date"
        )


# -- SPT advisory, SPT and special procedure visits -------------------------------------------


@registry.action("next_reporting_year", writes=["next_year_starts_on"])
def next_reporting_year(ctx: RuleContext) -> None:
    """The next reporting year starts a year after this one."""
    start = _date(ctx, "year_starts_on")
    assert start is not None  # required when the cycle starts
    try:
        ctx.data["next_year_starts_on"] = start.replace(year=start.year + 1).isoformat()
    except ValueError:  # 29 February
        ctx.data["next_year_starts_on"] = date(start.year + 1, 3, 1).isoformat()


@registry.action("record_visit_activity", writes=["activities", "activity", "activity_note"])
def record_visit_activity(ctx: RuleContext) -> None:
    """Log a meeting, joint visit or briefing with its date."""
    activity = ctx.data.get("activity")
    note = ctx.data.get("activity_note")
    _append(ctx, "activities", f"{ctx.today}: {activity}" + (f" ({note})" if note else ""))
    ctx.data["activity"] = ctx.data["activity_note"] = None


@registry.action("record_advocacy", writes=["advocacy", "advocacy_step"])
def record_advocacy(ctx: RuleContext) -> None:
    _append(ctx, "advocacy", f"{ctx.today}: {ctx.data['advocacy_step']}")
    ctx.data["advocacy_step"] = None


@registry.action("mark_partial_visit", writes=["partial_visit"])
def mark_partial_visit(ctx: RuleContext) -> None:
    """A visit ended part-way: its report (when it comes) covers part of the programme."""
    ctx.data["partial_visit"] = True


@registry.guard(
    "correction_sourced",
    reason="a corrected date needs its source: give the document or page as the reason",
)
def correction_sourced(ctx: RuleContext) -> bool:
    """Official sources often disagree by a day: a correction after the fact names the one it
    follows, in the reason the audit record keeps beside the old and the new value."""
    return bool(ctx.reason and ctx.reason.strip())


@registry.guard(
    "spt_tracks_complete",
    reason="record the SPT's report to the State and, when the SPT reported to the NPM, "
    "the NPM's reply before closing",
)
def spt_tracks_complete(ctx: RuleContext) -> bool:
    """The tracks a visit's follow-up cannot close without; the State's reply and the
    publications depend on the State and may never come."""
    if not ctx.data.get("report_transmitted_on"):
        return False
    return not ctx.data.get("npm_report_transmitted_on") or bool(ctx.data.get("npm_reply_sent_on"))


@registry.guard(
    "recommendations_not_followed",
    reason="the published report's recommendations are followed already",
)
def recommendations_not_followed(ctx: RuleContext) -> bool:
    """The published report opens its recommendations once: the stored case (before this
    change) holds none yet."""
    stored = ctx.lookup(ctx.instance_id)
    return stored is None or not stored.data.get("recommendations")


@registry.guard("report_public", reason="the SPT report is not public")
def report_public(ctx: RuleContext) -> bool:
    """The Special Fund (OPCAT art. 26) finances recommendations of a published report."""
    return bool(ctx.data.get("report_published_on"))


def _stamp(field: str) -> None:
    def stamp(ctx: RuleContext) -> None:
        if ctx.supplied.get(field) is None:
            ctx.data[field] = ctx.today.isoformat()

    stamp.__doc__ = f"Set {field} to today, unless the actor supplied the date."
    registry.action(f"stamp_{field}", writes=[field])(stamp)


for _field in (
    "information_sent_on",
    "loi_information_sent_on",
    "submitted_on",
    "report_shared_on",
    "followup_information_sent_on",
    "npm_reply_sent_on",
):
    _stamp(_field)


def estimated(data: dict[str, Any], name: str) -> bool:
    """Whether the date in ``name`` is an estimate (no one has entered the real one)."""
    return bool(data.get(f"{name}_estimated"))
