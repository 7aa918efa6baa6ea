"""Which personal fields a recipient may see (OPCAT art. 21(2); PROCESSES.md cross-cutting 1).

Personal data of a person deprived of liberty leaves the system in a notification only when
the instance records, for that recipient, either

- **consent**: the ``consent`` field (a list) holds a use that the recipient is covered by.
  Which uses cover a recipient is said where the recipient is defined: ``consent_uses`` of a
  person or webhook in the recipients directory, or of an ``address`` recipient in the
  definition. A use covers every personal field; or
- **a do-no-harm decision**: every one of ``dnh_decided_by``, ``dnh_reason``,
  ``dnh_recipient`` and ``dnh_shared`` is filled in, and ``dnh_recipient`` (text, or a list of
  text) names the recipient's ``body`` (compared ignoring case and spacing). If ``dnh_shared``
  is a list, it names the fields shared; if it is text, the decision covers every personal
  field (it says what is shared in words, which no program can read).

Anything else withholds every personal field. The actor's free-text reason for a transition
is treated as personal data too, in every workflow (people type names into it): it reaches
only a recipient that consent or a do-no-harm decision covers (a decision that lists what it
shares must list ``reason``). Webhooks never receive personal fields or the reason, whatever
the instance records.
Workflows that use other field names pass their own :class:`ConsentConvention`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opcatflow.engine.records import withhold_parts

WITHHELD = "[withheld]"


@dataclass(frozen=True)
class ConsentConvention:
    """The instance data fields redaction reads (see the module docstring)."""

    consent: str = "consent"
    dnh_decided_by: str = "dnh_decided_by"
    dnh_reason: str = "dnh_reason"
    dnh_recipient: str = "dnh_recipient"
    dnh_shared: str = "dnh_shared"
    reason_is_personal: bool = True

    @property
    def dnh_fields(self) -> tuple[str, str, str, str]:
        return (self.dnh_decided_by, self.dnh_reason, self.dnh_recipient, self.dnh_shared)


@dataclass(frozen=True)
class Audience:
    """Who a message goes to, as far as redaction is concerned.

    Attributes:
        body: the organisation the recipient belongs to, matched against a do-no-harm
            decision's recipient.
        consent_uses: consent uses that cover sending personal data to this recipient.
        machine: a webhook: never sees personal fields.
    """

    body: str | None = None
    consent_uses: frozenset[str] = field(default_factory=frozenset)
    machine: bool = False


NOBODY = Audience()


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


REASON = "reason"


def coverage(
    data: Mapping[str, Any],
    audience: Audience,
    convention: ConsentConvention = ConsentConvention(),
) -> frozenset[str] | None:
    """What the instance's consent or do-no-harm decision lets ``audience`` see: ``None`` for
    everything, a set of field names (and ``reason``) for a decision that lists them, an
    empty set for nothing."""
    if audience.machine:
        return frozenset()
    consented = {str(u) for u in _as_list(data.get(convention.consent))}
    if consented & audience.consent_uses:
        return None
    if audience.body and all(data.get(name) for name in convention.dnh_fields):
        named = {_norm(str(r)) for r in _as_list(data.get(convention.dnh_recipient))}
        if _norm(audience.body) in named:
            shared = data.get(convention.dnh_shared)
            return frozenset(str(s) for s in shared) if isinstance(shared, list) else None
    return frozenset()


def allowed_fields(
    data: Mapping[str, Any],
    personal: Iterable[str],
    audience: Audience,
    convention: ConsentConvention = ConsentConvention(),
) -> frozenset[str]:
    """The personal fields ``audience`` may see in a notification about an instance whose data
    is ``data``."""
    personal = frozenset(personal)
    covered = coverage(data, audience, convention)
    return personal if covered is None else personal & covered


@dataclass(frozen=True)
class Redacted:
    """Instance data as one recipient may see it."""

    data: dict[str, Any]
    withheld: tuple[str, ...]
    reason_allowed: bool


def redact(
    data: Mapping[str, Any],
    fields: Iterable[str],
    personal: Iterable[str],
    audience: Audience,
    convention: ConsentConvention = ConsentConvention(),
    *,
    parts: Mapping[str, frozenset[str]] | None = None,
) -> Redacted:
    """Every declared field (``None`` when unset), with the personal ones the audience may not
    see replaced by :data:`WITHHELD` (``[WITHHELD]`` for a list). For a records field named
    in ``parts``, only its personal sub-fields are replaced, in every entry."""
    personal = frozenset(personal)
    covered = coverage(data, audience, convention)
    allowed = personal if covered is None else personal & covered
    values: dict[str, Any] = {}
    withheld = []
    for name in fields:
        value = data.get(name)
        if name in personal and name not in allowed:
            if value not in (None, "", []):
                withheld.append(name)
            if parts and name in parts:
                value = None if value is None else withhold_parts(value, parts[name], WITHHELD)
            else:
                value = (
                    [WITHHELD] if isinstance(value, list) else (None if value is None else WITHHELD)
                )
        values[name] = value
    if audience.machine:
        reason_allowed = False
    elif convention.reason_is_personal:
        reason_allowed = covered is None or REASON in covered
    else:
        reason_allowed = True
    return Redacted(values, tuple(withheld), reason_allowed)
