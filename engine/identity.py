"""Instance ids as people type them: the full id, or a unique prefix of it.

Ids are UUIDs, too long to retype and too long for a narrow table; a person may give the
first characters instead. A prefix is accepted when exactly one id starts with it and it has
at least :data:`MIN_PREFIX` characters (fewer would land on a case by chance once an NPM has
a few thousand). The store answers from the id's index (see
:meth:`~opcatflow.engine.ports.InstanceRepository.ids_starting_with`).
"""

from __future__ import annotations

from opcatflow.engine.errors import AmbiguousId, IdTooShort, InstanceNotFound
from opcatflow.engine.ports import InstanceRepository

MIN_PREFIX = 8
"""The fewest characters of an id a prefix may have."""

LISTED = 10
"""How many candidates an ambiguous prefix lists."""


def resolve_id(instances: InstanceRepository, text: str) -> str:
    """The one instance id that is ``text`` or starts with it.

    Raises:
        IdTooShort: fewer than :data:`MIN_PREFIX` characters.
        InstanceNotFound: no id starts with it.
        AmbiguousId: several do (the first :data:`LISTED` are named).
    """
    given = text.strip()
    if len(given) < MIN_PREFIX:
        raise IdTooShort(given, MIN_PREFIX)
    found: list[str] = []
    for prefix in dict.fromkeys((given, given.lower())):  # ids are lowercase UUIDs
        found = instances.ids_starting_with(prefix, LISTED + 1)
        if prefix in found:
            return prefix  # a full id, even if a longer id starts with it
        if found:
            break
    if not found:
        raise InstanceNotFound(given)
    if len(found) == 1:
        return found[0]
    raise AmbiguousId(given, found[:LISTED], more=len(found) > LISTED)
