"""Guard expressions: Jinja2's sandboxed ``compile_expression`` over the instance data.

Nothing from a definition reaches eval/exec. Names in an expression are the data fields plus
``actor``, ``role``, ``trigger`` and ``now``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

CONTEXT_NAMES = frozenset({"actor", "role", "trigger", "now"})

_env = ImmutableSandboxedEnvironment(autoescape=False)


class ExpressionError(ValueError):
    """An expression does not compile; the message says why."""


def referenced_names(source: str) -> set[str]:
    """Names an expression reads (``data.x`` counts as ``data``)."""
    try:
        tree = _env.parse("{{ (" + source + ") }}")
    except TemplateSyntaxError as err:
        raise ExpressionError(f"expression {source!r} does not compile: {err.message}") from err
    return {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}


def compile_guard(source: str) -> Callable[..., Any]:
    """Compile an expression; call the result with the names as keyword arguments.

    Raises:
        ExpressionError: when the expression does not compile.
    """
    referenced_names(source)  # parse errors with the clearer message first
    try:
        return _env.compile_expression(source, undefined_to_none=True)
    except TemplateSyntaxError as err:
        raise ExpressionError(f"expression {source!r} does not compile: {err.message}") from err
