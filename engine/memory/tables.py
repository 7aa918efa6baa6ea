"""Tables in memory with transactions: the one place the memory store keeps state.

A write unit of work holds the store's lock from begin to commit or rollback, so writers run
one at a time, as on SQLite (``BEGIN IMMEDIATE``). It changes the tables in place and keeps an
undo log: a rollback, or a savepoint's, replays the log backwards. Each read takes the same
lock for as long as the read lasts (one call, not the whole read unit of work), so it never
sees a writer's uncommitted change, and waits for the writer to finish (read committed). Rows
are immutable values (frozen records, tuples, JSON text), so nothing a caller was handed can
change what is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final, Generic, TypeVar

from opcatflow.engine.errors import StoreError
from opcatflow.engine.ports import DuplicateKey

_ABSENT: Final = object()

TableName = str
T = TypeVar("T")


class Tables:
    """Named tables of immutable rows, keyed by their primary key, and id sequences."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.rows: dict[TableName, dict[Any, Any]] = {}
        self._sequences: dict[TableName, int] = {}
        self._undo: list[tuple[dict[Any, Any], Any, Any]] | None = None
        self._writer: int | None = None

    def table(self, name: TableName) -> dict[Any, Any]:
        """The rows of ``name`` (read them only under :attr:`lock`)."""
        found = self.rows.get(name)
        if found is None:
            found = self.rows[name] = {}
        return found

    def next_id(self, name: TableName) -> int:
        """The next id of ``name``: increasing, never reused, even after a rollback (as a
        database sequence)."""
        value = self._sequences.get(name, 0) + 1
        self._sequences[name] = value
        return value

    # -- writing, inside :meth:`transaction` -----------------------------------------------

    def insert(self, name: TableName, key: Any, row: Any) -> None:
        """Add a row.

        Raises:
            DuplicateKey: the key is taken.
        """
        rows = self.rows.get(name) or self.table(name)
        if key in rows:
            raise DuplicateKey(f"{name}: {key!r} is already stored")
        self._log(rows, key, _ABSENT)
        rows[key] = row

    def put(self, name: TableName, key: Any, row: Any) -> None:
        """Add or replace a row."""
        rows = self.rows.get(name) or self.table(name)
        self._log(rows, key, rows.get(key, _ABSENT))
        rows[key] = row

    def delete(self, name: TableName, key: Any) -> bool:
        """Remove a row; returns whether there was one."""
        rows = self.table(name)
        old = rows.get(key, _ABSENT)
        if old is _ABSENT:
            return False
        self._log(rows, key, old)
        del rows[key]
        return True

    def _log(self, rows: dict[Any, Any], key: Any, old: Any) -> None:
        if self._undo is None or self._writer != threading.get_ident():
            raise StoreError("the memory store was written outside a write unit of work")
        self._undo.append((rows, key, old))

    # -- transactions ----------------------------------------------------------------------

    def transaction(self) -> Transaction[None]:
        """One write unit of work: commits when the block ends, rolls back if it raises.

        Nested in another on the same thread, it is a savepoint: its own changes roll back if
        it raises, the outer unit of work goes on.
        """
        return Transaction(self, None)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Roll back what the block changed if it raises; keep it otherwise."""
        if self._undo is None:
            raise StoreError("a savepoint needs a write unit of work")
        mark = len(self._undo)
        try:
            yield
        except BaseException:
            self._rollback_to(mark)
            raise

    def _rollback_to(self, mark: int) -> None:
        undo = self._undo
        assert undo is not None
        while len(undo) > mark:
            rows, key, old = undo.pop()
            if old is _ABSENT:
                rows.pop(key, None)
            else:
                rows[key] = old


class Transaction(Generic[T]):
    """A write unit of work on ``tables`` as a context manager whose ``with`` gives ``value``
    (a class, not a generator: it runs on every fire)."""

    __slots__ = ("_mark", "_tables", "_value")

    def __init__(self, tables: Tables, value: T) -> None:
        self._tables = tables
        self._value = value
        self._mark: int | None = None

    def __enter__(self) -> T:
        tables = self._tables
        tables.lock.acquire()
        if tables._undo is not None:  # this thread's unit of work is open: a savepoint
            self._mark = len(tables._undo)
        else:
            self._mark = None
            tables._undo, tables._writer = [], threading.get_ident()
        return self._value

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tables = self._tables
        try:
            if kind is not None:
                tables._rollback_to(self._mark or 0)
            if self._mark is None:
                tables._undo, tables._writer = None, None
        finally:
            tables.lock.release()
