"""What the reports read of the bundled workflows: their report projections.

Each name below is projected (kept in ``report_facts``) for every instance whose version
declares it as a plain, non-personal value; ``validate`` refuses a definition that makes one
of them personal. Fields of later versions (recommendation v4, the registers) are named now:
a version that lacks a field projects nothing for it.
"""

from __future__ import annotations

from opcatflow.engine import Registry

RECOMMENDATION = "recommendation"
VISIT = "visit"
COMPLAINT = "complaint"
REPRISAL = "reprisal"
REFERRAL = "referral"
PLACE = "place"
AUTHORITY = "authority"
THEME = "theme"
MERGED_INTO = "merged_into"  # a register entry merged into another: counted as that one


def register_sources(registry: Registry) -> None:
    registry.project(
        RECOMMENDATION,
        fields=[
            "source", "addressee", "places", "place", "themes", "theme", "priority", "urgent",
            "sent_on", "position", "closed_on",
        ],
        records={"assessments": ["on", "status"]},
    )  # fmt: skip
    registry.project(
        VISIT,
        fields=["kind", "place", "ended_on"],
        records={"access_denied": ["denied_at"]},
    )
    registry.project(
        COMPLAINT,
        fields=[
            "received_on", "theme", "themes", "institution", "complaint_type", "source",
            "channel", "referral_body", "visit_kind",
        ],
    )  # fmt: skip
    registry.project(
        REPRISAL,
        fields=["origin", "place", "reported_on"],
        records={"allegations": ["received_at", "source"]},
    )
    registry.project(REFERRAL, fields=["body", "result", "institution", "theme"])
    registry.project(PLACE, fields=["name", "place_type", "authority", "region", MERGED_INTO])
    registry.project(AUTHORITY, fields=["name", "kind", "parent", MERGED_INTO])
    registry.project(THEME, fields=["name", MERGED_INTO])
