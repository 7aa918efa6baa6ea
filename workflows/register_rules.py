"""The rules of the bundled registers (place, authority, theme, person): amendments that keep
the values they replace, and merges that go somewhere else.

An amendment (trigger ``amend``) takes a ``valid_from`` day; ``record_amendment`` appends to
the append-only ``history`` records field one entry per field it changes, holding the value
that field had before (as JSON), so :func:`opcatflow.engine.registers.value_at` answers
"what was this place called on 2025-03-01". ``valid_from`` is cleared again: each amendment
gives its own.
"""

from __future__ import annotations

import json

from opcatflow.engine import GuardRefusal, RuleContext
from opcatflow.engine.registers import HISTORY, VALID_FROM
from opcatflow.workflows.rules import _append_entry, registry

# Fields an amendment never records: its own bookkeeping and the lifecycle's.
_NOT_DESCRIPTIVE = frozenset({HISTORY, VALID_FROM, "merged_into", "retired_on", "retired_reason"})


@registry.guard(
    "amendment_in_order",
    reason="an amendment is valid from a day no earlier than the previous amendment's",
)
def amendment_in_order(ctx: RuleContext) -> bool:
    """Amendments are entered in the order they took effect, so the values that held on a
    day are the current ones with the later amendments undone."""
    valid_from = ctx.data.get(VALID_FROM)
    last = max((e[VALID_FROM] for e in ctx.data.get(HISTORY) or []), default=None)
    if last is not None and valid_from is not None and valid_from < last:
        raise GuardRefusal(
            f"valid_from {valid_from} is before the last amendment's ({last}): enter "
            "amendments in the order they took effect"
        )
    changed = [f for f in ctx.supplied if f not in _NOT_DESCRIPTIVE]
    if not changed:
        raise GuardRefusal("an amendment changes at least one field")
    return True


@registry.action("record_amendment", writes=[HISTORY, VALID_FROM])
def record_amendment(ctx: RuleContext) -> None:
    """Keep the value each supplied field had before, from ``valid_from`` on replaced."""
    stored = ctx.lookup(ctx.instance_id)
    before = stored.data if stored is not None else {}
    valid_from = ctx.data.get(VALID_FROM)
    for name in ctx.supplied:
        if name in _NOT_DESCRIPTIVE or before.get(name) == ctx.data.get(name):
            continue
        entry = {VALID_FROM: valid_from, "field": name, "before": json.dumps(before.get(name))}
        _append_entry(ctx, HISTORY, entry)
    ctx.data[VALID_FROM] = None


@registry.guard("merge_elsewhere", reason="an entry cannot be merged into itself")
def merge_elsewhere(ctx: RuleContext) -> bool:
    return ctx.data.get("merged_into") != ctx.instance_id


_MANAGEMENT = "a body of kind 'management' is never independent of the place it manages"


def _management_independent(data: dict[str, object]) -> bool:
    return data.get("kind") == "management" and data.get("independent") is True


@registry.guard("management_never_independent", reason=_MANAGEMENT)
def management_never_independent(ctx: RuleContext) -> bool:
    """An authority amended to be the management of a place and independent is refused:
    the sharing rules would never treat it as independent, so the flag would say nothing."""
    return not _management_independent(ctx.data)


@registry.action("check_management_not_independent")
def check_management_not_independent(ctx: RuleContext) -> None:
    """The same rule when an authority is added (a start has no guards: an on_enter action
    of the initial state that raises refuses it)."""
    if _management_independent(ctx.data):
        raise ValueError(_MANAGEMENT)
