"""The write path's statements run straight on the driver's cursor.

A transition is five statements (BEGIN, read the instance, update it, take a position, insert
its audit record), and SQLAlchemy's execution around each (cache lookup, parameter
processing, result metadata, events) cost several times what SQLite takes to run it. Here
each statement is compiled once per dialect by SQLAlchemy itself, and its parameters and
result values go through the very type processors SQLAlchemy would apply (so a value is
written and read exactly as through ``Connection.execute``); only the execution machinery is
skipped. It runs inside the connection's transaction, which SQLAlchemy still begins, commits,
rolls back and nests (savepoints).

Whoever listens for statements on the engine (``before_cursor_execute``: a test counting
statements, a tracing tool) gets them through ``Connection.execute`` as before: each function
here takes the direct path only while nobody listens, so callers need not ask. A driver error
is raised as the ``sqlalchemy.exc`` error ``Connection.execute`` would raise, so callers
translate it as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Processor = Callable[[Any], Any] | None
# What the write path runs: executable and compilable alike.
Statement = sa.Select[Any] | sa.Update | sa.Insert | sa.Delete


class Direct:
    """One statement compiled for one dialect, with its bind and result processors."""

    __slots__ = ("_names", "_processors", "_results", "dialect", "sql", "statement")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.statement = statement
        self.dialect = dialect
        self.sql = compiled.string
        # qmark drivers (sqlite3) take a sequence in the statement's order; pyformat ones
        # (psycopg) a mapping by name
        names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
        self._names = tuple(names)
        self._processors = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        )
        self._results: tuple[Processor, ...] | None = None

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """``values`` as the driver takes them (processed, in the statement's order)."""
        processed = [
            value if process is None else process(value)
            for value, process in zip(
                (values[name] for name in self._names), self._processors, strict=True
            )
        ]
        if self.dialect.positional:
            return processed
        return dict(zip(self._names, processed, strict=True))

    def result_processors(self, description: Sequence[Any]) -> tuple[Processor, ...]:
        """The result processors of the statement's columns (once: from the first cursor)."""
        if self._results is None:
            dialect = self.dialect
            columns = self.statement.exported_columns  # type: ignore[attr-defined]
            self._results = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, entry[1])
                for column, entry in zip(columns, description, strict=True)
            )
        return self._results


class DirectStatements:
    """The statements of one dialect, each compiled on first use."""

    __slots__ = ("_compiled", "dialect")

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._compiled: dict[int, Direct] = {}

    def __getitem__(self, statement: ClauseElement) -> Direct:
        found = self._compiled.get(id(statement))
        if found is None or found.statement is not statement:
            found = self._compiled[id(statement)] = Direct(statement, self.dialect)
        return found


_BY_DIALECT: weakref.WeakKeyDictionary[Dialect, DirectStatements] = weakref.WeakKeyDictionary()


def statements_for(dialect: Dialect) -> DirectStatements:
    found = _BY_DIALECT.get(dialect)
    if found is None:
        found = _BY_DIALECT[dialect] = DirectStatements(dialect)
    return found


def listened(conn: Connection) -> bool:
    """Whether someone listens for the statements run on ``conn``'s engine."""
    dispatch = conn.engine.dispatch
    return bool(dispatch.before_cursor_execute) or bool(dispatch.after_cursor_execute)


def _execute(conn: Connection, statement: Statement, values: Mapping[str, Any]) -> Any:
    """Run ``statement`` with ``values`` in ``conn``'s transaction; returns the driver's
    cursor (``rowcount``, rows as the driver gives them)."""
    direct = statements_for(conn.dialect)[statement]
    parameters = direct.parameters(values)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(direct.sql, parameters)
    except conn.dialect.loaded_dbapi.Error as err:
        cursor.close()
        raise _wrapped(conn, direct.sql, parameters, err) from err
    return cursor


def rowcount(conn: Connection, statement: Statement, values: Mapping[str, Any]) -> int:
    """Run an UPDATE or DELETE; returns how many rows it changed."""
    if listened(conn):
        return int(conn.execute(statement, values).rowcount)
    cursor = _execute(conn, statement, values)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def execute_many(conn: Connection, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run an INSERT once per row of ``rows``."""
    if listened(conn):
        conn.execute(statement, list(rows))
        return
    direct = statements_for(conn.dialect)[statement]
    parameters = [direct.parameters(values) for values in rows]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if len(parameters) == 1:
            cursor.execute(direct.sql, parameters[0])
        else:
            cursor.executemany(direct.sql, parameters)
    except conn.dialect.loaded_dbapi.Error as err:
        raise _wrapped(conn, direct.sql, parameters, err) from err
    finally:
        cursor.close()


def first(
    conn: Connection, statement: Statement, values: Mapping[str, Any]
) -> Sequence[Any] | None:
    """The first row of a SELECT (or ``UPDATE ... RETURNING``), its values processed as
    SQLAlchemy's result would give them; ``None`` if there is none."""
    if listened(conn):
        row: Sequence[Any] | None = conn.execute(statement, values).first()
        return row
    direct = statements_for(conn.dialect)[statement]
    cursor = _execute(conn, statement, values)
    try:
        raw = cursor.fetchone()
        if raw is None:
            return None
        processors = direct.result_processors(cursor.description)
    except conn.dialect.loaded_dbapi.Error as err:
        raise _wrapped(conn, direct.sql, (), err) from err
    finally:
        cursor.close()
    return tuple(
        value if process is None else process(value)
        for value, process in zip(raw, processors, strict=True)
    )


def driver_sql(conn: Connection, sql: str) -> None:
    """A statement without parameters (``BEGIN IMMEDIATE``)."""
    if listened(conn):
        conn.exec_driver_sql(sql)
        return
    try:
        conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]
    except conn.dialect.loaded_dbapi.Error as err:
        raise _wrapped(conn, sql, (), err) from err


def _wrapped(conn: Connection, sql: str, parameters: Any, err: Exception) -> sa.exc.DBAPIError:
    dbapi = conn.dialect.loaded_dbapi
    wrapped = sa.exc.DBAPIError.instance(sql, parameters, err, dbapi.Error, dialect=conn.dialect)
    assert isinstance(wrapped, sa.exc.DBAPIError)
    return wrapped
