"""The titles reports print for register entries (a place's name for its id), read from the
projection of the register workflows; a value no register holds is printed as it is (a
place written as text by an older version)."""

from __future__ import annotations

from dataclasses import dataclass

from opcatflow.engine.ports import UnitOfWork
from opcatflow.workflows.reporting.facts import items
from opcatflow.workflows.reporting.sources import AUTHORITY, PLACE, THEME

TITLE = "name"


@dataclass(frozen=True)
class Titles:
    names: dict[tuple[str, str], str]
    place_types: dict[str, str]

    def label(self, register: str, value: str) -> str:
        return self.names.get((register, value), value)

    def place_type(self, place: str | None) -> str | None:
        return self.place_types.get(place) if place else None


def load_titles(uow: UnitOfWork) -> Titles:
    names: dict[tuple[str, str], str] = {}
    place_types: dict[str, str] = {}
    for register in (PLACE, AUTHORITY, THEME):
        for item in items(uow, register, (TITLE, "place_type")):
            title = item.one(TITLE)
            if title is not None:
                names[(register, item.id)] = title
            kind = item.one("place_type")
            if register == PLACE and kind is not None:
                place_types[item.id] = kind
    return Titles(names, place_types)
