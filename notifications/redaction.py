"""Which personal fields a recipient may see (OPCAT art. 21(2); docs/consent.md).

A recipient of a message stands for a body (``body``: an id of the settings ``bodies``) and
for the uses it receives data for (``consent_uses``), as the recipients directory or the
definition's ``address`` recipient says. For each of those uses, the engine's one rule,
:func:`opcatflow.engine.sharing.may_share`, says which personal fields may go to that body:
all of them when every person recorded consented to the use, else those a do-no-harm
decision names for that body and use. A recipient sees the union over its uses; a recipient
with no use sees no personal field. Nothing here decides on its own.

The actor's free-text reason for a transition is treated as one more personal field,
``reason`` (people type names into it). Webhooks never receive personal fields or the reason.

A message is redacted when it is written, and checked again when it is sent
(:func:`still_shown`): a consent withdrawn or a decision expired in between withholds what it
covered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from opcatflow.engine.records import withhold_parts
from opcatflow.engine.sharing import REASON, Policy, may_share

WITHHELD = "[withheld]"


@dataclass(frozen=True)
class Audience:
    """Who a message goes to, as far as redaction is concerned.

    Attributes:
        body: the body (an id of the settings ``bodies``) the recipient belongs to.
        consent_uses: the uses the recipient receives personal data for.
        machine: a webhook: never sees personal fields.
    """

    body: str | None = None
    consent_uses: frozenset[str] = field(default_factory=frozenset)
    machine: bool = False


NOBODY = Audience()


def shown_fields(
    data: Mapping[str, Any],
    personal: Iterable[str],
    audience: Audience,
    policy: Policy,
    today: date,
) -> frozenset[str]:
    """The fields of ``personal`` (``reason`` included when the reason is in ``data``) that
    ``audience`` may see: the union, over its uses, of what :func:`may_share` allows."""
    personal = frozenset(personal)
    if audience.machine:
        return frozenset()
    shown: set[str] = set()
    for use in sorted(audience.consent_uses):
        verdict = may_share(
            data,
            use=use,
            recipient=audience.body,
            fields=personal,
            personal=personal,
            bodies=policy.bodies,
            today=today,
        )
        shown |= verdict.shown
    return frozenset(shown)


@dataclass(frozen=True)
class Redacted:
    """Instance data as one recipient may see it.

    Attributes:
        shown: the personal fields (and ``reason``) shown in clear, which the dispatcher
            checks again before sending.
    """

    data: dict[str, Any]
    withheld: tuple[str, ...]
    reason_allowed: bool
    shown: frozenset[str] = frozenset()


def hide(value: Any, parts: frozenset[str] | None) -> Any:
    """A value as a recipient who may not see it gets it."""
    if value is None:
        return None
    if parts is not None:
        return withhold_parts(value, parts, WITHHELD)
    return [WITHHELD] if isinstance(value, list) else WITHHELD


def redact(
    data: Mapping[str, Any],
    fields: Iterable[str],
    personal: Iterable[str],
    audience: Audience,
    *,
    policy: Policy,
    today: date,
    reason: str | None = None,
    parts: Mapping[str, frozenset[str]] | None = None,
) -> Redacted:
    """Every declared field (``None`` when unset), with the personal ones the audience may not
    see replaced by :data:`WITHHELD` (``[WITHHELD]`` for a list). For a records field named
    in ``parts``, only its personal sub-fields are replaced, in every entry."""
    personal = frozenset(personal)
    considered = {**data, REASON: reason} if reason is not None else data
    allowed = shown_fields(considered, personal | {REASON}, audience, policy, today)
    values: dict[str, Any] = {}
    withheld = []
    for name in fields:
        value = data.get(name)
        if name in personal and name not in allowed:
            if value not in (None, "", []):
                withheld.append(name)
            value = hide(value, (parts or {}).get(name))
        values[name] = value
    reason_allowed = REASON in allowed and not audience.machine
    shown = frozenset(n for n in allowed if n in personal and data.get(n) not in (None, "", []))
    if reason is not None and reason_allowed:
        shown |= {REASON}
    return Redacted(values, tuple(withheld), reason_allowed, shown)


def still_shown(
    data: Mapping[str, Any],
    shown: Iterable[str],
    audience: Audience,
    policy: Policy,
    today: date,
) -> frozenset[str]:
    """Of the fields a queued message shows in clear, those the audience may still see
    with the instance's data as it is now (``data`` holds ``reason`` when the message does)."""
    shown = frozenset(shown)
    return shown & shown_fields(data, shown, audience, policy, today)
