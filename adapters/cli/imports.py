"""``opcatflow import``: bulk loads from CSV or JSON files, all or nothing.

``import register KIND FILE`` adds entries to a register (place, authority, theme, person):
every row is checked first (the rules of a start, references, ids and titles given twice),
every problem is printed as ``FILE:LINE: message``, and nothing is added unless every row
is right (exit 11). Then all rows are added in one transaction. The columns are the
register's fields, plus ``id`` for a chosen entry id (docs/registers.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.errors import USAGE, fail, refuse_rows
from opcatflow.adapters.cli.import_recommendations import recommendations
from opcatflow.adapters.cli.options import Actor, Json, Reason, Role, settings
from opcatflow.adapters.rowfile import Row, RowFileError, RowProblem, read_rows
from opcatflow.engine.bulk import NewInstance
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldSpec, FieldType
from opcatflow.engine.errors import RowsRefused
from opcatflow.engine.suggest import did_you_mean

import_app = typer.Typer(
    help="Bulk loads from CSV or JSON files: every row checked first, all or nothing.",
    no_args_is_help=True,
)

ID_COLUMN = "id"
LIST_SEPARATOR = ";"
_INTEGER = re.compile(r"^[+-]?\d+$")
_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False}


def _cell(spec: FieldSpec, text: str) -> Any:
    """A CSV cell as the field's type reads it; what does not convert is passed on as text,
    for the engine's check to name the field and the type it expected."""
    text = text.strip()
    if spec.type is FieldType.RECORDS:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # refused by the records check: "expected a list"
    if spec.type is FieldType.LIST:
        assert spec.items is not None
        items = [i.strip() for i in text.split(LIST_SEPARATOR) if i.strip()]
        return [_scalar(spec.items, i) for i in items]
    return _scalar(spec.type, text)


def _scalar(kind: FieldType, text: str) -> Any:
    if kind is FieldType.INTEGER and _INTEGER.fullmatch(text):
        return int(text)
    if kind is FieldType.BOOLEAN and text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    return text


def _new_instance(wf: CompiledWorkflow, row: Row) -> NewInstance | RowProblem:
    fields = wf.definition.fields
    values = dict(row.values)
    entry_id = values.pop(ID_COLUMN, None)
    unknown = [c for c in values if c not in fields]
    if unknown:
        known = [ID_COLUMN, *fields]
        return RowProblem(
            row.line,
            "; ".join(f"unknown column {c!r}{did_you_mean(c, known)}" for c in unknown),
        )
    if entry_id is not None and not isinstance(entry_id, str):
        return RowProblem(row.line, f"{ID_COLUMN}: expected text, got {entry_id!r}")
    if row.text:
        values = {name: _cell(fields[name], text) for name, text in values.items()}
    return NewInstance(values, entry_id.strip() if entry_id else None, f"line {row.line}")


@import_app.command("register")
def register(
    ctx: typer.Context,
    *,
    kind: Annotated[
        str, typer.Argument(help="The register: place, authority, theme or person.", metavar="KIND")
    ],
    file: Annotated[Path, typer.Argument(help="A .csv or .json file of entries.", metavar="FILE")],
    actor: Actor,
    role: Role,
    reason: Reason = None,
    as_json: Json = False,
) -> None:
    """Add entries to a register from a CSV or JSON file: every row checked first (the
    rules of a start, references to other registers, ids and names given twice), every
    problem printed with its line, and nothing added unless all rows are right (exit 11)."""
    path = str(file)
    try:
        rows = read_rows(file)
    except RowFileError as err:
        raise refuse_rows(path, err.problems, 0) from None
    with settings(ctx).engine() as engine:
        registers = sorted(wf.id for wf in engine.catalog.latest() if wf.definition.as_register)
        if kind not in registers:
            raise fail(
                f"{kind!r} is not a register{did_you_mean(kind, registers)} (registers: "
                f"{', '.join(registers) or 'none'})",
                USAGE,
            )
        wf = engine.workflow(kind)
        batch: list[NewInstance] = []
        lines: list[int] = []
        problems: list[RowProblem] = []
        for row in rows:
            made = _new_instance(wf, row)
            if isinstance(made, RowProblem):
                problems.append(made)
            else:
                batch.append(made)
                lines.append(row.line)
        try:
            started = engine.start_many(kind, batch, actor=actor, role=role, reason=reason)
        except RowsRefused as err:
            problems += [RowProblem(lines[i], message) for i, message in err.problems]
            started = []
        if problems:
            problems.sort(key=lambda p: p.line)
            raise refuse_rows(path, problems, len(rows))
    if as_json:
        out.print_json({"register": kind, "imported": [i.id for i in started]})
    else:
        out.echo(f"imported {len(started)} {kind} entries from {path}")


# The recommendation backlog: rows that are cases, each fired to its state (issue 24).
import_app.command("recommendations")(recommendations)
