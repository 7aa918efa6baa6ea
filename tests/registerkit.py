"""A few register entries the casework tests refer to (places, themes, people), with chosen
ids, seeded through the engine's bulk start (as an operator's import does).

The casework workflows name their places, themes and team members by register id: a test
database gets these entries first (``seed(engine)``), and the tests use the ids below.
"""

from __future__ import annotations

from typing import Any

from opcatflow.engine import Engine
from opcatflow.engine.bulk import NewInstance

AUTHORITY = "ministry-of-justice"
HEALTH = "ministry-of-health"
PLACE = "central-remand-prison"
HOSPITAL = "st-anne-hospital"
POLICE = "north-police-station"
THEME = "use-of-force"
HEALTH_CARE = "health-care"

# Person entries: NPM members and staff, and the external experts' entries.
DIALLO = "a.diallo"
NAKAMURA = "s.nakamura"
FERREIRA = "l.ferreira"
OSEI = "dr.osei"
BRANDT = "dr.brandt"

AUTHORITIES: dict[str, dict[str, Any]] = {
    AUTHORITY: {"name": "Ministry of Justice", "kind": "ministry"},
    HEALTH: {"name": "Ministry of Health", "kind": "ministry"},
}
PLACES: dict[str, dict[str, Any]] = {
    PLACE: {"name": "Central Remand Prison", "place_type": "pre_trial_detention"},
    HOSPITAL: {"name": "St Anne Psychiatric Hospital", "place_type": "psychiatric_institution"},
    POLICE: {"name": "North Police Station", "place_type": "police_custody"},
}
PLACE_AUTHORITY = {PLACE: AUTHORITY, HOSPITAL: HEALTH, POLICE: AUTHORITY}
THEMES: dict[str, dict[str, Any]] = {
    THEME: {"name": "Use of force", "description": "Force used by staff"},
    HEALTH_CARE: {"name": "Health care", "description": "Access to health care"},
}
PEOPLE: dict[str, dict[str, Any]] = {
    DIALLO: {"name": "A. Diallo", "person_kind": "member", "expertise": ["lawyer"]},
    NAKAMURA: {"name": "S. Nakamura", "person_kind": "staff", "expertise": []},
    FERREIRA: {"name": "L. Ferreira", "person_kind": "staff", "expertise": ["social_worker"]},
    OSEI: {"name": "Dr Ama Osei", "person_kind": "external_expert", "expertise": ["psychiatrist"]},
    BRANDT: {
        "name": "Dr Jonas Brandt",
        "person_kind": "external_expert",
        "expertise": ["medical_doctor"],
    },
}


def _add(engine: Engine, register: str, entries: dict[str, dict[str, Any]]) -> None:
    wf = engine.workflow(register)
    role = "head" if "head" in wf.start_roles else sorted(wf.start_roles)[0]
    rows = [NewInstance(data, entry_id) for entry_id, data in entries.items()]
    engine.start_many(register, rows, actor="registrar", role=role)  # one transaction


def seed_authorities(engine: Engine) -> None:
    """Only the authorities (a recommendation's addressee), for tests that seed their own
    places."""
    _add(engine, "authority", AUTHORITIES)


def seed(engine: Engine) -> None:
    """The entries above, each under its chosen id (once per database)."""
    seed_authorities(engine)
    _add(engine, "place", {i: {**d, "authority": PLACE_AUTHORITY[i]} for i, d in PLACES.items()})
    _add(engine, "theme", THEMES)
    _add(engine, "person", {i: {**d, "user": i} for i, d in PEOPLE.items()})
