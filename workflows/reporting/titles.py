"""The labels reports print for register entries, read from the projection of the register
workflows. A reference follows merges (an entry merged into another counts as the one it
was merged into); an entry is printed by its title, with its id when two entries share the
title; a value no register holds (a place written as text by an older version) as it is."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from opcatflow.engine.ports import UnitOfWork
from opcatflow.workflows.reporting.facts import items
from opcatflow.workflows.reporting.sources import AUTHORITY, MERGED_INTO, PLACE, THEME

TITLE = "name"
PLACE_TYPE = "place_type"


@dataclass(frozen=True)
class Titles:
    labels: dict[tuple[str, str], str]
    merged: dict[tuple[str, str], str]
    place_types: dict[str, str]

    def survivor(self, register: str, entry: str) -> str:
        seen = {entry}
        while (nxt := self.merged.get((register, entry))) is not None and nxt not in seen:
            seen.add(nxt)
            entry = nxt
        return entry

    def label(self, register: str, value: str) -> str:
        entry = self.survivor(register, value)
        return self.labels.get((register, entry), entry)

    def place_type(self, place: str | None) -> str | None:
        if not place:
            return None
        return self.place_types.get(place) or self.place_types.get(self.survivor(PLACE, place))


def load_titles(uow: UnitOfWork) -> Titles:
    titles: dict[tuple[str, str], str] = {}
    merged: dict[tuple[str, str], str] = {}
    place_types: dict[str, str] = {}
    for register in (PLACE, AUTHORITY, THEME):
        for item in items(uow, register, (TITLE, PLACE_TYPE, MERGED_INTO)):
            title = item.one(TITLE)
            if title is not None:
                titles[(register, item.id)] = title
            into = item.one(MERGED_INTO)
            if into is not None:
                merged[(register, item.id)] = into
            kind = item.one(PLACE_TYPE)
            if register == PLACE and kind is not None:
                place_types[item.id] = kind
    shared = Counter(
        (register, title) for (register, entry), title in titles.items()
        if (register, entry) not in merged
    )  # fmt: skip
    labels = {
        key: f"{title} ({key[1]})" if shared[(key[0], title)] > 1 else title
        for key, title in titles.items()
    }
    return Titles(labels, merged, place_types)
