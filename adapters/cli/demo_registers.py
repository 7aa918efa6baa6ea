"""The register entries ``opcatflow demo`` starts from: the shipped ones (``registers seed``),
then a few authorities, places, themes and people, added the way an NPM would
(``Engine.start_many``, one transaction per register), with the ids the demo's cases refer
to."""

from __future__ import annotations

from typing import Any

from opcatflow.engine import Engine
from opcatflow.engine.bulk import NewInstance
from opcatflow.workflows.shipped import seed

HEAD = ("r.haddad", "head")
COORDINATOR = ("s.nakamura", "coordinator")

# register -> (who adds them, [(id, data)]), in the order they must exist
DEMO_ENTRIES: tuple[tuple[str, tuple[str, str], list[tuple[str, dict[str, Any]]]], ...] = (
    (
        "authority",
        HEAD,
        [
            ("moj", {"name": "Ministry of Justice", "kind": "ministry"}),
            ("moi", {"name": "Ministry of the Interior", "kind": "ministry"}),
            (
                "prison_service",
                {
                    "name": "Directorate of Prison Administration",
                    "kind": "directorate",
                    "parent": "moj",
                    "focal_points": [
                        {"name": "Irene Costa", "position": "Head of inspections"},
                    ],
                },
            ),
        ],
    ),
    (
        "place",
        COORDINATOR,
        [
            (
                "central-remand-prison",
                {
                    "name": "Central Remand Prison",
                    "place_type": "pre_trial_detention",
                    "authority": "prison_service",
                    "region": "Capital",
                    "capacity": 620,
                },
            ),
            (
                "northern-youth-centre",
                {
                    "name": "Northern Youth Centre",
                    "place_type": "juvenile_institution",
                    "authority": "moj",
                    "region": "North",
                    "capacity": 80,
                },
            ),
            (
                "police-station-4",
                {
                    "name": "Police Station 4",
                    "place_type": "police_custody",
                    "authority": "moi",
                    "region": "Capital",
                },
            ),
        ],
    ),
    (
        "person",
        HEAD,
        [
            (
                "r.haddad",
                {"name": "Rania Haddad", "person_kind": "member", "roles": ["head"],
                 "user": "r.haddad"},
            ),
            (
                "s.nakamura",
                {"name": "Sora Nakamura", "person_kind": "staff", "roles": ["coordinator"],
                 "user": "s.nakamura"},
            ),
            (
                "a.diallo",
                {"name": "Awa Diallo", "person_kind": "member", "roles": ["member"],
                 "user": "a.diallo", "expertise": ["lawyer"]},
            ),
            (
                "dr.osei",
                {"name": "Dr Ama Osei", "person_kind": "external_expert", "roles": ["expert"],
                 "user": "dr.osei", "expertise": ["medical_doctor"]},
            ),
        ],
    ),
)  # fmt: skip


def seed_demo_registers(engine: Engine) -> dict[str, int]:
    """Add the shipped entries (the receiving bodies the complaint is referred to, the
    themes), then the demo's own; returns how many per register."""
    counts = seed(engine, HEAD[0])
    for register, (actor, role), entries in DEMO_ENTRIES:
        rows = [NewInstance(data, entry_id) for entry_id, data in entries]
        added = len(engine.start_many(register, rows, actor=actor, role=role))
        counts[register] = counts.get(register, 0) + added
    return counts
