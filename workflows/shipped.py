"""The register entries opcatflow ships (``seeds/<register>.json``): the bodies that may
receive personal data, with the ids the settings' ``bodies`` had, and a list of themes.
``opcatflow registers seed`` adds those a database lacks; an NPM then amends, retires or adds
its own like any entry (docs/registers.md)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from opcatflow.engine.bulk import NewInstance
from opcatflow.engine.errors import InstanceNotFound
from opcatflow.engine.runtime import Engine
from opcatflow.engine.sharing import Body

SEEDED = ("authority", "theme")  # in the order they are added
SEEDER_ROLE = "head"  # the authority flags are the head's to set


@cache
def shipped_entries(register: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The shipped ``(id, data)`` of a register's entries."""
    text = (resources.files("opcatflow.workflows") / "seeds" / f"{register}.json").read_text(
        encoding="utf-8"
    )
    return tuple((row.pop("id"), row) for row in json.loads(text))


def shipped_bodies() -> dict[str, Body]:
    """The shipped bodies as the sharing checks read them from the register (for code
    that decides without a store: the property tests of the sharing rules)."""
    return {
        entry_id: Body(entry_id, data["name"], data["kind"], data["independent"])
        for entry_id, data in shipped_entries("authority")
        if data.get("receives_shared_data")
    }


def seed(engine: Engine, actor: str) -> dict[str, int]:
    """Add the shipped entries whose ids the database lacks (in any state: a body the NPM
    retired stays retired), each register in one transaction; how many per register."""
    added: dict[str, int] = {}
    for register in SEEDED:
        rows = [
            NewInstance(dict(data), entry_id)
            for entry_id, data in shipped_entries(register)
            if not _exists(engine, entry_id)
        ]
        started = engine.start_many(register, rows, actor=actor, role=SEEDER_ROLE) if rows else []
        added[register] = len(started)
    return added


def _exists(engine: Engine, entry_id: str) -> bool:
    try:
        engine.get(entry_id)
    except InstanceNotFound:
        return False
    return True
