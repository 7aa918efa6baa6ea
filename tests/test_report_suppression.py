"""Small counts in published tables: a cell below the threshold is shown as ``<5``, and
complementary cells are withheld until no withheld cell can be worked out from the totals
the table publishes (a property over random tables, checked by linear algebra)."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from opcatflow.workflows.reporting.model import Table, build_table
from opcatflow.workflows.reporting.suppression import Cell, suppress


def _rank(rows: list[list[Fraction]]) -> int:
    m = [r[:] for r in rows]
    rank = 0
    width = len(m[0]) if m else 0
    for col in range(width):
        pivot = next((i for i in range(rank, len(m)) if m[i][col] != 0), None)
        if pivot is None:
            continue
        m[rank], m[pivot] = m[pivot], m[rank]
        for i in range(len(m)):
            if i != rank and m[i][col] != 0:
                factor = m[i][col] / m[rank][col]
                m[i] = [a - factor * b for a, b in zip(m[i], m[rank], strict=True)]
        rank += 1
    return rank


def recoverable(table: Table) -> list[Cell]:
    """The withheld cells the published totals determine: e_i in the row space of the
    equations (one per published line total, over the withheld cells of that line)."""
    s = table.suppression
    if s.withheld:
        return []
    hidden = sorted(s.hidden)
    if not hidden:
        return []
    n_rows, n_cols = len(table.rows), len(table.columns)
    lines: list[list[Cell]] = []
    if table.row_total(0) is not None and table.wide:
        lines += [
            [(r, c) for c in range(n_cols)] for r in range(n_rows) if table.row_total(r).isdigit()
        ]
    lines += [
        [(r, c) for r in range(n_rows)] for c in range(n_cols) if table.column_total(c).isdigit()
    ]
    if table.total().isdigit():
        lines.append([(r, c) for r in range(n_rows) for c in range(n_cols)])
    equations = [[Fraction(int(cell in line)) for cell in hidden] for line in lines]
    base = _rank(equations) if equations else 0
    found = []
    for i, cell in enumerate(hidden):
        unit = [Fraction(int(j == i)) for j in range(len(hidden))]
        if _rank([*equations, unit]) == base:
            found.append(cell)
    return found


def table_of(values: list[list[int]], threshold: int) -> Table:
    counts: Counter[tuple[tuple[str, ...], str]] = Counter()
    for r, row in enumerate(values):
        for c, n in enumerate(row):
            counts[((f"r{r}",), f"c{c}")] += n
    return build_table("t", "T", ("row",), counts, threshold=threshold)


grids = st.integers(1, 5).flatmap(
    lambda n_cols: st.lists(
        st.lists(st.integers(0, 14), min_size=n_cols, max_size=n_cols), min_size=1, max_size=5
    )
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(grids, st.integers(2, 6))
def test_no_withheld_cell_can_be_worked_out_from_the_totals(
    values: list[list[int]], threshold: int
) -> None:
    table = table_of(values, threshold)
    assert recoverable(table) == []
    for r in range(len(table.rows)):
        for c in range(len(table.columns)):
            count = table.cells.get((r, c), 0)
            shown = table.shown(r, c)
            if 0 < count < threshold:
                assert shown in (f"<{threshold}", "x")  # never the number itself
            elif shown.isdigit():
                assert int(shown) == count  # what is shown is the truth


def test_one_small_cell_takes_the_smallest_cell_of_its_row_and_column_with_it() -> None:
    table = table_of([[3, 8, 20], [9, 12, 30], [10, 11, 40]], 5)
    assert table.shown(0, 0) == "<5"
    hidden = table.suppression.hidden
    assert (0, 0) in hidden
    assert len(hidden) == 4  # a rectangle: the least that holds
    assert recoverable(table) == []
    assert table.total() == "143"


def test_a_lone_small_count_with_its_total_is_withheld_whole_or_shown_as_small() -> None:
    only = table_of([[3]], 5)
    assert (only.shown(0, 0), only.total()) == ("<5", "<5")
    pair = table_of([[3], [40]], 5)  # one column: the grand total alone is published
    assert pair.shown(0, 0) == "<5"
    assert pair.shown(1, 0) == "x"
    assert pair.total() == "43"


def test_the_graph_model_catches_a_bridge_between_two_closed_rectangles() -> None:
    # two 2x2 blocks of small cells share no line; every line has two withheld cells, and
    # nothing bridges them: none can be worked out.
    values = [[2, 3, 9, 9], [4, 1, 9, 9], [9, 9, 2, 3], [9, 9, 4, 1]]
    table = table_of(values, 5)
    assert recoverable(table) == []
    assert table.suppression.complementary == frozenset()


def test_suppress_works_on_sparse_cells() -> None:
    s = suppress({(0, 0): 2, (1, 1): 7}, (2, 2), threshold=5)
    assert (0, 0) in s.small
    assert len(s.hidden) >= 2  # the grand total less 7 would give it away
