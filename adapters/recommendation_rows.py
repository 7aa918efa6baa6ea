"""The rows of a recommendation backlog (``opcatflow import recommendations FILE``) as cases
to enter: one recommendation per row, started and fired to its state as the role ``import``
(docs/recommendations.md, "Importing a backlog", lists the columns).

This module only reads the rows: their columns, their shapes (a list, a boolean), and the
keys rows use to point at each other. Everything about the values (an enum, a date, a
register id, the rules of each transition) is checked by the engine when the cases are
entered (:mod:`opcatflow.engine.batch`), every failure with its row's line.
"""

from __future__ import annotations

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
ASSESSMENT = ("assessment_on", "assessment_status", "assessment_evidence", "assessment_by")
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
        if column not in COLUMNS:
            hint = did_you_mean(column, COLUMNS)
            found.append(f"unknown column {column!r}{hint}")
    key = row.values.get("key")
    if key is not None and str(key) in keys:
        found.append(f"key {key!r} is the key of line {keys[str(key)]} too")
    assessments = row.values.get("assessments")
    if assessments is not None:
        if row.text:
            found.append("assessments is a JSON column: in a CSV file use assessment_on, ...")
        elif not isinstance(assessments, list) or not all(isinstance(a, dict) for a in assessments):
            found.append("assessments: expected a list of objects (on, status, evidence...)")
        elif any(row.values.get(c) is not None for c in ASSESSMENT):
            found.append("give assessments or the assessment_* columns, not both")
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
    return str(value).strip()


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
    for n, entry in enumerate(_assessments(values)):
        data: dict[str, Any] = {"assessments": {"append": [entry]}}
        if n == 0 and "assessed_by" in values:
            data["assessed_by"] = values["assessed_by"]
        steps.append(Step("assess", data))
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
    earlier one by that number, or by the ``n`` an entry gives)."""
    if "assessments" in values:
        return [dict(a) for a in values["assessments"]]
    flat = {c.removeprefix("assessment_"): values[c] for c in ASSESSMENT if c in values}
    return [flat] if flat else []


__all__ = ["COLUMNS", "ROLE", "WORKFLOW", "plan_rows"]
