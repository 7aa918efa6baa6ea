"""The recipients directory's people, derived from the person register.

Who works at the NPM, their email and the workflow roles they hold are kept once, in the
person register (workflow ``person``). :class:`PersonRegisterDirectory` reads its active
entries (re-read at most every ``interval`` seconds) and puts them in front of the
recipients directory file, which keeps what the register does not hold:

- webhook endpoints and the defaults (locale, channel);
- recipients outside the NPM (an authority's focal point with its ``body`` and
  ``consent_uses``, a duty desk reading the log);
- for a person of the register (same id), how to reach them: ``locale``, ``channel``,
  ``body``, ``consent_uses`` and ``active`` (the register has no locale). Their name, email
  and roles always come from the register.

A person's directory id is their register entry id, so assignees (``assigned_to``) name
entries of the register. An entry is read as it holds on the NPM's current day
(:class:`PersonRegister`), so roles or an email amended from a later day count from that day.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import Store
from opcatflow.engine.refs import ACTIVE
from opcatflow.engine.registers import current_values
from opcatflow.notifications.directory import Directory, DirectorySource, DirectorySpec, Person

PERSON = "person"
PAGE = 500


@dataclass(frozen=True)
class PersonRegister:
    """Where the people come from: the person register of ``store``, read as it holds on
    ``today()``, the NPM's current day (``Engine.today``)."""

    store: Store
    today: Callable[[], date]


def register_people(
    entries: Iterator[Instance] | list[Instance], today: date
) -> dict[str, dict[str, Any]]:
    """Entry id -> what the register says of that person (name, email, roles) on ``today``."""
    people = {}
    for e in entries:
        data = current_values(e.data, today)
        people[e.id] = {
            "name": data.get("name"),
            "email": data.get("email"),
            "roles": data.get("roles"),
        }
    return people


def merged_directory(base: Directory, people: Mapping[str, Mapping[str, Any]]) -> Directory:
    """``base`` with the register's people in front: name, email and roles from the
    register; how to reach them from ``base`` when it lists the same id. An entry the
    directory cannot hold (an invalid email address) is left out."""
    listed = []
    for person_id, said in people.items():
        own = base.people.get(person_id)
        values = own.model_dump() if own is not None else {"id": person_id}
        values.update({k: v for k, v in said.items() if v is not None})
        try:
            listed.append(Person.model_validate(values))
        except ValidationError:
            continue  # the register checks its own fields; a bad address reaches nobody
    others = [p for p in base.spec.people if p.id not in people]
    spec = DirectorySpec(
        defaults=base.defaults, people=[*listed, *others], webhooks=base.spec.webhooks
    )
    return Directory(spec, list(base.endpoints.values()))


class PersonRegisterDirectory:
    """A :class:`DirectorySource`: the person register's people over a directory file.

    Args:
        register: the store holding the register, and the NPM's current day.
        base: the recipients directory file (webhooks, defaults, outside recipients).
        interval: seconds between reads of the register.
        timer: monotonic seconds.
    """

    def __init__(
        self,
        register: PersonRegister,
        base: DirectorySource,
        *,
        interval: float = 1.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.register = register
        self.base = base
        self.interval = interval
        self.timer = timer
        self._lock = threading.Lock()
        self._people: dict[str, dict[str, Any]] | None = None
        self._read_at = 0.0
        self._built: tuple[Directory, Directory] | None = None  # (base, merged)

    def current(self) -> Directory:
        """The directory: the register re-read once ``interval`` has passed, merged again
        when it or the file changed."""
        with self._lock:
            now = self.timer()
            if self._people is None or now - self._read_at >= self.interval:
                entries = list(self._entries())
                self._people = register_people(entries, self.register.today())
                self._read_at = now
                self._built = None
            base = self.base.current()
            if self._built is None or self._built[0] is not base:
                self._built = (base, merged_directory(base, self._people))
            return self._built[1]

    def _entries(self) -> Iterator[Instance]:
        after: tuple[datetime, str] | None = None
        while True:
            with self.register.store.read() as uow:
                page = uow.instances.query(workflow=PERSON, state=ACTIVE, after=after, limit=PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after = (page[-1].created_at, page[-1].id)
