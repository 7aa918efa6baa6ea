"""The located row reader of imports (adapters/rowfile.py): every row with its line, every
problem with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from opcatflow.adapters.rowfile import RowFileError, csv_rows, json_rows, read_rows


def lines(err: pytest.ExceptionInfo[RowFileError]) -> list[str]:
    return [str(p) for p in err.value.problems]


def test_csv_rows_carry_the_line_they_start_on() -> None:
    text = 'id,name,note\n\np-1,North,"two\nlines"\np-2,South,\n'
    rows = csv_rows(text)
    assert [(r.line, r.values) for r in rows] == [
        (3, {"id": "p-1", "name": "North", "note": "two\nlines"}),
        (5, {"id": "p-2", "name": "South"}),  # an empty cell is no value
    ]
    assert all(r.text for r in rows)


def test_csv_problems_name_their_lines() -> None:
    with pytest.raises(RowFileError) as err:
        csv_rows("id,name\np-1,North\np-2\np-3,South,extra\n")
    assert lines(err) == [
        "line 3: 1 cells, but the header names 2",
        "line 4: 3 cells, but the header names 2",
    ]
    with pytest.raises(RowFileError) as err:
        csv_rows("id,name,id\n")
    assert lines(err) == ["line 1: the header names column id twice"]
    with pytest.raises(RowFileError) as err:
        csv_rows("\n\n")
    assert lines(err) == ["line 1: no header row (the column names)"]


def test_json_rows_carry_the_line_their_object_starts_on() -> None:
    text = '[\n  {"id": "p-1", "capacity": 40},\n\n  {"id": "p-2",\n   "name": "S"}\n]\n'
    rows = json_rows(text)
    assert [(r.line, r.values) for r in rows] == [
        (2, {"id": "p-1", "capacity": 40}),
        (4, {"id": "p-2", "name": "S"}),
    ]
    assert json_rows("[]") == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"id": 1}', "line 1: expected a JSON array of objects, one per row"),
        ('[\n {"id": 1},\n 7\n]', "line 3: a row must be a JSON object"),
        ('[\n {"id": 1}\n {"id": 2}\n]', "line 3: malformed JSON: expected ',' or ']' after a row"),
        ('[\n {"id": 1,\n  "name": }\n]', "line 3: malformed JSON: Expecting value"),
        ("[] []", "line 1: malformed JSON: text after the array"),
    ],
)
def test_json_problems_name_their_lines(text: str, problem: str) -> None:
    with pytest.raises(RowFileError) as err:
        json_rows(text)
    assert lines(err) == [problem]


def test_read_rows_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_bytes("\ufeffid,name\np-1,Nórth\n".encode())
    assert read_rows(tmp_path / "p.csv")[0].values == {"id": "p-1", "name": "Nórth"}
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(RowFileError, match=r"expected a \.csv or \.json file"):
        read_rows(tmp_path / "p.txt")
    (tmp_path / "bad.csv").write_bytes(b"id\nok\n\xff\n")
    with pytest.raises(RowFileError, match=r"bad.csv:3: not UTF-8 text"):
        read_rows(tmp_path / "bad.csv")
    with pytest.raises(RowFileError, match="cannot read"):
        read_rows(tmp_path / "missing.json")
