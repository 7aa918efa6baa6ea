"""Checking a batch of new instances (an import) row by row, before any is stored.

Each row gets the checks of a start (the schema, required fields, the start write set, the
field rules, statutory minimums) and, read in the batch's own transaction, the checks that
need the store: its chosen id is free, and every register entry it names is active, or is
added by another row of the same batch. Every problem of every row is collected: the batch
is stored whole or not at all (:meth:`opcatflow.engine.runtime.Engine.start_many`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.errors import LimitExceeded
from opcatflow.engine.refs import ENTRY_ID, RETIRED, added_refs, entry_problem
from opcatflow.engine.registry import Lookup
from opcatflow.engine.writes import start_data, start_refusal


@dataclass(frozen=True, slots=True)
class NewInstance:
    """One row of a batch: its data, and for a register entry, the id it is known by."""

    data: Mapping[str, Any]
    instance_id: str | None = None
    where: str = ""  # how problems of other rows name it ("line 12"); default "row N"


@dataclass(frozen=True, slots=True)
class CheckedRow:
    index: int
    instance_id: str | None
    data: dict[str, Any]


def check_rows(
    wf: CompiledWorkflow,
    rows: Sequence[NewInstance],
    role: str,
    minimums: Callable[[dict[str, Any]], list[str]],
) -> tuple[list[CheckedRow], list[tuple[int, str]]]:
    """The rows' checked data, and every problem found without the store (by row index):
    the start checks, and chosen ids that are malformed or given twice."""
    checked: list[CheckedRow] = []
    problems: list[tuple[int, str]] = []
    ids: dict[str, str] = {}  # id -> the row that first gave it
    titles: dict[str, str] = {}  # a register's titles, spelled alike -> the row
    spec = wf.definition.as_register
    for index, row in enumerate(rows):
        where = row.where or f"row {index + 1}"
        found: list[str] = []
        entry_id = row.instance_id
        if entry_id is not None:
            if ENTRY_ID.fullmatch(entry_id) is None:
                found.append(
                    f"id {entry_id!r} is not an entry id (lowercase letters, digits, '_', "
                    "'.', '-'; at most 64)"
                )
            elif entry_id in ids:
                found.append(f"id {entry_id!r} is given twice (also {ids[entry_id]})")
            else:
                ids[entry_id] = where
        try:
            clean, errors = start_data(wf, row.data)
        except LimitExceeded as err:
            problems.append((index, str(err)))
            continue
        title = clean.get(spec.title_field) if spec is not None else None
        if isinstance(title, str):
            # one place spelt twice is the duplicate a register is there to prevent
            alike = " ".join(title.split()).casefold()
            if alike in titles:
                found.append(f"{title!r} is given twice (also {titles[alike]})")
            else:
                titles[alike] = where
        found.extend(errors or minimums(clean))
        barred = None if errors else start_refusal(wf, role, clean)
        if barred is not None:
            found.append(barred)
        problems.extend((index, message) for message in found)
        if not found:
            checked.append(CheckedRow(index, entry_id, clean))
    return checked, problems


def store_problems(
    wf: CompiledWorkflow,
    rows: Sequence[CheckedRow],
    lookup: Lookup,
    retired_words: Mapping[str, str],
) -> list[tuple[int, str]]:
    """What the store says against the rows: a chosen id taken, a reference to an entry
    that is missing, retired or merged (an id added by another row of a register's batch
    counts as an active entry)."""
    problems: list[tuple[int, str]] = []
    batch_ids = {row.instance_id for row in rows if row.instance_id is not None}
    for row in rows:
        if row.instance_id is not None and lookup(row.instance_id) is not None:
            problems.append((row.index, f"{wf.id} {row.instance_id!r} exists already"))
        for ref, entry_id in added_refs(wf.refs, {}, row.data):
            if ref.register == wf.id and entry_id in batch_ids:
                continue
            word = retired_words.get(ref.register, RETIRED)
            problem = entry_problem(ref.register, entry_id, lookup(entry_id), word)
            if problem is not None:
                problems.append((row.index, f"{ref.label}: {problem}"))
    return problems
