"""Guard expressions: Jinja2's sandboxed ``compile_expression`` over the instance data,
bounded by :data:`~opcatflow.engine.sandbox.EXPRESSION_LIMITS`.

Nothing from a definition reaches eval/exec. Names in an expression are the data fields plus
``actor``, ``role``, ``trigger`` and ``now``. Every evaluation runs under a fresh budget (time,
iterations, size of any one value): past one, it raises
:class:`~opcatflow.engine.sandbox.BudgetExceeded`, which callers turn into a refusal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateSyntaxError

from opcatflow.engine.sandbox import (
    EXPRESSION_LIMITS,
    BoundedSandbox,
    BudgetExceeded,
    budget,
    shared_budget,
)

CONTEXT_NAMES = frozenset({"actor", "role", "trigger", "now"})

_env = BoundedSandbox(autoescape=False)


class ExpressionError(ValueError):
    """An expression does not compile; the message says why."""


def _parse(source: str) -> nodes.Expr:
    try:
        with budget(EXPRESSION_LIMITS):  # constant folding stays within the budget too
            tree = _env.parse("{{ (" + source + ") }}")
    except TemplateSyntaxError as err:
        raise ExpressionError(f"expression {source!r} does not compile: {err.message}") from err
    except (ValueError, RecursionError, MemoryError) as err:  # a 5,000-digit literal, say
        raise ExpressionError(f"expression {source!r} does not compile: {err}") from err
    output = tree.body[0]
    assert isinstance(output, nodes.Output)
    expr = output.nodes[0]
    assert isinstance(expr, nodes.Expr)
    return expr


def _names(node: nodes.Node) -> set[str]:
    """The names ``node`` reads, itself included (``find_all`` looks only below it)."""
    found = [node] if isinstance(node, nodes.Name) else []
    return {n.name for n in (*found, *node.find_all(nodes.Name)) if n.ctx == "load"}


def referenced_names(source: str) -> set[str]:
    """Names an expression reads (``data.x`` counts as ``data``)."""
    return _names(_parse(source))


class Expression:
    """A compiled expression; call it with the names as keyword arguments.

    Each call runs under a fresh budget unless one is already running (a transition opening
    one child per list item evaluates all of them under one).
    """

    def __init__(
        self, source: str, compiled: TemplateExpression, timer: Callable[[], float]
    ) -> None:
        self.source = source
        self._compiled = compiled
        self._timer = timer

    def __call__(self, **names: Any) -> Any:
        with shared_budget(EXPRESSION_LIMITS, self._timer):
            return self._compiled(**names)

    def __repr__(self) -> str:
        return f"<Expression {self.source!r}>"


def compile_guard(source: str, timer: Callable[[], float] = time.monotonic) -> Expression:
    """Compile an expression.

    Args:
        timer: the clock the time budget is measured on (tests pass a fake one).

    Raises:
        ExpressionError: when the expression does not compile.
    """
    _parse(source)  # parse errors with the clearer message first
    try:
        with budget(EXPRESSION_LIMITS):
            compiled = _env.compile_expression(source, undefined_to_none=True)
    except TemplateSyntaxError as err:
        raise ExpressionError(f"expression {source!r} does not compile: {err.message}") from err
    return Expression(source, compiled, timer)


def _constant_parts(node: nodes.Node, variables: frozenset[str]) -> Iterator[nodes.Expr]:
    """The largest sub-expressions that read no variable: their value is known at load."""
    names = _names(node)
    constant = not names & variables and names <= set(_env.globals)
    if constant and isinstance(node, nodes.Expr) and not isinstance(node, nodes.Const | nodes.Name):
        yield node
        return
    for child in node.iter_child_nodes():
        yield from _constant_parts(child, variables)


def budget_problem(source: str, variables: frozenset[str] = frozenset()) -> str | None:
    """Why ``source`` can never be evaluated within the budget, found at load by evaluating
    each of its constant parts (``10 ** 10000000``, ``range(100000) | list``) under the
    budget; ``None`` when no constant part goes over. ``variables`` are the names the data
    provides (a field may shadow a global such as ``range``).

    Raises:
        ExpressionError: when the expression does not compile.
    """
    shadowing = variables | CONTEXT_NAMES | {"data", "item"}
    for part in _constant_parts(_parse(source), shadowing):
        body = [nodes.Assign(nodes.Name("result", "store"), part, lineno=1)]
        try:
            with budget(EXPRESSION_LIMITS):
                template = _env.from_string(nodes.Template(body, lineno=1))
                TemplateExpression(template, undefined_to_none=True)()
        except BudgetExceeded as err:
            return f"expression {source!r} can never be evaluated: {err}"
        except Exception:
            continue
    return None
