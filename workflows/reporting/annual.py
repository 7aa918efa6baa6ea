"""``report annual --year YYYY``: the statistics of an NPM's annual report (OPCAT art. 23).

Counting rules (docs/reports.md, each stated in its table's ``rule``):
- a visit belongs to the year of its last day on site (``ended_on``), a complaint to the
  year of ``received_on``, a recommendation to the year of ``sent_on``, a reprisal
  allegation to the day it was received in the NPM's time zone, a referral to the day it was
  made (its start) in the NPM's time zone;
- a recommendation's status is its latest assessment on or before 31 December of the year;
- the implementation rate's denominator is the recommendations issued that year, less those
  assessed ``no_longer_relevant`` by 31 December.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from zoneinfo import ZoneInfo

from opcatflow.engine.ports import UnitOfWork
from opcatflow.workflows.reporting.facts import items, local_day, year_of
from opcatflow.workflows.reporting.implementation import ASSESSMENT_FIELDS, status_on
from opcatflow.workflows.reporting.model import NOT_RECORDED, Rate, Report, Table, build_table
from opcatflow.workflows.reporting.sources import (
    COMPLAINT,
    RECOMMENDATION,
    REFERRAL,
    REPRISAL,
    THEME,
    VISIT,
)
from opcatflow.workflows.reporting.titles import load_titles

Counts = Counter[tuple[tuple[str, ...], str]]
FOLLOW_UPS = {"reprisal_follow_up": "after reprisal allegations", "follow_up": "routine"}
IMPLEMENTED = "implemented"
PARTIALLY = "partially_implemented"
NO_LONGER_RELEVANT = "no_longer_relevant"


def annual_report(uow: UnitOfWork, year: int, *, zone: ZoneInfo, threshold: int) -> Report:
    wanted = str(year)
    end = date(year, 12, 31)
    titles = load_titles(uow)

    visits: Counts = Counter()
    denied: Counts = Counter()
    follow_ups: Counts = Counter()
    for item in items(uow, VISIT, ("kind", "place", "ended_on"), ("access_denied.denied_at",)):
        if year_of(item.one("ended_on")) != wanted:
            continue
        place_type = titles.place_type(item.one("place")) or NOT_RECORDED
        kind = item.one("kind") or NOT_RECORDED
        visits[((place_type,), kind)] += 1
        if item.entries("access_denied"):
            denied[((place_type,), "count")] += 1
        if kind in FOLLOW_UPS:
            follow_ups[((FOLLOW_UPS[kind],), "count")] += 1

    complaints: Counts = Counter()
    for item in items(uow, COMPLAINT, ("received_on", "theme", "themes")):
        if year_of(item.one("received_on")) != wanted:
            continue
        themes = item.many("themes", "theme")
        theme = titles.label(THEME, themes[0]) if themes else NOT_RECORDED
        complaints[((theme,), item.state)] += 1

    statuses: Counts = Counter()
    for item in items(uow, RECOMMENDATION, ("sent_on",), ASSESSMENT_FIELDS):
        if year_of(item.one("sent_on")) == wanted:
            statuses[((status_on(item, end),), "count")] += 1

    allegations: Counts = Counter()
    for item in items(uow, REPRISAL, (), ("allegations.received_at", "allegations.source")):
        for _, entry in item.entries("allegations"):
            at = entry.get("received_at")
            if at is not None and local_day(at, zone).year == year:
                allegations[((entry.get("source") or NOT_RECORDED,), "count")] += 1

    referrals: Counts = Counter()
    for item in items(uow, REFERRAL, ("body", "result")):
        if item.created_on(zone).year == year:
            body = item.one("body") or NOT_RECORDED
            referrals[((body,), item.one("result") or "awaiting outcome")] += 1

    def table(name: str, title: str, dims: tuple[str, ...], counts: Counts, rule: str) -> Table:
        return build_table(name, title, dims, counts, threshold=threshold, rule=rule)

    status_table = table(
        "recommendations_by_status",
        f"Recommendations issued in {year}, by implementation status on 31 December",
        ("status",),
        statuses,
        "sent_on in the year; status: the latest assessment on or before 31 December",
    )
    tables = (
        table(
            "visits_by_place_type_and_kind",
            f"Visits in {year}, by type of place and kind of visit",
            ("place_type",),
            visits,
            "a visit counts in the year of its last day on site (ended_on)",
        ),
        table(
            "visits_with_access_denied",
            f"Visits in {year} during which access was denied, by type of place",
            ("place_type",),
            denied,
            "visits ending in the year with at least one recorded denial of access",
        ),
        table(
            "complaints_by_theme_and_outcome",
            f"Complaints received in {year}, by theme and outcome (their state now)",
            ("theme",),
            complaints,
            "a complaint counts in the year of received_on; outcome: its state when reported",
        ),
        status_table,
        table(
            "reprisal_allegations_by_source",
            f"Reprisal allegations received in {year}, by source",
            ("source",),
            allegations,
            "each allegation counts on the day it was received in the NPM's time zone",
        ),
        table(
            "follow_up_visits",
            f"Follow-up visits in {year}: after reprisal allegations, apart from routine ones",
            ("follow_up",),
            follow_ups,
            "visits of kind reprisal_follow_up or follow_up, by their last day on site",
        ),
        table(
            "referrals_by_body_and_result",
            f"Referrals made in {year}, by body and result",
            ("body",),
            referrals,
            "a referral counts on the day it was made in the NPM's time zone",
        ),
    )
    return Report(
        "annual",
        f"Annual report {year}",
        {"year": wanted, "time_zone": zone.key, "threshold": str(threshold)},
        tables,
        _rates(status_table, threshold),
    )


def _count(table: Table, status: str) -> tuple[int, bool]:
    """The count of ``status`` in the status table, and whether its cell is withheld."""
    for r, (label,) in enumerate(table.rows):
        if label == status:
            return table.cells.get((r, 0), 0), (r, 0) in table.suppression.hidden
    return 0, False


def _rates(table: Table, threshold: int) -> tuple[Rate, ...]:
    issued = sum(table.cells.values())
    gone, gone_hidden = _count(table, NO_LONGER_RELEVANT)
    done, done_hidden = _count(table, IMPLEMENTED)
    part, part_hidden = _count(table, PARTIALLY)
    denominator = issued - gone
    rule = (
        "denominator: recommendations issued in the year less those no longer relevant on "
        "31 December"
    )
    hidden = gone_hidden or table.suppression.withheld
    return (
        Rate(
            "implemented",
            "Implemented by 31 December",
            done,
            denominator,
            threshold,
            rule,
            hidden or done_hidden,
        ),
        Rate(
            "implemented_at_least_partially",
            "Implemented or partially implemented by 31 December",
            done + part,
            denominator,
            threshold,
            rule,
            hidden or done_hidden or part_hidden,
        ),
    )
