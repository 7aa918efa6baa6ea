"""Exit codes, and errors as exactly one line on standard error.

| code | meaning                                              |
| ---- | ---------------------------------------------------- |
| 0    | ok                                                   |
| 1    | unexpected error (a bug, or the database failed)     |
| 2    | usage: unknown command or option, bad option value,  |
|      | --data unreadable or over 1 MiB, --output unwritable,|
|      | an unknown filter value (state, field, enum value),  |
|      | an id prefix too short or matching several instances |
| 3    | refused: role, state, guard or data                  |
| 4    | conflict: the instance changed (stale --expect-version) |
| 5    | not found: no such instance, workflow or database,   |
|      | or recipient (audit checkpoint --send-to)            |
| 6    | invalid workflow definition                          |
| 7    | database schema at another revision (run db upgrade) |
| 8    | audit chain broken                                   |
| 9    | schema locked by another process's upgrade (waited)  |
| 10   | a key is missing or wrong: personal values cannot be |
|      | read or written (the message names the key's id)     |
| 11   | import refused: a row (or the file) is wrong; every  |
|      | problem printed as FILE:LINE, nothing imported       |
| 12   | migrate: values to convert to register ids match no  |
|      | entry (or several): map them (--map FILE)            |
"""

from __future__ import annotations

import typer

from opcatflow.adapters.rowfile import RowProblem
from opcatflow.engine import (
    AmbiguousId,
    ConcurrentUpdate,
    DefinitionError,
    IdTooShort,
    InvalidData,
    InvalidFilter,
    InvalidText,
    KeyUnavailable,
    LimitExceeded,
    NotFound,
    OpcatflowError,
    RowsRefused,
    SchemaLocked,
    SchemaMismatch,
    StoreError,
    TransitionRefused,
)
from opcatflow.engine.batch import BatchFailed
from opcatflow.engine.migration.convert import UnmappedValues
from opcatflow.engine.settings import SettingsError
from opcatflow.notifications.directory import ConfigError

OK = 0
UNEXPECTED = 1
USAGE = 2
REFUSED = 3
CONFLICT = 4
NOT_FOUND = 5
INVALID_DEFINITION = 6
SCHEMA_MISMATCH = 7
AUDIT_BROKEN = 8
SCHEMA_LOCKED = 9
KEY_UNAVAILABLE = 10
IMPORT_REFUSED = 11
UNMAPPED = 12

# The engine's errors carry no exit code: this table is the CLI's reading of them. The first
# class an error is an instance of wins, so a subclass comes before its base.
EXIT_CODES: tuple[tuple[type[OpcatflowError], int], ...] = (
    (SchemaLocked, SCHEMA_LOCKED),
    (KeyUnavailable, KEY_UNAVAILABLE),
    (StoreError, UNEXPECTED),
    (SchemaMismatch, SCHEMA_MISMATCH),
    (UnmappedValues, UNMAPPED),
    (DefinitionError, INVALID_DEFINITION),
    (SettingsError, INVALID_DEFINITION),
    (ConfigError, INVALID_DEFINITION),
    (NotFound, NOT_FOUND),
    (ConcurrentUpdate, CONFLICT),
    (TransitionRefused, REFUSED),
    (InvalidData, REFUSED),
    (RowsRefused, IMPORT_REFUSED),
    (BatchFailed, IMPORT_REFUSED),
    (LimitExceeded, USAGE),
    (InvalidFilter, USAGE),
    (AmbiguousId, USAGE),
    (IdTooShort, USAGE),
    (InvalidText, USAGE),
    (OpcatflowError, UNEXPECTED),
)


# A module an extra brings -> that extra (the core install has none of them)
EXTRAS = {
    "psycopg": "postgres",
    "fastapi": "http",
    "starlette": "http",
    "uvicorn": "http",
    "httpx": "webhook",
}


def exit_code(err: OpcatflowError) -> int:
    """The exit status for an engine (or notifications) error: the first row of
    :data:`EXIT_CODES` whose class it is an instance of."""
    return next(code for kind, code in EXIT_CODES if isinstance(err, kind))


def one_line(text: str) -> str:
    return " ".join(text.split())


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` on standard error; returns the Exit to raise."""
    typer.echo(f"error: {one_line(message)}", err=True)
    return typer.Exit(code)


def describe(err: Exception) -> tuple[str, int]:
    """The one-line message and exit code for an error a command let through."""
    if isinstance(err, DefinitionError) and not isinstance(err, UnmappedValues):
        first = err.problems[0] if err.problems else "invalid definition"
        more = len(err.problems) - 1
        suffix = f" (and {more} more; `opcatflow validate PATH` lists them all)" if more else ""
        return f"invalid workflow definition: {first}{suffix}", INVALID_DEFINITION
    if isinstance(err, OpcatflowError):
        return str(err), exit_code(err)
    missing = (err.name or "").partition(".")[0] if isinstance(err, ModuleNotFoundError) else ""
    if missing in EXTRAS:
        extra = EXTRAS[missing]
        return f"{missing} is not installed: pip install 'opcatflow[{extra}]'", UNEXPECTED
    message = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {message[0]}" if message else type(err).__name__
    return f"unexpected {text} (run with --debug for the traceback)", UNEXPECTED


def refuse_rows(path: str, problems: list[RowProblem], rows: int) -> typer.Exit:
    """Print each problem of a file of rows at its line; the exit of an import refused whole."""
    for problem in problems:
        typer.echo(f"{path}:{problem.line}: {problem.message}", err=True)
    lines = len({p.line for p in problems})
    return fail(
        f"nothing imported: {len(problems)} problem(s) in {lines} of {rows} row(s)",
        IMPORT_REFUSED,
    )
