"""The bodies that may receive personal data, read from the authority register.

A body is an active entry of the bundled ``authority`` register whose
``receives_shared_data`` is true; its ``independent`` flag says whether a do-no-harm
decision may name it (a body of kind ``management`` never may). Entries keep the ids the
settings' ``bodies`` had (``police_ombudsperson``...), so stored decisions and referrals
still name them. The engine reads them in the transaction of each change, through the same
lookup rules use, so a body retired a moment ago is refused at once. An entry is read as it
holds on the NPM's day of the change (an amendment entered ahead of its day, such as
``receives_shared_data`` set to false from next month, takes effect on that day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from opcatflow.engine.calendar import WorkingCalendar
from opcatflow.engine.errors import InstanceNotFound
from opcatflow.engine.instance import Instance
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.refs import ACTIVE
from opcatflow.engine.registers import current_values
from opcatflow.engine.registry import Lookup
from opcatflow.engine.sharing import Body

AUTHORITY = "authority"
RECEIVES = "receives_shared_data"


@dataclass(frozen=True, slots=True)
class RegisterBodies:
    """:class:`~opcatflow.engine.sharing.Bodies` over a lookup of register entries, read as
    they hold on the NPM's day at ``now`` (in the time zone of ``calendar``)."""

    lookup: Lookup
    now: datetime
    calendar: WorkingCalendar

    def get(self, body_id: str, /) -> Body | None:
        if not isinstance(body_id, str):
            return None
        entry = self.lookup(body_id)
        if entry is None or entry.workflow_id != AUTHORITY or entry.state != ACTIVE:
            return None
        data = current_values(entry.data, self.calendar.local_date(self.now))
        if data.get(RECEIVES) is not True:
            return None
        return Body(
            entry.id,
            str(data.get("name") or entry.id),
            str(data.get("kind") or "other"),
            data.get("independent") is True,
        )

    def __contains__(self, body_id: object, /) -> bool:
        return isinstance(body_id, str) and self.get(body_id) is not None


def bodies_of(uow: UnitOfWork, now: datetime, calendar: WorkingCalendar) -> RegisterBodies:
    """The bodies as the unit of work ``uow`` reads them on the NPM's day at ``now``
    (outside the engine's own writes: the notifications' outbox hook, the dispatcher's check
    before sending)."""

    def lookup(instance_id: str) -> Instance | None:
        try:
            return uow.instances.get(instance_id)
        except InstanceNotFound:
            return None

    return RegisterBodies(lookup, now, calendar)
