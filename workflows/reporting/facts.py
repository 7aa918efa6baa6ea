"""Reading the report projection: one :class:`Item` per instance, streamed in id order."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.projection_spec import CREATED_AT, STATE


@dataclass
class Item:
    """An instance as projected: its plain values by field (a list's items in order), and
    its records' entries by field, then entry key, then sub-field."""

    id: str
    values: dict[str, list[str]] = field(default_factory=dict)
    records: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def one(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[0] if found else None

    def many(self, *names: str) -> list[str]:
        """The values of the first of ``names`` that has any (a list, or a single value)."""
        for name in names:
            found = self.values.get(name)
            if found:
                return list(dict.fromkeys(found))
        return []

    @property
    def state(self) -> str:
        return self.one(STATE) or ""

    def created_on(self, zone: ZoneInfo) -> date:
        return datetime.fromisoformat(self.one(CREATED_AT) or "").astimezone(zone).date()

    def entries(self, name: str) -> list[tuple[str, dict[str, str]]]:
        """A records field's entries as (key, sub-fields)."""
        return list(self.records.get(name, {}).items())


def items(
    uow: UnitOfWork, workflow: str, fields: Iterable[str], records: Collection[str] = ()
) -> Iterator[Item]:
    """The instances of ``workflow`` with ``fields`` and the sub-fields ``records`` names
    (``assessments.on``), one at a time: memory holds one instance's rows."""
    wanted = {STATE, CREATED_AT, *fields, *records}
    current: Item | None = None
    for instance_id, name, entry, value in uow.reports.facts(workflow, wanted):
        if current is None or current.id != instance_id:
            if current is not None:
                yield current
            current = Item(instance_id)
        if "." in name:
            whole, sub = name.split(".", 1)
            current.records.setdefault(whole, {}).setdefault(entry, {})[sub] = value
        else:
            current.values.setdefault(name, []).append(value)
    if current is not None:
        yield current


def year_of(day: str | None) -> str | None:
    """The year of an ISO date (or of a partial date: ``2026-05``, ``2026``)."""
    return day[:4] if day and len(day) >= 4 and day[:4].isdigit() else None


def local_day(moment: str, zone: ZoneInfo) -> date:
    """The day in ``zone`` of an ISO datetime (a date alone is that day)."""
    if len(moment) == 10:
        return date.fromisoformat(moment)
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None:
        return parsed.date()
    return parsed.astimezone(zone).date()
