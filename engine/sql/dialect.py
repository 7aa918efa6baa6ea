"""What differs between SQLite and PostgreSQL, decided in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


@dataclass(frozen=True, slots=True)
class Dialect:
    """Attributes:
    postgresql: row locks (``FOR UPDATE``, ``SKIP LOCKED``) exist; on SQLite the writer
        lock of ``BEGIN IMMEDIATE`` serialises writers instead, so they are left out.
    """

    name: str

    @property
    def postgresql(self) -> bool:
        return self.name == "postgresql"

    def insert(self, table: sa.Table) -> Any:
        """The dialect's own INSERT (it has ``on_conflict_do_nothing``)."""
        return (postgresql_insert if self.postgresql else sqlite_insert)(table)

    def insert_new(self, table: sa.Table) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING``: on PostgreSQL it waits for a concurrent
        insert of the same key and then skips, where a plain insert would fail."""
        return self.insert(table).on_conflict_do_nothing()
