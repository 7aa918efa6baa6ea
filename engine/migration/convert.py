"""Free text to register ids: the ``data.convert`` step of a migration plan.

A plan lists the fields whose free-text values become entry ids of a register (the register
is the one the target version's reference field names)::

    data:
      convert: [place, team_members, conflicts_of_interest.place]

Before anything moves, the run reads every value those fields hold in the running instances
and matches each to one register entry by its title: exactly, else ignoring case (and
surrounding blanks). Active entries are tried first, then retired or merged ones (a case
about a place since closed still names it); a merged entry stands for the entry it was
merged into. A value matching no entry, or several, is listed for an operator, who maps it
in a mapping file (``opcatflow migrate PLAN --map FILE``)::

    place:                          # register -> {free text as stored: entry id}
      Centrl Prison: central-prison
    person:
      J. Smith: 6f1c...

Nothing moves until every value is matched or mapped (:class:`UnmappedValues`, every value
listed). The mapping wins over a match, so an operator can also correct one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import FieldType
from opcatflow.engine.errors import DefinitionError, Problem
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.yamlsource import Located, load_yaml


class Entry(Protocol):
    """What the conversion reads of a register entry (``engine.registers`` gives these)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def retired(self) -> bool: ...


class Registers(Protocol):
    """The engine's register lookups the conversion needs."""

    def entries(self, register: str, include_retired: bool = False) -> Sequence[Any]: ...
    def resolve(self, register: str, entry_id: str, at: Any = None) -> Any | None: ...


@dataclass(frozen=True)
class Target:
    """One field (or records sub-field) a plan converts, and the register it refers to.

    Attributes:
        field: the field's name in the target version.
        sub: for a records field, the sub-field converted in each entry.
        many: the field holds a list of references.
        key: for a records field, its key (entries converted to the same id are merged).
    """

    name: str
    field: str
    register: str
    sub: str | None = None
    many: bool = False
    key: str | None = None


class UnmappedValues(DefinitionError):
    """Values to convert that no register entry matches (or several do), and mapping-file
    problems: nothing was migrated. ``problems`` lists each, located in the plan (or the
    mapping file)."""


def reference_register(spec: Any) -> str | None:
    """The register a field (or sub-field) refers to: the ``register`` of a ref or a list of
    refs, else None."""
    register = getattr(spec, "register_id", None)
    return str(register) if isinstance(register, str) and register else None


def targets(target: CompiledWorkflow, names: Sequence[str], problem: Any) -> list[Target]:
    """Check the plan's ``convert`` list against the target version; ``problem(index,
    message)`` records a located problem."""
    fields = target.definition.fields
    found: list[Target] = []
    for i, name in enumerate(names):
        field, _, sub = name.partition(".")
        spec = fields.get(field)
        if spec is None:
            problem(
                i, f"version {target.version} has no field {field!r}{did_you_mean(field, fields)}"
            )
            continue
        if sub:
            item = (spec.item or {}) if spec.type is FieldType.RECORDS else {}
            sub_spec = item.get(sub)
            if sub_spec is None:
                problem(i, f"{field!r} of version {target.version} has no sub-field {sub!r}")
                continue
            register = reference_register(sub_spec)
            many = sub_spec.type is FieldType.LIST
            key = spec.key
        else:
            register = reference_register(spec)
            many = spec.type is FieldType.LIST
            key = None
        if register is None:
            problem(
                i,
                f"{name!r} is not a reference to a register in version {target.version}: "
                "only a ref field (or a list of refs) is converted",
            )
            continue
        found.append(Target(name, field, register, sub or None, many, key))
    return found


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


class TitleIndex:
    """One register's entries by title, for matching free text."""

    def __init__(self, register: str, entries: Iterable[Any]) -> None:
        self.register = register
        self.exact: dict[tuple[bool, str], list[str]] = defaultdict(list)
        self.folded: dict[tuple[bool, str], list[str]] = defaultdict(list)
        for entry in entries:
            active = not entry.retired
            self.exact[(active, entry.title)].append(entry.id)
            self.folded[(active, _fold(entry.title))].append(entry.id)

    def match(self, text: str) -> tuple[str | None, list[str]]:
        """The one entry id ``text`` names, else (None, the ids it could name: none or
        several)."""
        for active in (True, False):
            for index, key in ((self.exact, text), (self.folded, _fold(text))):
                ids = sorted(set(index.get((active, key), [])))
                if len(ids) == 1:
                    return ids[0], ids
                if ids:
                    return None, ids
        return None, []


@dataclass
class Conversion:
    """The ids each free-text value becomes, by register, once every value is known."""

    targets: Sequence[Target]
    ids: Mapping[str, Mapping[str, str]]

    def apply(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
        """The data with every target converted, the notes (field names only), and the
        values found that the conversion does not know (the instance changed since the
        values were read: it is refused, and a new run maps them)."""
        new = dict(data)
        notes: list[str] = []
        unknown: list[str] = []
        for t in self.targets:
            value = new.get(t.field)
            if value is None:
                continue
            one = _Converter(self.ids.get(t.register, {}), t.register, unknown)
            if t.sub is None:
                new[t.field] = one.value(value, t.many)
            elif isinstance(value, list):
                new[t.field] = _convert_entries(value, t, one)
            if new[t.field] != value:
                notes.append(f"converted {t.name} to {t.register} ids")
        return new, notes, unknown


@dataclass
class _Converter:
    ids: Mapping[str, str]
    register: str
    unknown: list[str]

    def one(self, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            return value
        converted = self.ids.get(value)
        if converted is None:
            self.unknown.append(f"{self.register} {value!r}")
            return value
        return converted

    def value(self, value: Any, many: bool) -> Any:
        if many and isinstance(value, list):
            # two spellings of one entry become one reference
            return list(dict.fromkeys(self.one(v) for v in value))
        return self.one(value)


def _convert_entries(entries: list[Any], t: Target, one: _Converter) -> list[Any]:
    """A records field with its sub-field converted in each entry; when two entries now name
    the same key (two spellings of one place), the first stands."""
    kept: list[Any] = []
    seen: set[Any] = set()
    for entry in entries:
        changed = entry
        if isinstance(entry, dict) and t.sub in entry:
            changed = {**entry, t.sub: one.value(entry[t.sub], t.many)}
        key = changed.get(t.key) if isinstance(changed, dict) and t.key else None
        if key is not None and key in seen:
            continue
        if key is not None:
            seen.add(key)
        kept.append(changed)
    return kept


def values_of(targets: Sequence[Target], data: Mapping[str, Any]) -> Iterable[tuple[Target, str]]:
    """Every non-empty text value the targets hold in one instance's data."""
    for t in targets:
        value = data.get(t.field)
        if value is None:
            continue
        if t.sub is None:
            holders: list[Any] = [value]
        else:
            holders = (
                [e.get(t.sub) for e in value if isinstance(e, dict)]
                if isinstance(value, list)
                else []
            )
        for held in holders:
            items = held if isinstance(held, list) else [held]
            for item in items:
                if isinstance(item, str) and item.strip():
                    yield t, item


@dataclass(frozen=True)
class OperatorMapping:
    """An operator's mapping file: register -> {free text: entry id}, with positions."""

    ids: Mapping[str, Mapping[str, str]]
    doc: Located | None = None


def load_mapping(text: str, path: str) -> OperatorMapping:
    """Parse a mapping file (YAML or JSON).

    Raises:
        UnmappedValues: a malformed file, every problem located.
    """
    doc = load_yaml(text, path)
    value = doc.value
    problems: list[Problem] = []
    if value is None:
        return OperatorMapping({}, doc)
    if not isinstance(value, dict):
        raise UnmappedValues([Problem(path, 1, 1, "a mapping file maps register -> {text: id}")])
    ids: dict[str, dict[str, str]] = {}
    for register, pairs in value.items():
        if not isinstance(pairs, dict):
            problems.append(doc.problem((register,), f"{register}: give free text -> entry id"))
            continue
        ids[str(register)] = {}
        for text_, entry in pairs.items():
            if not isinstance(entry, str) or not entry:
                problems.append(doc.problem((register, text_), "an entry id is a string"))
                continue
            ids[str(register)][str(text_)] = entry
    if problems:
        raise UnmappedValues(problems)
    return OperatorMapping(ids, doc)


def prepare(
    plan_doc: Located,
    targets_: Sequence[Target],
    found: Mapping[tuple[str, str], Mapping[str, int]],
    registers: Registers,
    mapping: OperatorMapping | None = None,
) -> Conversion:
    """Match every value found to an entry id.

    Args:
        found: (register, text) -> {target name: instances holding it}.

    Raises:
        UnmappedValues: a value no entry matches or several do and the mapping does not
            give; a mapping naming an unknown register or entry. Each problem names the
            value, the fields and instances holding it, and what was tried.
    """
    mapped = mapping.ids if mapping is not None else {}
    problems: list[Problem] = []
    wanted = {t.register for t in targets_}
    if mapping is not None and mapping.doc is not None:
        for register, pairs in mapped.items():
            if register not in wanted:
                known = ", ".join(sorted(wanted)) or "none"
                problems.append(
                    mapping.doc.problem(
                        (register,),
                        f"this plan converts to no {register!r} register (it converts to: {known})",
                    )
                )
                continue
            for text, entry_id in pairs.items():
                if registers.resolve(register, entry_id) is None:
                    problems.append(
                        mapping.doc.problem(
                            (register, text),
                            f"{register} {entry_id!r} is not in the {register} register",
                        )
                    )
    indexes = {
        register: TitleIndex(register, registers.entries(register, include_retired=True))
        for register in sorted(wanted)
    }
    ids: dict[str, dict[str, str]] = {register: {} for register in wanted}
    for (register, text), holders in sorted(found.items()):
        where = ", ".join(f"{name} in {n} instance(s)" for name, n in sorted(holders.items()))
        given = mapped.get(register, {}).get(text)
        if given is not None:
            entry = registers.resolve(register, given)
            if entry is not None:
                ids[register][text] = entry.id
            continue  # an unknown id is a problem of the mapping file, listed above
        matched, candidates = indexes[register].match(text)
        if matched is not None:
            entry = registers.resolve(register, matched)
            ids[register][text] = entry.id if entry is not None else matched
            continue
        why = (
            f"several entries are titled so ({', '.join(candidates)})"
            if candidates
            else "no entry is titled so, even ignoring case"
        )
        problems.append(
            plan_doc.problem(
                ("data", "convert"),
                f"{register} {text!r} ({where}): {why}; map it in a mapping file "
                f"({register}: {{{text!r}: ENTRY_ID}}, migrate --map FILE)",
            )
        )
    if problems:
        raise UnmappedValues(problems)
    return Conversion(targets_, ids)
