"""``validate`` checks of consent and do-no-harm: the shape of ``persons`` and ``do_no_harm``
and what each ``shares:`` names (docs/consent.md).

Run from :mod:`opcatflow.engine.validation` on files; a stored copy (compatibility mode) is
not held to them.
"""

from __future__ import annotations

from opcatflow.engine.contract import checks_write_sets
from opcatflow.engine.definition import FieldSpec, FieldType, SubFieldSpec, WorkflowDefinition
from opcatflow.engine.errors import Problem
from opcatflow.engine.sharing import CONSENT_ONLY, DECISIONS, GROUNDS, PERSONS, USES
from opcatflow.engine.yamlsource import Located, Path

_T = FieldType
# sub-field -> (type, item type) of the consent parts of a person and of a decision
PERSON_SHAPE: dict[str, tuple[FieldType, FieldType | None]] = {
    "uses": (_T.LIST, _T.ENUM),
    "consent_obtained_by": (_T.STRING, None),
    "consent_obtained_on": (_T.DATE, None),
    "consent_how": (_T.ENUM, None),
    "consent_withdrawn_on": (_T.DATE, None),
}
DECISION_SHAPE: dict[str, tuple[FieldType, FieldType | None]] = {
    "n": (_T.INTEGER, None),
    "ground": (_T.ENUM, None),
    "recipient": (_T.STRING, None),
    "fields": (_T.LIST, _T.STRING),
    "use": (_T.ENUM, None),
    "decided_on": (_T.DATE, None),
    "expires_on": (_T.DATE, None),
}
RECIPIENT_TYPES = (FieldType.STRING, FieldType.ENUM, FieldType.REF)


def _described(shape: dict[str, tuple[FieldType, FieldType | None]]) -> str:
    return ", ".join(
        f"{n} ({t.value}{' of ' + i.value if i else ''})" for n, (t, i) in shape.items()
    )


class _Checks:
    def __init__(self, doc: Located, wf: WorkflowDefinition) -> None:
        self.doc = doc
        self.wf = wf
        self.problems: list[Problem] = []

    def add(self, loc: Path, message: str) -> None:
        self.problems.append(self.doc.problem(loc, message))

    def shape(
        self, name: str, spec: FieldSpec, wanted: dict[str, tuple[FieldType, FieldType | None]]
    ) -> bool:
        item = spec.item or {}
        if spec.type is not FieldType.RECORDS:
            self.add(("fields", name, "type"), f"{name!r} must be records: {_described(wanted)}")
            return False
        good = True
        for part, (kind, items) in wanted.items():
            sub: SubFieldSpec | None = item.get(part)
            if sub is None or sub.type is not kind or sub.items is not items or sub.personal:
                self.add(
                    ("fields", name, "item"),
                    f"{name!r} needs the sub-field {part!r} ({kind.value}"
                    f"{' of ' + items.value if items else ''}, not personal): "
                    f"{_described(wanted)}",
                )
                good = False
        return good

    def persons(self) -> frozenset[str]:
        spec = self.wf.fields.get(PERSONS)
        if spec is None or not self.shape(PERSONS, spec, PERSON_SHAPE):
            return frozenset()
        uses = (spec.item or {})["uses"].values or []
        for j, use in enumerate(uses):
            if use not in USES:
                self.add(
                    ("fields", PERSONS, "item", "uses", "values", j),
                    f"unknown use {use!r} (uses: {', '.join(USES)})",
                )
        return frozenset(uses)

    def decisions(self) -> bool:
        spec = self.wf.fields.get(DECISIONS)
        if spec is None:
            return False
        if not checks_write_sets(self.wf, compat=False):
            self.add(
                ("fields", DECISIONS),
                f"a definition with {DECISIONS!r} declares 'writes' (so that only the "
                "transitions that write it, where it is checked, do)",
            )
        if not self.shape(DECISIONS, spec, DECISION_SHAPE):
            return True
        if spec.key != "n" or not spec.append_only or not spec.write_roles:
            self.add(
                ("fields", DECISIONS),
                f"{DECISIONS!r} must be keyed by 'n', append_only and written only by the "
                "head's role (write_roles)",
            )
        item = spec.item or {}
        if set(item["ground"].values or []) - set(GROUNDS):
            self.add(
                ("fields", DECISIONS, "item", "ground", "values"),
                f"grounds are among: {', '.join(GROUNDS)}",
            )
        never = CONSENT_ONLY.intersection(item["use"].values or [])
        if never or set(item["use"].values or []) - set(USES):
            self.add(
                ("fields", DECISIONS, "item", "use", "values"),
                f"uses are among: {', '.join(u for u in USES if u not in CONSENT_ONLY)} "
                f"({', '.join(sorted(CONSENT_ONLY))} rest on consent only)",
            )
        return True

    def run(self) -> list[Problem]:
        uses = self.persons()
        has_decisions = self.decisions()
        start = self.wf.start
        for key in ("writes", "requires"):
            if DECISIONS in (getattr(start, key) or ()):
                self.add(
                    ("start", key),
                    f"{DECISIONS!r} is recorded by a transition, where it is checked, "
                    "never at start",
                )
        for i, t in enumerate(self.wf.transitions):
            for j, opening in enumerate(t.opens):
                if DECISIONS in opening.data:
                    self.add(
                        ("transitions", i, "opens", j, "data", DECISIONS),
                        "a do-no-harm decision is never copied into another case: the head "
                        "decides it there",
                    )
        sharing = [(i, t.shares) for i, t in enumerate(self.wf.transitions) if t.shares]
        if sharing and PERSONS not in self.wf.fields:
            self.add(
                ("transitions", sharing[0][0], "shares"),
                f"a transition that shares needs a {PERSONS!r} records field: "
                f"{_described(PERSON_SHAPE)}",
            )
        for i, shares in sharing:
            assert shares is not None
            loc: Path = ("transitions", i, "shares")
            if PERSONS in self.wf.fields and shares.use not in uses:
                self.add((*loc, "use"), f"use {shares.use!r} is not among the uses of persons")
            self.check_fields(loc, shares.fields)
            if shares.recipient is None:
                if shares.use not in CONSENT_ONLY:
                    self.add(loc, "'recipient' (the field naming the receiving body) is required")
                continue
            field = self.wf.fields.get(shares.recipient)
            if field is None or field.type not in RECIPIENT_TYPES:
                self.add(
                    (*loc, "recipient"),
                    f"{shares.recipient!r} is not a string or enum field (a body id)",
                )
            if not has_decisions and shares.use not in CONSENT_ONLY:
                self.add(
                    loc,
                    f"a transition sharing with a body needs a {DECISIONS!r} records field: "
                    f"{_described(DECISION_SHAPE)}",
                )
        return self.problems

    def check_fields(self, loc: Path, names: list[str]) -> None:
        fields = self.wf.fields
        for j, name in enumerate(names):
            if name not in fields:
                self.add((*loc, "fields", j), f"unknown field {name!r}")
        if not any(f in fields and (fields[f].personal or fields[f].personal_parts) for f in names):
            self.add((*loc, "fields"), "shares no personal field: nothing to check, remove it")


def sharing_problems(doc: Located, wf: WorkflowDefinition) -> list[Problem]:
    """Every problem with the consent and do-no-harm parts of a definition, located."""
    return _Checks(doc, wf).run()
