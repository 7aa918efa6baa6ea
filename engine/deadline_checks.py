"""Checks of a definition's deadlines: scopes, anchors, what meets them, who owes them, their
alerts, and the transitions that pause them. Run by :mod:`opcatflow.engine.validation`.

Templates are checked where they are known (``opcatflow.notifications.check``): each alert
step's template must exist in every language the NPM configures.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from opcatflow.engine.definition import (
    DeadlineSpec,
    FieldType,
    TransitionSpec,
    WorkflowDefinition,
)
from opcatflow.engine.durations import ENTERED, Duration, parse_due, parse_period
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.yamlsource import Path

DATES = (FieldType.DATE, FieldType.DATETIME)


class Checker(Protocol):
    """What the definition checker offers these checks (``validation._Checker``)."""

    wf: WorkflowDefinition
    compat: bool
    roles: set[str]

    def add(self, loc: Path, message: str, *, fatal: bool = False) -> None: ...

    def check_name(self, loc: Path, kind: str, name: str, known: Iterable[str]) -> bool: ...

    def check_expression(self, loc: Path, source: str, extra: set[str] | None = None) -> None: ...

    def check_text_field(self, loc: Path, name: str, *, lists: bool) -> None: ...

    def expand(self, t: TransitionSpec) -> list[str]: ...


def declared(wf: WorkflowDefinition) -> list[tuple[Path, DeadlineSpec, list[str] | None]]:
    """Every deadline with where it is and the states it spans (``None``: the instance)."""
    found: list[tuple[Path, DeadlineSpec, list[str] | None]] = []
    for name, state in wf.states.items():
        for i, spec in enumerate(state.deadlines):
            found.append((("states", name, "deadlines", i), spec, [name]))
    for i, spec in enumerate(wf.deadlines):
        scope = spec.scope
        states = None if scope == "instance" or scope is None else list(scope)
        found.append((("deadlines", i), spec, states))
    return found


def check_deadlines(c: Checker) -> None:
    wf = c.wf
    fields = wf.fields
    dates = {n for n, f in fields.items() if f.type in DATES}
    triggers = {t.trigger for t in wf.transitions}
    seen: set[str] = set()
    for at, d, states in declared(wf):
        if d.id in seen:
            c.add((*at, "id"), f"deadline id {d.id!r} is used twice")
        seen.add(d.id)
        state_level = at[0] == "states"
        if state_level and d.scope is not None:
            c.add(
                (*at, "scope"),
                "'scope' is for deadlines under the workflow's 'deadlines:'; one under a "
                "state spans that state",
            )
        if not state_level:
            _check_scope(c, at, d)
        if d.minimum:
            _check_minimum(c, at, d, dates, triggers)
            continue
        due = parse_due(d.due)
        if due.anchor != ENTERED and due.anchor not in dates:
            c.add(
                (*at, "due"),
                f"deadline anchor {due.anchor!r} is neither 'entered' nor a date field"
                + did_you_mean(due.anchor, dates),
            )
        if d.published is not None and d.published not in dates:
            c.add(
                (*at, "published"),
                f"published date {d.published!r} is not a date or datetime field"
                + did_you_mean(d.published, dates),
            )
        for name, loc in ((due.anchor, (*at, "due")), (d.published, (*at, "published"))):
            if name is not None and name in fields and fields[name].personal:
                c.add(loc, _personal(name))
        if d.when is not None:
            c.check_expression((*at, "when"), d.when)
        _check_escalation(c, at, d, states)
        if d.on_due.notify is not None and not c.compat:
            c.add(
                (*at, "on_due", "notify"),
                "'on_due.notify' was never sent and is gone: declare the message as an "
                f"alert step, e.g. overdue_alerts: [{{after: 0 days, to: [ROLE], template: "
                f"{d.on_due.notify}}}]",
            )
        _check_met_by(c, at, d, triggers)
        _check_owed(c, at, d)
        _check_reminders(c, at, d.due, d.reminders)


def _check_minimum(
    c: Checker, at: Path, d: DeadlineSpec, dates: set[str], triggers: set[str]
) -> None:
    """A ``not_before`` minimum: counted after an anchor, met by something, never owed."""
    assert d.not_before is not None
    expr = parse_due(d.not_before)
    loc = (*at, "not_before")
    if expr.direction != "after":
        c.add(loc, "a minimum counts forwards: 'not_before: <period> after <anchor>'")
    if expr.anchor != ENTERED and expr.anchor not in dates:
        c.add(
            loc,
            f"minimum anchor {expr.anchor!r} is neither 'entered' nor a date field"
            + did_you_mean(expr.anchor, dates),
        )
    elif expr.anchor in c.wf.fields and c.wf.fields[expr.anchor].personal:
        c.add(loc, _personal(expr.anchor))
    if not d.met_by:
        c.add(
            (*at, "met_by"),
            f"minimum {d.id!r}: say what may not happen too early ('met_by': a trigger or a field)",
        )
    for key, value in (
        ("reminders", d.reminders),
        ("every", d.every),
        ("published", d.published),
        ("on_due", d.on_due.trigger or d.on_due.notify),
        ("owed_by", d.owed_by),
        ("overdue_alerts", d.overdue_alerts),
        ("waivable_by", d.waivable_by),
        ("extendable_by", d.extendable_by),
        ("kind", d.kind != "obligation"),
    ):
        if value:
            c.add(
                (*at, key),
                f"minimum {d.id!r} is never owed nor overdue: '{key}' has no use on it",
            )
    if d.when is not None:
        c.check_expression((*at, "when"), d.when)
    _check_met_by(c, at, d, triggers)


def _personal(name: str) -> str:
    return (
        f"field {name!r} is personal: an obligation keeps the value it counts from, so it may "
        "not count from (or be met by) a personal field"
    )


def _check_scope(c: Checker, at: Path, d: DeadlineSpec) -> None:
    if d.scope is None:
        c.add(
            at,
            f"deadline {d.id!r} needs a 'scope': a list of states, or 'instance' (or declare "
            "it under the one state it spans)",
        )
        return
    if d.scope == "instance":
        return
    if not d.scope:
        c.add((*at, "scope"), "a scope names at least one state (or is 'instance')")
    for j, name in enumerate(d.scope):
        loc = (*at, "scope", j)
        if c.check_name(loc, "scope state", name, c.wf.states) and c.wf.states[name].final:
            c.add(loc, f"state {name!r} is final: a case there owes nothing")
        if name in d.scope[:j]:
            c.add(loc, f"state {name!r} is listed twice")


def _check_escalation(c: Checker, at: Path, d: DeadlineSpec, states: list[str] | None) -> None:
    # The escalation fires from whichever state of the scope the case is in when the date
    # passes: at least one of them must let the scheduler fire it (from the others the
    # attempt is refused and audited, e.g. a case already escalated).
    trigger = d.on_due.trigger
    if trigger is None:
        return
    wf = c.wf
    spanned = states if states is not None else [n for n, s in wf.states.items() if not s.final]
    problems: list[str] = []
    for name in spanned:
        options = [t for t in wf.transitions if name in c.expand(t)]
        fired = {t.trigger for t in options}
        if trigger not in fired:
            problems.append(
                f"trigger {trigger!r} cannot be fired from state {name!r}"
                + did_you_mean(trigger, fired)
            )
        elif not any(t.trigger == trigger and "scheduler" in t.roles for t in options):
            problems.append(
                f"trigger {trigger!r} from state {name!r} does not allow the role "
                "'scheduler': add it to the transition's roles, or the escalation is "
                "always refused"
            )
        else:
            return
    if problems:
        c.add((*at, "on_due", "trigger"), problems[0])


def _check_met_by(c: Checker, at: Path, d: DeadlineSpec, triggers: set[str]) -> None:
    fields = c.wf.fields
    for j, met in enumerate(d.met_by):
        loc = (*at, "met_by", j)
        if met.trigger is not None:
            c.check_name((*loc, "trigger"), "trigger", met.trigger, triggers)
        if met.field is not None and c.check_name((*loc, "field"), "field", met.field, fields):
            spec = fields[met.field]
            if spec.personal:
                c.add((*loc, "field"), _personal(met.field))
            elif spec.type is FieldType.RECORDS:
                c.add(
                    (*loc, "field"),
                    f"field {met.field!r} is records: name a field that is set once",
                )
    if d.every is not None and not d.met_by:
        c.add(
            (*at, "every"),
            f"deadline {d.id!r} repeats: say what meets each occurrence ('met_by'), the next "
            "one counts from that day",
        )


def _check_owed(c: Checker, at: Path, d: DeadlineSpec) -> None:
    milestone = d.kind == "milestone"
    if milestone:
        for key, value in (
            ("overdue_alerts", d.overdue_alerts),
            ("waivable_by", d.waivable_by),
            ("extendable_by", d.extendable_by),
        ):
            if value:
                c.add((*at, key), f"a milestone is never overdue: '{key}' has no use on it")
    elif d.owed_by in ("npm", "state") and not d.overdue_alerts:
        c.add(
            (*at, "owed_by"),
            f"deadline {d.id!r} is owed by the {'NPM' if d.owed_by == 'npm' else 'State'}: "
            "declare who hears when it is overdue ('overdue_alerts')",
        )
    for key, roles in (("waivable_by", d.waivable_by), ("extendable_by", d.extendable_by)):
        for j, role in enumerate(roles):
            c.check_name((*at, key, j), "role", role, c.wf.roles)
    for i, step in enumerate(d.overdue_alerts):
        loc = (*at, "overdue_alerts", i)
        for j, to in enumerate(step.to):
            if isinstance(to, str):
                c.check_name((*loc, "to", j), "role", to, c.roles)
                continue
            if to.role is not None:
                c.check_name((*loc, "to", j, "role"), "role", to.role, c.roles)
            if to.assignees is not None:
                c.check_text_field((*loc, "to", j, "assignees"), to.assignees, lists=True)
            if to.address is not None:
                c.check_text_field((*loc, "to", j, "address"), to.address, lists=False)


def _check_reminders(c: Checker, at: Path, due_text: str, reminders: list[str]) -> None:
    due = parse_due(due_text)
    for j, text in enumerate(reminders):
        if text in reminders[:j]:
            c.add((*at, "reminders", j), f"reminder {text!r} is listed twice")
            continue
        period = parse_period(text)
        if (
            due.anchor == ENTERED
            and isinstance(due.duration, Duration)
            and isinstance(period, Duration)
            and period.days_range()[0] >= due.duration.days_range()[1]
        ):
            c.add(
                (*at, "reminders", j),
                f"reminder {text!r} is not shorter than the deadline {due_text!r}: it "
                "would fall before the state is entered",
            )


def check_clock_stops(c: Checker) -> None:
    wf = c.wf
    finals = {n for n, s in wf.states.items() if s.final}
    spans: dict[str, set[str]] = {}
    for _, d, states in declared(wf):
        spans.setdefault(d.id, set(states) if states is not None else set(wf.states) - finals)
    declared_stops: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {}
    for i, t in enumerate(wf.transitions):
        sources = c.expand(t)
        for key, names in (("pauses", t.pauses), ("resumes", t.resumes)):
            for j, deadline in enumerate(names):
                loc: Path = ("transitions", i, key, j)
                if key == "resumes" and deadline in t.pauses:
                    c.add(loc, f"{t.trigger!r} both pauses and resumes {deadline!r}")
                    continue
                spanned = spans.get(deadline, set())
                holders = [s for s in sources if s in spanned]
                if not holders:
                    known = {d for d, states in spans.items() if states & set(sources)}
                    c.add(
                        loc,
                        f"deadline {deadline!r} does not span a state {t.trigger!r} "
                        f"fires from ({', '.join(sources) or 'none'})"
                        + did_you_mean(deadline, known),
                    )
                elif t.dest is not None:
                    c.add(
                        loc,
                        f"{t.trigger!r} moves the case (to {t.dest!r}): pause and resume "
                        "on transitions without 'dest' (they stay; leaving a scope ends it)",
                    )
        stops = (frozenset(t.pauses), frozenset(t.resumes))
        for src in sources:
            first = declared_stops.setdefault((src, t.trigger), stops)
            if first != stops:
                c.add(
                    ("transitions", i, "pauses" if t.pauses else "trigger"),
                    f"trigger {t.trigger!r} from {src!r} is declared again with other "
                    "pauses/resumes: declare the same on every alternative",
                )


def check_assignees(c: Checker) -> None:
    if c.wf.assignees is not None:
        c.check_text_field(("assignees",), c.wf.assignees, lists=True)
