"""A Jinja2 sandbox whose evaluations are bounded in time, iterations and size.

Definitions (guard and deadline expressions, ``opens`` data) and notification templates are
written by operators, so they are untrusted code. Jinja2's sandbox refuses access to private
and internal attributes (the known escapes go through those); this module adds what the
sandbox leaves open: an expression or template that loops for hours, or builds a gigabyte
string (or a ten-million-digit number) in a few operations.

Every operation that can repeat or grow a value goes through a check of the current
:class:`Budget`: loop iterations (the code generator wraps each ``for``), attribute and item
access, calls, filters, intercepted operators (``+``, ``*``, ``**``, ``%``), concatenation
(``~``) and output, including output buffered by ``set`` blocks, macros and filter blocks.
Operations that could build a huge value in one C call (``'a' * n``, ``n ** m``,
``'x'.ljust(n)``, format widths, ``join``, ``replace``, ``indent``, ``wordwrap``) are checked
before they run, from the size of their result; every value produced is checked after.
Intercepted operators are never folded at compile time, so loading a definition cannot
compute ``10 ** 10000000`` either.

The engine evaluates expressions under :data:`EXPRESSION_LIMITS`; notifications render
templates under their own :class:`Limits` (see :mod:`opcatflow.engine.limits`).
"""

from __future__ import annotations

import functools
import math
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from opcatflow.engine import limits as lim

BudgetName = Literal["time", "iteration", "size"]


class BudgetExceeded(SecurityError):
    """An evaluation went past its time, iteration or size budget (``budget`` says which),
    or tried to build a value larger than the size budget."""

    def __init__(self, budget: BudgetName, detail: str) -> None:
        self.budget = budget
        self.detail = detail
        super().__init__(f"{budget} budget exceeded: {detail}")


@dataclass(frozen=True)
class Limits:
    """How far one evaluation (an expression, or one render of a message) may go.

    Attributes:
        seconds: wall time.
        size: characters, items or decimal digits of any one value built on the way, and
            characters of output (templates).
        iterations: loop iterations, all loops together.
    """

    seconds: float = lim.TEMPLATE_SECONDS
    size: int = lim.TEMPLATE_OUTPUT
    iterations: int = lim.TEMPLATE_ITERATIONS


EXPRESSION_LIMITS = Limits(
    seconds=lim.EXPRESSION_SECONDS,
    size=lim.EXPRESSION_VALUE,
    iterations=lim.EXPRESSION_ITERATIONS,
)


class Budget:
    """What one evaluation has used so far; checked by every guarded operation."""

    __slots__ = ("deadline", "iterations", "limits", "output", "timer")

    def __init__(self, limits: Limits, timer: Callable[[], float]) -> None:
        self.limits = limits
        self.timer = timer
        self.deadline = timer() + limits.seconds
        self.iterations = 0
        self.output = 0

    def tick(self) -> None:
        if self.timer() > self.deadline:
            raise BudgetExceeded(
                "time", f"took longer than {self.limits.seconds:g} s and was stopped"
            )

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.iterations:
            raise BudgetExceeded(
                "iteration", f"ran more than {self.limits.iterations:,} loop iterations"
            )
        self.tick()

    def emit(self, size: int) -> None:
        self.output += size
        if self.output > self.limits.size:
            raise BudgetExceeded("size", f"produced more than {self.limits.size:,} characters")
        self.tick()

    def value(self, size: int) -> None:
        if size > self.limits.size:
            raise BudgetExceeded(
                "size",
                f"built a value of {size:,} characters, items or digits "
                f"(at most {self.limits.size:,})",
            )


_LOG10_2 = math.log10(2)
_budget: ContextVar[Budget | None] = ContextVar("opcatflow_sandbox_budget", default=None)


def current() -> Budget:
    """The budget of the evaluation under way; outside one (the compiler folding constants),
    the expressions' budget, fresh."""
    found = _budget.get()
    return found if found is not None else Budget(EXPRESSION_LIMITS, time.monotonic)


@contextmanager
def budget(limits: Limits, timer: Callable[[], float] = time.monotonic) -> Iterator[Budget]:
    """Run the evaluations in this block under one fresh budget."""
    token = _budget.set(Budget(limits, timer))
    try:
        yield current()
    finally:
        _budget.reset(token)


@contextmanager
def shared_budget(limits: Limits, timer: Callable[[], float] = time.monotonic) -> Iterator[Budget]:
    """The budget already running, if any (evaluations grouped under one); else a fresh one."""
    running = _budget.get()
    if running is not None:
        yield running
        return
    with budget(limits, timer) as fresh:
        yield fresh


def _length(value: Any) -> int:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        return len(value)
    return 0


def _digits(value: int) -> int:
    """Decimal digits of an integer, from its bit length (no conversion to text)."""
    return int(abs(value).bit_length() * _LOG10_2) + 1


def _size(value: Any) -> int:
    if isinstance(value, int):
        return _digits(value)
    return _length(value)


def _power_digits(base: Any, exponent: Any) -> int:
    """Decimal digits of ``base ** exponent`` for integers, estimated before computing it."""
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0:
        return 0
    if abs(base) < 2:
        return 1
    return int(exponent * math.log10(abs(base))) + 1


def checked(value: Any) -> Any:
    current().value(_size(value))
    return value


class BoundedBuffer(list[str]):
    """The list a buffered block (``set``, macro, filter block) writes its output to."""

    def append(self, item: str) -> None:
        current().emit(len(item))
        super().append(item)

    def extend(self, items: Iterable[str]) -> None:
        for item in items:
            self.append(item)


# Methods of str a template may call: none of them can build more than its width argument
# (checked) or its input. replace, join, expandtabs, encode and translate are left out:
# the filters of the same names are bounded instead.
_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "center",
        "count",
        "endswith",
        "find",
        "format",
        "format_map",
        "index",
        "isalnum",
        "isalpha",
        "isdecimal",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "istitle",
        "isupper",
        "ljust",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rjust",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
        "zfill",
        "escape",
        "striptags",
        "unescape",
    }
)
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_ints(args: Iterable[Any], limit: int) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > limit:
            raise BudgetExceeded(
                "size", f"passed the number {arg:,} where at most {limit:,} is allowed"
            )


def _check_brace_format(fmt: str, limit: int) -> None:
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is None or not spec:
            continue
        if "{" in spec:
            raise BudgetExceeded("size", "nested format fields are not allowed")
        _check_ints((int(n) for n in re.findall(r"\d+", spec)), limit)


def _check_percent_format(fmt: str, limit: int) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for width in match.groups():
            if width == "*":
                raise BudgetExceeded("size", "'*' widths are not allowed")
            if width is not None:
                _check_ints((int(width),), limit)


def _precheck_filter(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse, before they run, the filters that could build an oversized value."""
    budget = current()
    limit = budget.limits.size
    _check_ints((*args[1:], *kwargs.values()), limit)
    if not args:
        return args
    value = args[0]
    if name == "join":
        items = []
        for item in value:
            budget.iterate()
            items.append(item)
        sep = args[1] if len(args) > 1 else kwargs.get("d", "")
        total = sum(len(str(item)) for item in items) + len(str(sep)) * max(len(items) - 1, 0)
        budget.value(total)
        return (items, *args[1:])
    if name == "replace" and len(args) >= 3:
        text, old, new = str(value), str(args[1]), str(args[2])
        hits = len(text) + 1 if old == "" else text.count(old)
        budget.value(len(text) + hits * max(len(new) - len(old), 0))
    elif name == "indent":
        width = args[1] if len(args) > 1 else kwargs.get("width", 4)
        pad = len(width) if isinstance(width, str) else int(width)
        budget.value(len(str(value)) + (str(value).count("\n") + 1) * pad)
    elif name == "wordwrap":
        text = str(value)
        width = args[1] if len(args) > 1 else kwargs.get("width", 79)
        wrap = args[3] if len(args) > 3 else kwargs.get("wrapstring") or "\n"
        lines = len(text) // max(int(width), 1) + text.count("\n") + 1
        budget.value(len(text) + lines * len(str(wrap)))
    elif name == "format":
        _check_percent_format(str(value), limit)
    return args


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja_pass_arg (pass_context / pass_environment)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        current().tick()
        passed = getattr(func, "jinja_pass_arg", None)
        if passed is not None:  # the first argument is the context or environment
            rest = _precheck_filter(name, args[1:], kwargs)
            return checked(func(args[0], *rest, **kwargs))
        return checked(func(*_precheck_filter(name, args, kwargs), **kwargs))

    return bounded


def _bounded_range(*args: int) -> Iterator[int]:
    budget = current()
    for i in range(*args):
        budget.iterate()
        yield i


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles templates so that loops, concatenations and buffers report to the budget."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        guarded = nodes.Call(
            nodes.EnvironmentAttribute("bounded_iter", lineno=node.lineno),
            [node.iter],
            [],
            None,
            None,
            lineno=node.lineno,
        )
        bounded = nodes.For(
            node.target,
            guarded,
            node.body,
            node.else_,
            node.test,
            node.recursive,
            lineno=node.lineno,
        )
        super().visit_For(bounded, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_value(")
        super().visit_Concat(node, frame)
        self.write(")")

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with every render bounded by the current :class:`Budget`.

    Render only inside :func:`budget` (the template set does): outside it, a generous
    fallback budget applies.
    """

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)
        self.globals["range"] = _bounded_range
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    # -- called by compiled templates ---------------------------------------------------

    def bounded_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        budget = current()
        for item in iterable:
            budget.iterate()
            yield item

    def bounded_value(self, value: Any) -> Any:
        return checked(value)

    def bounded_buffer(self) -> BoundedBuffer:
        return BoundedBuffer()

    # -- the sandbox's hooks ------------------------------------------------------------

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr not in _STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        current().tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current().tick()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        budget.tick()
        limit = budget.limits.size
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if _length(seq) and isinstance(times, int):
                    budget.value(_length(seq) * max(times, 0))
            if isinstance(left, int) and isinstance(right, int):
                budget.value(_digits(left) + _digits(right))
        elif operator == "**":
            budget.value(_power_digits(left, right))
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left, limit)
            values = right if isinstance(right, tuple) else (right,)
            _check_ints(values, limit)
        return checked(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        if isinstance(getattr(__obj, "__self__", None), str):  # ljust, center, zfill...
            _check_ints((*args, *kwargs.values()), budget.limits.size)
        return checked(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            limit = current().limits.size
            _check_brace_format(fmt, limit)
            _check_ints((*args, *kwargs.values()), limit)
            return str(checked(wrapped(*args, **kwargs)))

        return bounded
