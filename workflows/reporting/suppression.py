"""Small counts: a cell below the threshold is shown as ``<5``, and more cells are withheld
(complementary suppression) until no withheld cell can be worked out from the published
totals by arithmetic.

The model: a table's published totals are constraints (a row's cells add up to its total).
Draw a graph whose nodes are the rows and columns whose totals are published, plus one node
for the other rows together and one for the other columns together (their sum is the grand
total less the published ones; a total below the threshold is withheld too), and whose edges
are the withheld cells. The totals determine a withheld cell exactly
when its edge is a bridge of that graph (on no cycle): a cycle lets its cells shift by
+1/-1 alternately and keep every total. So cells are added, smallest first, until no edge is
a bridge; when no cell can close a cycle the whole table is withheld.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

Cell = tuple[int, int]  # (row index, column index)
Z = ("Z",)


@dataclass(frozen=True)
class Suppression:
    """What a table may show: ``small`` cells (below the threshold, shown ``<N``),
    ``complementary`` cells (withheld so that no small one can be worked out), totals below
    the threshold, or the whole table ``withheld``."""

    threshold: int
    small: frozenset[Cell]
    complementary: frozenset[Cell]
    small_row_totals: frozenset[int]
    small_column_totals: frozenset[int]
    small_grand_total: bool
    withheld: bool = False

    @property
    def hidden(self) -> frozenset[Cell]:
        return self.small | self.complementary


def _node(kind: str, index: int, published: bool, grand_published: bool) -> Hashable:
    if published:
        return (kind, index)
    # Lines without a published total still add up to the grand total less the published
    # ones: together they are one line (one node per side); free if the grand total is not.
    return (kind, "rest") if grand_published else Z


class _Graph:
    def __init__(self, row_nodes: Sequence[Hashable], column_nodes: Sequence[Hashable]) -> None:
        self.rows = row_nodes
        self.columns = column_nodes

    def ends(self, cell: Cell) -> tuple[Hashable, Hashable]:
        return self.rows[cell[0]], self.columns[cell[1]]

    def side(self, edges: set[Cell], start: Hashable) -> set[Hashable]:
        adjacent: dict[Hashable, list[Hashable]] = {}
        for cell in edges:
            a, b = self.ends(cell)
            adjacent.setdefault(a, []).append(b)
            adjacent.setdefault(b, []).append(a)
        seen = {start}
        todo = [start]
        while todo:
            for other in adjacent.get(todo.pop(), ()):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return seen

    def bridge(self, edges: set[Cell]) -> Cell | None:
        """The first withheld cell (in cell order) that is a bridge: Tarjan's low-link over
        the multigraph (parallel edges are cycles), one pass, iteratively."""
        order = sorted(edges)
        adjacent: dict[Hashable, list[tuple[Hashable, int]]] = {}
        for i, cell in enumerate(order):
            a, b = self.ends(cell)
            if a == b:  # both lines unpublished: the cell is free, never determined
                continue
            adjacent.setdefault(a, []).append((b, i))
            adjacent.setdefault(b, []).append((a, i))
        found: list[int] = []
        entered: dict[Hashable, int] = {}
        low: dict[Hashable, int] = {}
        for root in adjacent:
            if root in entered:
                continue
            entered[root] = low[root] = len(entered)
            stack: list[tuple[Hashable, int, int]] = [(root, -1, 0)]  # node, via edge, next
            while stack:
                node, via, nxt = stack[-1]
                neighbours = adjacent[node]
                if nxt < len(neighbours):
                    stack[-1] = (node, via, nxt + 1)
                    other, edge = neighbours[nxt]
                    if edge == via:
                        continue
                    if other in entered:
                        low[node] = min(low[node], entered[other])
                    else:
                        entered[other] = low[other] = len(entered)
                        stack.append((other, edge, 0))
                    continue
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[node])
                    if low[node] > entered[parent]:
                        found.append(via)
        return order[min(found)] if found else None


def suppress(
    cells: Mapping[Cell, int],
    shape: tuple[int, int],
    *,
    threshold: int,
    row_totals: bool = True,
    column_totals: bool = True,
) -> Suppression:
    """Decide what ``cells`` (every cell of a ``shape`` rows x columns table; absent cells
    are 0) may show when the totals of rows (``row_totals``), of columns and the grand total
    are published beside them."""
    n_rows, n_columns = shape
    value = {(r, c): cells.get((r, c), 0) for r in range(n_rows) for c in range(n_columns)}

    def is_small(count: int) -> bool:
        return 0 < count < threshold

    row_sum = [sum(value[r, c] for c in range(n_columns)) for r in range(n_rows)]
    column_sum = [sum(value[r, c] for r in range(n_rows)) for c in range(n_columns)]
    small_rows = frozenset(r for r in range(n_rows) if row_totals and is_small(row_sum[r]))
    small_columns = frozenset(
        c for c in range(n_columns) if column_totals and is_small(column_sum[c])
    )
    grand_published = not is_small(sum(value.values()))
    graph = _Graph(
        [
            _node("row", r, row_totals and r not in small_rows, grand_published)
            for r in range(n_rows)
        ],
        [
            _node("column", c, column_totals and c not in small_columns, grand_published)
            for c in range(n_columns)
        ],
    )
    small = frozenset(cell for cell, count in value.items() if is_small(count))
    hidden = set(small)
    withheld = False
    while (bridge := graph.bridge(hidden)) is not None:
        a, b = graph.ends(bridge)
        rest = hidden - {bridge}
        side_a = graph.side(rest, a)
        candidates = [cell for cell in value if cell not in hidden]
        closing = [
            cell
            for cell in candidates
            if (graph.ends(cell)[0] in side_a) != (graph.ends(cell)[1] in side_a)
        ]
        touching = [cell for cell in candidates if set(graph.ends(cell)) & {a, b}]
        pool = closing or touching
        if not pool:
            withheld = True
            break
        hidden.add(min(pool, key=lambda cell: (value[cell], cell)))
    grand = sum(value.values())
    return Suppression(
        threshold,
        small,
        frozenset(hidden - small),
        small_rows,
        small_columns,
        is_small(grand),
        withheld,
    )
