"""The rows of a recommendation backlog (``opcatflow import recommendations FILE``) as cases
to enter: one recommendation per row, started and fired to its state as the role ``import``
(docs/recommendations.md, "Importing a backlog", lists the columns).

This module only reads the rows: their columns, their shapes (a list, a boolean), and the
keys rows use to point at each other. Everything about the values (an enum, a date, a
register id, the rules of each transition) is checked by the engine when the cases are
entered (:mod:`opcatflow.engine.batch`), every failure with its row's line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from opcatflow.adapters.rowfile import Row, RowProblem
from opcatflow.engine.batch import CaseRef, PlannedCase, Step
from opcatflow.engine.suggest import did_you_mean

WORKFLOW = "recommendation"
ROLE = "import"

START = (
    "source", "source_body", "document_symbol", "paragraph", "addressee", "text", "places",
    "themes", "priority", "urgent", "reference",
)  # fmt: skip
# An assessment's columns: assessment 1 as assessment_on... (or assessment_1_on...), the
# later ones numbered in the order they were made: assessment_2_on, assessment_3_on...
PARTS = ("on", "status", "evidence", "by", "follows")
ASSESSMENT = tuple(f"assessment_{part}" for part in PARTS)
_GROUP = re.compile(r"assessment_(?:(\d+)_)?(.*)", re.DOTALL)
# what people write for a part (a did-you-mean no spelling distance finds)
_PART_ALIASES = {
    "date": "on", "day": "on", "when": "on", "assessed_on": "on", "state": "status",
    "notes": "evidence", "note": "evidence", "assessor": "by", "who": "by", "follow": "follows",
}  # fmt: skip
LATER = (
    "sent_on", "reply", "reply_received_on", "position", "position_on", "assessed_by",
    "repeats", "closed_on", "closing_reason",
)  # fmt: skip
COLUMNS = ("key", *START, *LATER, *ASSESSMENT, "assessments")
LISTS = frozenset({"places", "themes", "assessed_by"})
SEPARATOR = ";"  # between the items of a list in a CSV cell


def plan_rows(rows: Iterable[Row]) -> tuple[list[PlannedCase], list[RowProblem]]:
    """The case each row describes, or the problems of the rows that describe none (every
    one, by line)."""
    cases: list[PlannedCase] = []
    problems: list[RowProblem] = []
    keys: dict[str, int] = {}
    for row in rows:
        found = _problems(row, keys)
        if found:
            problems += [RowProblem(row.line, p) for p in found]
            continue
        values = {k: _typed(k, v, row.text) for k, v in row.values.items()}
        cases.append(_case(row.line, values, keys))
        key = values.get("key")
        if key is not None:
            keys[str(key)] = row.line
    return cases, problems


def _problems(row: Row, keys: Mapping[str, int]) -> list[str]:
    found = []
    for column in row.values:
        if column not in COLUMNS and _GROUP.fullmatch(column) is None:
            hint = did_you_mean(column, _candidates(column))
            found.append(f"unknown column {column!r}{hint}")
    found += _group_problems(row.values)
    key = row.values.get("key")
    if key is not None and str(key) in keys:
        found.append(f"key {key!r} is the key of line {keys[str(key)]} too")
    assessments = row.values.get("assessments")
    if assessments is not None:
        if row.text:
            found.append(
                "assessments is a JSON column: in a CSV file use assessment_on, "
                "assessment_status... and assessment_2_on, assessment_2_status... for the next"
            )
        elif not isinstance(assessments, list) or not all(isinstance(a, dict) for a in assessments):
            found.append("assessments: expected a list of objects (on, status, evidence...)")
        elif _groups(row.values):
            found.append(
                "give assessments or the assessment_* columns (assessment_2_*...), not both"
            )
    if row.values.get("closed_on") is not None and row.values.get("closing_reason") is None:
        found.append("closed_on without closing_reason: say why the head closed it")
    return found


def _typed(column: str, value: Any, text: bool) -> Any:
    if not text:
        return value
    if column in LISTS:
        return [item.strip() for item in str(value).split(SEPARATOR) if item.strip()]
    if column == "urgent":
        return {"true": True, "false": False}.get(str(value).strip().lower(), value)
    cell = str(value).strip()
    group = _group_column(column)
    if group is not None and group[1] == "follows" and cell.isdecimal():
        return int(cell)  # an assessment's number (anything else: the engine says what it expects)
    return cell


def _case(line: int, values: dict[str, Any], keys: Mapping[str, int]) -> PlannedCase:
    start = {c: values[c] for c in START if c in values}
    steps: list[Step] = []
    if "sent_on" in values:
        steps.append(Step("send", {"sent_on": values["sent_on"]}))
    if "reply" in values or "reply_received_on" in values:
        reply = {c: values[c] for c in ("reply", "reply_received_on") if c in values}
        steps.append(Step("record_reply", reply))
    if "position" in values or "position_on" in values:
        position = {c: values[c] for c in ("position", "position_on") if c in values}
        steps.append(Step("record_position", position))
    assessments = _assessments(values)
    for n, entry in enumerate(assessments):
        data: dict[str, Any] = {"assessments": {"append": [entry]}}
        if n == 0 and "assessed_by" in values:
            data["assessed_by"] = values["assessed_by"]
        # which of the row's assessments a refusal is about (each step appends one)
        label = f"assessment {n + 1}" if len(assessments) > 1 else None
        steps.append(Step("assess", data, label))
    if "repeats" in values:
        earlier = str(values["repeats"])
        repeats = CaseRef(earlier) if earlier in keys else earlier
        steps.append(Step("link_repeat", {"repeats": repeats}))
    if "closing_reason" in values:
        closing = {c: values[c] for c in ("closing_reason", "closed_on") if c in values}
        steps.append(Step("close", closing))
    key = values.get("key")
    return PlannedCase(line, WORKFLOW, start, tuple(steps), None if key is None else str(key))


def _assessments(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The row's assessments in the order given, which numbers them (``follows`` names an
    earlier one by that number, or by the ``n`` an entry gives): the ``assessments`` list,
    or the column groups in the order of their numbers."""
    if "assessments" in values:
        return [dict(a) for a in values["assessments"]]
    groups = _groups(values)
    return [{part: values[c] for part, c in groups[n].items()} for n in sorted(groups)]


def _group_column(column: str) -> tuple[int, str] | None:
    """The assessment (its number) and the part an ``assessment_*`` column gives, or None
    for any other column or a number that is not 1, 2, 3... (to 9999) as written."""
    match = _GROUP.fullmatch(column)
    if match is None:
        return None
    digits, part = match.groups()
    if digits is not None and (digits[0] == "0" or len(digits) > 4 or not digits.isascii()):
        return None
    return (1 if digits is None else int(digits)), part


def _groups(values: Mapping[str, Any]) -> dict[int, dict[str, str]]:
    """The columns of each assessment the row fills (a JSON null fills none), by number,
    then by part: only the known parts."""
    groups: dict[int, dict[str, str]] = {}
    for column, value in values.items():
        group = _group_column(column)
        if group is not None and group[1] in PARTS and value is not None:
            groups.setdefault(group[0], {})[group[1]] = column
    return groups


def _group_problems(values: Mapping[str, Any]) -> list[str]:
    """What is wrong with the shape of the row's assessment columns: a number or a part that
    does not exist, assessment 1 written both ways, a gap in the numbers. Their values are
    the engine's to check."""
    found = []
    forms: dict[bool, str] = {}  # assessment 1's first filled column, by whether numbered
    for column, value in values.items():
        match = _GROUP.fullmatch(column)
        group = _group_column(column)
        if match is None:
            continue
        if group is None:
            found.append(
                f"column {column!r}: assessments are numbered 1, 2, 3... (assessment_2_on, "
                "assessment_2_status...), without leading zeros, up to 9999"
            )
        elif group[1] not in PARTS:
            prefix = column.removesuffix(group[1])
            names = ", ".join(prefix + p for p in PARTS[:-1]) + f" and {prefix}{PARTS[-1]}"
            close = _PART_ALIASES.get(group[1].lower()) or next(
                iter(difflib.get_close_matches(group[1], PARTS, n=1, cutoff=0.6)), None
            )
            hint = f" (did you mean {prefix + close!r}?)" if close else ""
            found.append(f"unknown column {column!r}{hint}: an assessment's columns are {names}")
        elif group[0] == 1 and value is not None:
            forms.setdefault(match.group(1) is not None, column)
    if len(forms) == 2:
        found.append(
            f"assessment 1 given twice: {forms[False]} and {forms[True]} (assessment_* and "
            "assessment_1_* are the same assessment: use one)"
        )
    numbers = _groups(values)
    # the first gaps (at most as many as the row has groups, however high a number is)
    top = max(numbers, default=0)
    missing = [n for n in range(1, min(top, len(numbers) + 2)) if n not in numbers]
    if missing:
        names = ", ".join(_group_name(n) for n in missing)
        found.append(
            f"{_group_name(top)} given without {names}: number the assessments "
            "1, 2, 3... in the order they were made, without gaps"
        )
    return found


def _group_name(n: int) -> str:
    return "assessment_* (assessment 1)" if n == 1 else f"assessment_{n}_*"


def _candidates(column: str) -> list[str]:
    """The columns an unknown one may have meant: every column, and the numbered ones of
    the number it holds (``assesment_2_on``: ``assessment_2_on``)."""
    numbered = [f"assessment_{n}_{p}" for n in re.findall(r"\d+", column)[:1] for p in PARTS]
    return [*COLUMNS, *numbered]


__all__ = ["COLUMNS", "ROLE", "WORKFLOW", "plan_rows"]
