"""Rows of a CSV or JSON file, each with the line it starts on, so that every problem found
in a row (here or by whoever checks its values) can name its line.

- CSV (``.csv``): UTF-8 (a byte-order mark is ignored), comma-separated, a header row of
  column names, then one row per line (a quoted cell may span lines: the row is named by
  its first). Blank lines are skipped; an empty cell is no value. Values are text: the
  reader of the rows gives them their types.
- JSON (``.json``): one array of objects, one object per row; values keep their JSON types.
  A row is named by the line its object starts on.

Nothing is read lazily: the whole file is checked before anyone acts on a row.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BYTES = 32 * 1024 * 1024  # a register of thousands of rows is a few megabytes


@dataclass(frozen=True, slots=True)
class Row:
    """One row: the line it starts on, its values by column, and whether they are text
    still to be typed (CSV) or JSON values."""

    line: int
    values: dict[str, Any]
    text: bool


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class RowFileError(Exception):
    """The file cannot be read as rows; ``problems`` says where (a line each)."""

    def __init__(self, path: str, problems: list[RowProblem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("; ".join(f"{path}:{p.line}: {p.message}" for p in problems))


def read_rows(path: str | Path) -> list[Row]:
    """The rows of a ``.csv`` or ``.json`` file.

    Raises:
        RowFileError: the file cannot be read, is of another kind, or is malformed (every
            malformed row named by its line).
    """
    name = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise RowFileError(name, [RowProblem(1, "expected a .csv or .json file")])
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise RowFileError(name, [RowProblem(1, f"cannot read: {err.strerror or err}")]) from None
    if len(raw) > MAX_BYTES:
        raise RowFileError(name, [RowProblem(1, f"larger than {MAX_BYTES // 2**20} MiB")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise RowFileError(name, [RowProblem(line, "not UTF-8 text")]) from None
    return csv_rows(text, name) if suffix == ".csv" else json_rows(text, name)


def csv_rows(text: str, name: str = "<csv>") -> list[Row]:
    """The rows of CSV ``text`` (see the module's docstring)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[RowProblem] = []
    rows: list[Row] = []
    header: list[str] | None = None
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                dup = sorted({c for c in header if header.count(c) > 1})
                if dup or "" in header:
                    what = f"column {', '.join(dup)} twice" if dup else "a column without a name"
                    problems.append(RowProblem(line, f"the header names {what}"))
                continue
            if len(cells) != len(header):
                problems.append(
                    RowProblem(line, f"{len(cells)} cells, but the header names {len(header)}")
                )
                continue
            values = {col: cell for col, cell in zip(header, cells, strict=True) if cell.strip()}
            rows.append(Row(line, values, text=True))
    except csv.Error as err:
        problems.append(RowProblem(reader.line_num, f"malformed CSV: {err}"))
    if header is None and not problems:
        problems.append(RowProblem(1, "no header row (the column names)"))
    if problems:
        raise RowFileError(name, problems)
    return rows


def json_rows(text: str, name: str = "<json>") -> list[Row]:
    """The rows of JSON ``text``: an array of objects (see the module's docstring)."""
    decoder = json.JSONDecoder()

    def line_of(index: int) -> int:
        return text.count("\n", 0, index) + 1

    def fail(index: int, message: str) -> RowFileError:
        return RowFileError(name, [RowProblem(line_of(index), message)])

    i = _skip(text, 0)
    if i >= len(text) or text[i] != "[":
        raise fail(i, "expected a JSON array of objects, one per row")
    rows: list[Row] = []
    problems: list[RowProblem] = []
    i = _skip(text, i + 1)
    if i < len(text) and text[i] == "]":
        return _end(text, i, name, rows, fail)
    while True:
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as err:
            problem = RowProblem(err.lineno, f"malformed JSON: {err.msg}")
            raise RowFileError(name, [problem]) from None
        if isinstance(value, dict):
            rows.append(Row(line_of(i), value, text=False))
        else:
            problems.append(RowProblem(line_of(i), "a row must be a JSON object"))
        i = _skip(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip(text, i + 1)
            continue
        if i < len(text) and text[i] == "]":
            break
        raise fail(i, "malformed JSON: expected ',' or ']' after a row")
    if problems:
        raise RowFileError(name, problems)
    return _end(text, i, name, rows, fail)


def _end(text: str, i: int, name: str, rows: list[Row], fail: Any) -> list[Row]:
    rest = _skip(text, i + 1)
    if rest < len(text):
        raise fail(rest, "malformed JSON: text after the array")
    return rows


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i
