"""Every limit opcatflow puts on what it is given: the one place the numbers live.

The engine enforces them before it opens a transaction (see :mod:`opcatflow.engine.inputs`),
so they are the same on SQLite and PostgreSQL and nothing past one is ever stored; the edges
(CLI, HTTP) only translate the refusal. docs/limits.md is this table for readers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit: its name (as error messages say it), its maximum and the unit counted."""

    name: str
    maximum: int
    unit: str

    def describe(self) -> str:
        return f"{self.name} limit: at most {self.maximum:,} {self.unit}"


# -- who acts and why -----------------------------------------------------------------------
ACTOR = Limit("actor", 200, "characters")
# A role and a trigger are names a definition declares (64 characters at most there, and in
# the audit trail's columns); anything longer cannot be one.
ROLE = Limit("role", 64, "characters")
TRIGGER = Limit("trigger", 64, "characters")
REASON = Limit("reason", 2_000, "characters")

# -- instance data --------------------------------------------------------------------------
STRING = Limit("string field", 1_000, "characters")
TEXT = Limit("text field", 100_000, "characters")
LIST = Limit("list", 1_000, "items")
DATA = Limit("instance data", 1024 * 1024, "bytes of JSON")
JSON_DEPTH = Limit("JSON nesting", 32, "levels")
# An integer field fits a signed 64-bit integer, which both databases compare exactly.
INTEGER = Limit("integer", 2**63 - 1, "in absolute value")

# -- definition files -----------------------------------------------------------------------
YAML_BYTES = Limit("definition file", 1_000_000, "bytes")
YAML_NODES = Limit("definition expansion", 100_000, "nodes")  # aliases counted as expanded
YAML_DEPTH = Limit("YAML nesting", 64, "levels")

# -- sandboxed expressions (transition and deadline `when`, `opens.data`) -------------------
# One evaluation of one expression. The size budget sits above the longest text a field may
# hold, so a condition may still read (and lower-case, or search) any field.
EXPRESSION_SECONDS = 0.05
EXPRESSION_ITERATIONS = 10_000
EXPRESSION_VALUE = 128 * 1024  # characters or items of any one value built

# -- notification templates (defaults; the notification settings may change them) ----------
TEMPLATE_SECONDS = 0.5
TEMPLATE_OUTPUT = 256_000  # characters of output, and of any one value built
TEMPLATE_ITERATIONS = 200_000

# Limits that are about size answer HTTP 413 rather than 422.
SIZE_LIMITS = frozenset({DATA.name})
