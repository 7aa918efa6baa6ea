"""A recommendation's implementation status on a day: the status of its latest assessment
whose ``on`` is on or before that day (the one with the highest ``n`` among several that
day); ``not_assessed`` when none is."""

from __future__ import annotations

from datetime import date

from opcatflow.workflows.reporting.facts import Item

NOT_ASSESSED = "not_assessed"
ASSESSMENTS = "assessments"
# What is read of each assessment (projected as ``assessments.on``, ``assessments.status``).
ASSESSMENT_FIELDS = ("assessments.on", "assessments.status")


def _number(key: str) -> int:
    return int(key) if key.lstrip("-").isdigit() else 0


def status_on(item: Item, day: date) -> str:
    cutoff = day.isoformat()
    best: tuple[str, int] | None = None
    status = NOT_ASSESSED
    for key, entry in item.entries(ASSESSMENTS):
        on = entry.get("on")
        found = entry.get("status")
        if on is None or found is None or on[:10] > cutoff:
            continue
        rank = (on[:10], _number(key))
        if best is None or rank > best:
            best, status = rank, found
    return status
