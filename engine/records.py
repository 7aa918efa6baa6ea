"""``records`` fields: lists of entries with typed sub-fields, identified by a key sub-field.

A caller writes a records field in one of two forms (docs/definitions.md, "Records"):

- the full list: it replaces the stored entries, compared with them by key (an entry whose
  key is gone is removed, one whose sub-fields differ is edited, a new key is appended);
- a change: ``{"append": [entries], "edit": [entries], "remove": [keys]}`` (any of the three),
  applied to the stored entries, so a writer need not read or resend them. An appended entry
  may leave out an integer key: it gets the next number.

``append_only`` fields refuse any removal or edit, whatever wrote it (a caller, an action),
checked on the data a transition would store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opcatflow.engine.definition import FieldSpec, FieldType
from opcatflow.engine.errors import LimitExceeded
from opcatflow.engine.limits import LIST
from opcatflow.engine.suggest import did_you_mean

Check = Callable[[Any], Any]
Entry = dict[str, Any]
CHANGE_KEYS = ("append", "edit", "remove")


@dataclass(frozen=True, slots=True)
class RecordsChange:
    """A change to a records field, applied to its stored entries by :meth:`Records.apply`."""

    append: tuple[Entry, ...] = ()
    edit: tuple[Entry, ...] = ()
    remove: tuple[Any, ...] = ()


def _label(key: Any) -> str:
    return f"[{key}]" if key is not None else ""


class Records:
    """The compiled rules of one records field."""

    def __init__(self, name: str, spec: FieldSpec, checks: Mapping[str, Check]) -> None:
        assert spec.item is not None
        assert spec.key is not None
        self.name = name
        self.key = spec.key
        self.append_only = spec.append_only
        self.subs = dict(spec.item)
        self.checks = dict(checks)
        self.personal = spec.personal_parts
        self.required = tuple(n for n, s in spec.item.items() if s.required or n == spec.key)
        self.numbered = spec.item[spec.key].type is FieldType.INTEGER

    # -- checking what a caller supplies -------------------------------------------------

    def check(self, value: Any) -> list[Entry] | RecordsChange:
        """A full list of entries, or a change; raises ValueError naming entry and sub-field."""
        if isinstance(value, list):
            self._bounded(value)
            entries = [self._entry(e, i, partial=False) for i, e in enumerate(value)]
            self._unique(entries)
            return entries
        if not isinstance(value, dict):
            raise ValueError("expected a list of entries, or {append, edit, remove}")
        unknown = sorted(set(value) - set(CHANGE_KEYS))
        if unknown or not value:
            raise ValueError(
                f"a change takes 'append', 'edit' and/or 'remove', not {', '.join(unknown)}"
                if unknown
                else "an empty change: give 'append', 'edit' or 'remove'"
            )
        lists = {k: value.get(k) or [] for k in CHANGE_KEYS}
        for k, items in lists.items():
            if not isinstance(items, list):
                raise ValueError(f"'{k}' must be a list")
            self._bounded(items)
        append = [
            self._entry(e, i, partial=False, numbered=True) for i, e in enumerate(lists["append"])
        ]
        edit = [self._entry(e, i, partial=True) for i, e in enumerate(lists["edit"])]
        remove = [self._key_value(k) for k in lists["remove"]]
        self._unique([e for e in append if self.key in e])
        return RecordsChange(tuple(append), tuple(edit), tuple(remove))

    def _bounded(self, items: list[Any]) -> None:
        if len(items) > LIST.maximum:
            raise LimitExceeded(LIST, f"data.{self.name}", len(items))

    def _key_value(self, value: Any) -> Any:
        try:
            return self.checks[self.key](value)
        except ValueError as err:
            raise ValueError(f"key {self.key}: {err}") from None

    def _entry(self, raw: Any, index: int, *, partial: bool, numbered: bool = False) -> Entry:
        where = f"entry #{index + 1}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected an object of sub-fields")
        key = raw.get(self.key)
        if key is not None:
            key = self._key_value(key)
            where = f"[{key}]"
        entry: Entry = {}
        for sub, value in raw.items():
            check = self.checks.get(sub)
            if check is None:
                raise ValueError(
                    f"{where}: unknown sub-field {sub!r}{did_you_mean(sub, self.subs)}"
                )
            if value is None:
                if partial and sub != self.key:
                    entry[sub] = None  # an edit clears it
                continue
            try:
                entry[sub] = check(value)
            except ValueError as err:
                # a personal value is never echoed back: refusals are audited
                detail = "not a valid value" if sub in self.personal else str(err)
                raise ValueError(f"{where}.{sub}: {detail}") from None
        if key is None and not (numbered and self.numbered):
            raise ValueError(f"{where}: missing its key {self.key!r}")
        if not partial:
            missing = [n for n in self.required if n != self.key and entry.get(n) in (None, "", [])]
            if missing:
                raise ValueError(f"{where}: missing required sub-field(s) {', '.join(missing)}")
        return entry

    def _unique(self, entries: list[Entry]) -> None:
        seen: set[Any] = set()
        for entry in entries:
            key = entry[self.key]
            if key in seen:
                raise ValueError(f"[{key}]: key {self.key!r} is used twice")
            seen.add(key)

    # -- applying it ----------------------------------------------------------------------

    def apply(self, stored: list[Entry] | None, value: list[Entry] | RecordsChange) -> list[Entry]:
        """The entries after the write; raises ValueError for an edit or removal of an entry
        that does not exist, or an appended key that does."""
        if isinstance(value, list):
            return value
        entries = [dict(e) for e in stored or []]
        index = {e.get(self.key): i for i, e in enumerate(entries)}
        for key in value.remove:
            if key not in index:
                raise ValueError(f"[{key}]: no entry to remove")
        for edit in value.edit:
            key = edit[self.key]
            if key not in index:
                raise ValueError(f"[{key}]: no entry to edit (append it instead)")
            merged = {**entries[index[key]], **edit}
            entries[index[key]] = {k: v for k, v in merged.items() if v is not None}
            missing = [n for n in self.required if merged.get(n) in (None, "", [])]
            if missing:
                raise ValueError(f"[{key}]: missing required sub-field(s) {', '.join(missing)}")
        gone = set(value.remove)
        entries = [e for e in entries if e.get(self.key) not in gone]
        used = {e.get(self.key) for e in entries}
        number = max((k for k in used if isinstance(k, int)), default=0)
        for appended in value.append:
            entry = appended
            if self.key not in entry:
                number += 1
                entry = {self.key: number, **entry}
            key = entry[self.key]
            if key in used:
                raise ValueError(f"[{key}]: an entry with this key exists (edit it instead)")
            used.add(key)
            if isinstance(key, int):
                number = max(number, key)
            entries.append(entry)
        self._bounded(entries)  # appends add up: the stored list stays within the limit too
        return entries

    def writes_personal(self, stored: Any, value: list[Entry] | RecordsChange) -> bool:
        """Whether writing ``value`` (from :meth:`check`) over the ``stored`` entries sets,
        clears, changes or removes a personal sub-field value. Decided from what is supplied
        and from which stored entries hold personal values (which views show as withheld),
        never from the values themselves: a right and a wrong guess are refused alike."""
        held = [e for e in stored or [] if isinstance(e, dict) and self._holds_personal(e)]
        if isinstance(value, list):
            # Stored personal values are either dropped with their entry or cleared by an
            # entry that cannot carry them; a supplied one is a write (its writer cannot
            # have read it to resend it unchanged).
            return bool(held) or any(self.personal & e.keys() for e in value)
        if any(self.personal & e.keys() for e in (*value.append, *value.edit)):
            return True  # an edit naming a personal sub-field sets or clears it
        removed = set(value.remove)
        return any(e.get(self.key) in removed for e in held)

    def _holds_personal(self, entry: Entry) -> bool:
        return any(entry.get(sub) is not None for sub in self.personal)

    def append_only_problem(self, before: Any, after: Any) -> str | None:
        """Why ``after`` is not ``before`` with entries added (None when it is)."""
        old = {e.get(self.key): e for e in before or [] if isinstance(e, dict)}
        new = {e.get(self.key): e for e in after or [] if isinstance(e, dict)}
        removed = [k for k in old if k not in new]
        changed = [k for k in old if k in new and new[k] != old[k]]
        if not removed and not changed:
            return None
        parts = []
        if removed:
            parts.append("removes " + ", ".join(_label(k) for k in removed))
        if changed:
            subs = sorted(
                {
                    s
                    for k in changed
                    for s in old[k].keys() | new[k].keys()
                    if old[k].get(s) != new[k].get(s)
                }
            )
            parts.append("edits " + ", ".join(_label(k) for k in changed) + f" ({', '.join(subs)})")
        return (
            f"{self.name} is append-only: entries may be added, never edited or removed; "
            f"this {' and '.join(parts)}"
        )

    # -- reading it -----------------------------------------------------------------------

    def diff(self, before: Any, after: Any, hide: Callable[[Any], Any]) -> dict[str, Any]:
        """``{key: {sub-field: [old, new]}}`` for the entries that differ (an added entry has
        ``None`` as every old value, a removed one as every new value); ``hide`` replaces the
        values of personal sub-fields."""
        old = {e.get(self.key): e for e in before or [] if isinstance(e, dict)}
        new = {e.get(self.key): e for e in after or [] if isinstance(e, dict)}
        result: dict[str, Any] = {}
        for key in [*old, *(k for k in new if k not in old)]:
            a, b = old.get(key) or {}, new.get(key) or {}
            changed: dict[str, list[Any]] = {}
            for sub in sorted(a.keys() | b.keys()):
                va, vb = a.get(sub), b.get(sub)
                if va != vb:
                    if sub in self.personal:
                        va = None if va is None else hide(va)
                        vb = None if vb is None else hide(vb)
                    changed[sub] = [va, vb]
            if changed:
                result[str(key)] = changed
        return result


def withhold_parts(entries: Any, parts: frozenset[str], replacement: Any) -> Any:
    """Records entries with the values of the sub-fields ``parts`` replaced (an entry that
    is not an object, which the engine never stores, is replaced whole)."""
    if not isinstance(entries, list):
        return replacement
    return [
        {k: replacement if k in parts and v is not None else v for k, v in e.items()}
        if isinstance(e, dict)
        else replacement
        for e in entries
    ]
