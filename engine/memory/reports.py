"""The memory store's report projection: one row per instance, its facts as a tuple."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

from opcatflow.engine.memory.records import META
from opcatflow.engine.memory.tables import Tables
from opcatflow.engine.rows import Fact

REPORT_FACTS = "report_facts"  # (workflow id, instance id) -> tuple of facts, sorted
DIGEST_KEY = "report_projection"


class MemoryReports:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._rows: dict[tuple[str, str], tuple[Fact, ...]] = tables.table(REPORT_FACTS)

    def replace(self, workflow_id: str, instance_id: str, facts: Sequence[Fact]) -> None:
        key = (workflow_id, instance_id)
        if facts:
            self._t.put(REPORT_FACTS, key, tuple(sorted(facts)))
        else:
            self._t.delete(REPORT_FACTS, key)

    def facts(
        self, workflow_id: str, fields: Collection[str]
    ) -> Iterator[tuple[str, str, str, str]]:
        wanted = frozenset(fields)
        with self._t.lock:  # a snapshot: the rows are immutable tuples
            found = sorted((k[1], v) for k, v in self._rows.items() if k[0] == workflow_id)
        for instance_id, facts in found:
            for fact in facts:
                if fact.field in wanted:
                    yield instance_id, fact.field, fact.entry, fact.value

    def clear(self) -> None:
        for key in list(self._rows):
            self._t.delete(REPORT_FACTS, key)

    def digest(self) -> str | None:
        with self._t.lock:
            value: str | None = self._t.table(META).get(DIGEST_KEY)
        return value

    def set_digest(self, digest: str) -> None:
        self._t.put(META, DIGEST_KEY, digest)
