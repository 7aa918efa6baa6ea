"""Reading registers: an entry by id (following merges), as it was on a given day, and the
list of a register's entries.

An entry's descriptive values change over time: the register's ``amend`` trigger takes a
``valid_from`` day, and its action keeps the values it replaces in the ``history`` records
field (one entry per changed field: ``valid_from``, ``field``, ``before`` as JSON). So the
values that held on a day are the stored ones with every amendment valid after that day
undone, newest first (:func:`value_at`).

An amendment may be entered ahead of its day (a place renamed from next month): its values
are stored at once, but they hold only from ``valid_from``. So whatever reads an entry "now"
reads it as it holds on the NPM's current day (:func:`current_values`, with the engine's
clock in the NPM's time zone), never the stored values as such.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from opcatflow.engine.errors import InstanceNotFound
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.refs import ACTIVE, MERGED, MERGED_INTO, RETIRED, RETIRED_ON
from opcatflow.engine.registry import Lookup

if TYPE_CHECKING:
    from opcatflow.engine.compiled import CompiledWorkflow
    from opcatflow.engine.loader import Catalog
    from opcatflow.engine.ports import Store

HISTORY = "history"
VALID_FROM = "valid_from"
MAX_MERGES = 64  # a chain of merges longer than this is a loop someone wrote by hand


@dataclass(frozen=True, slots=True)
class RegisterEntry:
    """One register entry as read: ``data`` (and ``title``) as they held on the day asked
    for, or now; ``retired``: it was retired (a place closed) by then."""

    id: str
    register: str
    state: str
    title: str
    data: Mapping[str, Any]
    retired: bool

    def as_ref(self) -> dict[str, str]:
        """How views show a reference to it."""
        return {"id": self.id, "title": self.title}


def _lookup_in(uow: UnitOfWork) -> Lookup:
    """Read an instance in this unit of work, or None when there is none."""

    def lookup(instance_id: str) -> Instance | None:
        try:
            return uow.instances.get(instance_id)
        except InstanceNotFound:
            return None

    return lookup


def follow_merges(lookup: Lookup, entry_id: str) -> Instance | None:
    """The entry ``entry_id`` names now: itself, or the entry it was merged into (and so
    on); ``None`` if there is no such instance."""
    entry = lookup(entry_id)
    seen = {entry_id}
    while entry is not None and entry.state == MERGED:
        target = entry.data.get(MERGED_INTO)
        if not isinstance(target, str) or target in seen or len(seen) > MAX_MERGES:
            return entry
        seen.add(target)
        entry = lookup(target)
    return entry


def value_at(data: Mapping[str, Any], day: date) -> dict[str, Any]:
    """The values ``data`` (an entry's current data) held on ``day``: every amendment valid
    from a later day undone, newest first."""
    values = dict(data)
    for change in reversed(data.get(HISTORY) or []):
        if date.fromisoformat(change[VALID_FROM]) <= day:
            break  # amendments are in valid_from order (the amend guard keeps them so)
        before = json.loads(change["before"])
        if before is None:
            values.pop(change["field"], None)
        else:
            values[change["field"]] = before
    return values


def current_values(data: Mapping[str, Any], today: date) -> Mapping[str, Any]:
    """The values of an entry (``data``, as stored) that hold on ``today``, the NPM's current
    day: what every reader of an entry "now" must read, since an amendment entered ahead of
    its ``valid_from`` is stored at once. ``data`` itself when no amendment is still to come
    (the common case costs one look at the last amendment)."""
    history = data.get(HISTORY)
    if not history or date.fromisoformat(history[-1][VALID_FROM]) <= today:
        return data
    return value_at(data, today)


def retirement_refusal(
    wf: CompiledWorkflow, state: str, data: Mapping[str, Any], today: Callable[[], date]
) -> str | None:
    """Why a register entry may not be retired now: its ``retired_on`` is still to come. An
    entry is retired from the day it closed, so it stays active (and may be referred to) until
    then; the closure is recorded on or after that day. ``today`` is asked only for a
    retirement (this runs on every fire)."""
    if state != RETIRED or wf.definition.as_register is None:
        return None
    day = data.get(RETIRED_ON)
    if day is None:
        return None
    current = today()
    if date.fromisoformat(str(day)) <= current:
        return None
    return (
        f"{RETIRED_ON}: {day} is still to come (today is {current}): record it on or after that "
        "day; until then the entry stays active and may be referred to"
    )


def was_retired(entry: Instance, day: date | None) -> bool:
    if entry.state != RETIRED:
        return False
    retired_on = entry.data.get(RETIRED_ON)
    return day is None or retired_on is None or date.fromisoformat(retired_on) <= day


def entry_of(
    wf: CompiledWorkflow, entry: Instance, today: date, day: date | None = None
) -> RegisterEntry:
    """``entry`` (an instance of the register ``wf``) as read on ``day``, or now (``day``
    None): its values those of ``today`` (the NPM's current day, :func:`current_values`),
    retired as its state says."""
    spec = wf.definition.as_register
    assert spec is not None
    data = current_values(entry.data, today if day is None else day)
    title = data.get(spec.title_field)
    return RegisterEntry(
        entry.id,
        entry.workflow_id,
        entry.state,
        "" if title is None else str(title),
        data,
        was_retired(entry, day),
    )


def retired_words(workflows: Iterable[CompiledWorkflow]) -> dict[str, str]:
    """Register -> what it calls retiring an entry, for refusals: the label of its
    ``retired`` state, lowercased (a place is "closed"), else "retired"."""
    words = {}
    for wf in workflows:
        if wf.definition.as_register is None:
            continue
        state = wf.definition.states.get(RETIRED)
        label = state.label if state is not None else None
        words[wf.id] = (label or RETIRED).lower()
    return words


class _Engine(Protocol):
    """What :class:`Registers` reads of the engine (the engine imports this module)."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def store(self) -> Store: ...

    def today(self) -> date: ...

    def workflow(self, workflow: str, version: int | None = None) -> CompiledWorkflow: ...


class Registers:
    """``engine.registers``: read register entries through the engine's store."""

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine

    def _register(self, register: str) -> CompiledWorkflow:
        wf = self._engine.catalog.get(register)  # raises WorkflowNotFound
        if wf.definition.as_register is None:
            raise ValueError(f"workflow {register!r} is not a register")
        return wf

    def resolve(self, register: str, entry_id: str, at: date | None = None) -> RegisterEntry | None:
        """The entry ``entry_id`` names now (following merges), as it was on ``at`` (a day
        in the NPM's time zone; default: now, with the values of the NPM's current day);
        ``None`` if it is not an entry of ``register``.

        Raises:
            WorkflowNotFound: no such workflow; ValueError: it is no register.
        """
        wf = self._register(register)
        with self._engine.store.read() as uow:
            entry = follow_merges(_lookup_in(uow), entry_id)
        if entry is None or entry.workflow_id != register:
            return None
        today = self._engine.today()
        return entry_of(self._engine.workflow(wf.id, entry.workflow_version), entry, today, at)

    def titles(self, entry_ids: Iterable[str]) -> dict[str, RegisterEntry]:
        """The entries these ids name now (following merges), by the id asked for, read in
        one transaction, as they hold today: what views show for references. Ids that name
        no register entry are left out."""
        found: dict[str, RegisterEntry] = {}
        today = self._engine.today()
        with self._engine.store.read() as uow:
            lookup = _lookup_in(uow)
            for entry_id in dict.fromkeys(entry_ids):
                entry = follow_merges(lookup, entry_id)
                if entry is None:
                    continue
                wf = self._engine.workflow(entry.workflow_id, entry.workflow_version)
                if wf.definition.as_register is not None:
                    found[entry_id] = entry_of(wf, entry, today)
        return found

    def entries(self, register: str, include_retired: bool = False) -> list[RegisterEntry]:
        """Every active entry of ``register`` (and its retired ones, if asked), oldest
        first, as they hold today; merged entries are never listed (they live on in the
        entry they joined)."""
        wf = self._register(register)
        states = (ACTIVE, RETIRED) if include_retired else (ACTIVE,)
        found: list[Instance] = []
        with self._engine.store.read() as uow:
            for state in states:
                after = None
                while True:
                    page = uow.instances.query(
                        workflow=wf.id, state=state, where=None, parent_id=None,
                        after=after, limit=1000,
                    )  # fmt: skip
                    found.extend(page)
                    if len(page) < 1000:
                        break
                    after = (page[-1].created_at, page[-1].id)
        found.sort(key=lambda e: (e.created_at, e.id))
        today = self._engine.today()
        return [entry_of(self._engine.workflow(wf.id, e.workflow_version), e, today) for e in found]
