"""Patterns from complaints: how many complaints per institution, theme, type... so that an
NPM can choose where to visit and what to look at.

Counts only. A grouping field must be a plain value that names no person: personal fields,
free text and lists are refused, and nothing but the group values and their counts leaves.
A reference to a register (the place, the theme) counts by entry, following merges, so a
place entered twice and merged counts once; it is shown by its title.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from opcatflow.engine import CompiledWorkflow, Engine, Instance
from opcatflow.engine.definition import FieldType
from opcatflow.engine.registers import RegisterEntry
from opcatflow.engine.suggest import did_you_mean

COMPLAINT = "complaint"
DEFAULT_BY = ("institution", "theme")
GROUPABLE_TYPES = frozenset(
    {
        FieldType.STRING,
        FieldType.ENUM,
        FieldType.BOOLEAN,
        FieldType.DATE,
        FieldType.INTEGER,
        FieldType.REF,
    }
)


def grouping_problems(wf: CompiledWorkflow, by: Sequence[str]) -> list[str]:
    """Why ``by`` cannot group ``wf``'s instances (empty when it can)."""
    if not by:
        return ["name at least one field to count by"]
    fields = wf.definition.fields
    problems = []
    for name in by:
        spec = fields.get(name)
        if spec is None:
            problems.append(f"{wf.id} has no field {name!r}{did_you_mean(name, fields)}")
        elif spec.personal:
            problems.append(f"{name!r} is personal data: counts never group by it")
        elif spec.type not in GROUPABLE_TYPES:
            problems.append(f"{name!r} is {spec.type.value}: count by plain values only")
    if len(set(by)) != len(by):
        problems.append("a field is named twice")
    return problems


@dataclass(frozen=True)
class ComplaintCounts:
    """Complaints per combination of values of the ``by`` fields, most frequent first.

    A value of ``None`` means the field is not recorded yet (a complaint still being
    recorded has no institution).
    """

    by: tuple[str, ...]
    since: date | None
    total: int
    groups: tuple[tuple[tuple[Any, ...], int], ...]
    titles: Mapping[str, str] = field(default_factory=dict)  # register entry id -> title

    def shown(self, value: Any) -> Any:
        """A value as a reader sees it: a register entry as ``{id, title}``."""
        if isinstance(value, str) and value in self.titles:
            return {"id": value, "title": self.titles[value]}
        return value

    def as_json(self) -> dict[str, Any]:
        return {
            "by": list(self.by),
            "since": self.since.isoformat() if self.since else None,
            "total": self.total,
            "groups": [
                {
                    **{n: self.shown(v) for n, v in zip(self.by, values, strict=True)},
                    "count": count,
                }
                for values, count in self.groups
            ],
        }


def _order(item: tuple[tuple[Any, ...], int]) -> tuple[int, tuple[tuple[bool, str], ...]]:
    values, count = item
    return -count, tuple((v is None, str(v)) for v in values)


def count_complaints(
    complaints: Iterable[Instance],
    by: Sequence[str],
    since: date | None = None,
    entries: Mapping[str, RegisterEntry] | None = None,
) -> ComplaintCounts:
    """Count complaints by the values of ``by``, those received on or after ``since`` only.

    ``entries`` are the register entries the values name (``engine.registers.titles``): a
    value naming one counts under the entry it names now (a merged duplicate under the entry
    it was merged into) and is shown by its title.

    Check ``by`` with :func:`grouping_problems` first: this function reads whatever it is
    told to.
    """
    entries = entries or {}
    counter: Counter[tuple[Any, ...]] = Counter()
    cutoff = since.isoformat() if since else None
    for complaint in complaints:
        if complaint.workflow_id != COMPLAINT:
            continue
        if cutoff is not None and str(complaint.data.get("received_on", "")) < cutoff:
            continue
        values = (complaint.data.get(name) for name in by)
        counter[tuple(_entry_id(v, entries) for v in values)] += 1
    groups = tuple(sorted(counter.items(), key=_order))
    titles = {e.id: e.title for e in entries.values()}
    return ComplaintCounts(tuple(by), since, sum(counter.values()), groups, titles)


def _entry_id(value: Any, entries: Mapping[str, RegisterEntry]) -> Any:
    found = entries.get(value) if isinstance(value, str) else None
    return found.id if found is not None else value


def reference_fields(wf: CompiledWorkflow, by: Sequence[str]) -> list[str]:
    """The fields of ``by`` that hold register references."""
    fields = wf.definition.fields
    return [n for n in by if n in fields and fields[n].type is FieldType.REF]


def all_complaints(engine: Engine, page: int = 500) -> Iterator[Instance]:
    """Every complaint in the store, a page at a time."""
    last: Instance | None = None
    while True:
        batch = engine.query(workflow=COMPLAINT, after=last, limit=page)
        yield from batch
        if len(batch) < page:
            return
        last = batch[-1]
