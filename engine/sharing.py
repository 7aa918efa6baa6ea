"""Whether personal data may leave the NPM: consent and do-no-harm, decided in one place.

OPCAT art. 21(2): personal data of a person deprived of liberty leaves the NPM only with that
person's express consent for the use, or, exceptionally, under a documented do-no-harm
decision of the head that names the one independent body receiving which fields, for which
use, until when. :func:`may_share` is the only function that decides it: the engine calls it
for a transition that declares ``shares:``, the notification redaction for every message
(when it is written and again when it is sent). It is pure: no I/O, no clock.

The data it reads has a fixed shape (``validate`` checks it, see
:mod:`opcatflow.engine.sharing_checks`):

- ``persons`` (records, one entry per person whose data the instance holds): ``uses`` (the
  uses consented to), ``consent_obtained_by``, ``consent_obtained_on``, ``consent_how``,
  ``consent_withdrawn_on``;
- ``do_no_harm`` (records, append-only, written by the head only): ``ground``,
  ``recipient`` (a body id), ``fields``, ``use``, ``decided_on``, ``expires_on``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol, get_args

from opcatflow.engine.calendar import WorkingCalendar

# The uses a person may consent to; each workflow lists the ones it has.
USES = ("refer", "share_with_management", "escalate", "report_to_authority", "publish")
# Uses that only consent covers: a do-no-harm decision never makes data public, and never
# tells the management of the place (whom the person may need protecting from).
CONSENT_ONLY = frozenset({"publish", "share_with_management"})
# The seed's exceptional circumstances.
GROUNDS = ("serious_violation_reprisal_risk", "unable_to_consent")
# Kinds of body; a body of kind management is never independent of the place.
BodyKind = Literal[
    "management",
    "authority",
    "ombudsperson",
    "nhri",
    "prosecutor",
    "medical_service",
    "complaints_body",
    "monitoring_body",
    "international_body",
    "other",
]
BODY_KINDS: tuple[str, ...] = get_args(BodyKind)

PERSONS = "persons"
DECISIONS = "do_no_harm"
# The actor's free-text reason for a transition: people type names into it, so redaction
# treats it as one more personal field.
REASON = "reason"

CONSENT_PARTS = (
    "uses",
    "consent_obtained_by",
    "consent_obtained_on",
    "consent_how",
    "consent_withdrawn_on",
)
DECISION_PARTS = ("ground", "recipient", "fields", "use", "decided_on", "expires_on")


@dataclass(frozen=True)
class Body:
    """A body that may receive data: an active entry of the authority register with
    ``receives_shared_data`` (:mod:`opcatflow.engine.register_bodies`)."""

    id: str
    name: str
    kind: str
    independent: bool

    @property
    def may_receive_without_consent(self) -> bool:
        return self.independent and self.kind != "management"


class Bodies(Protocol):
    """The bodies that may receive data, by id: read from the authority register by the
    engine (in the transaction of the change), or a plain dict in a pure test."""

    def get(self, body_id: str, /) -> Body | None: ...

    def __contains__(self, body_id: object, /) -> bool: ...


NOT_A_BODY = (
    "is not a body that may receive data (an active entry of the authority register with "
    "receives_shared_data)"
)


_NO_BODIES: dict[str, Body] = {}  # never written: the policy of no store knows no body


@dataclass(frozen=True)
class Policy:
    """What the NPM's settings tell the decision step (``Settings.policy``).

    Attributes:
        bodies: the bodies that may receive data, by id (the engine gives the authority
            register's, read in the transaction of each change).
        acknowledge_on_receipt: complaint channels where receipt is the acknowledgement.
        factual_check_by_kind: per kind of visit, whether its draft goes to the authorities
            for a factual check unless the head decides otherwise (a kind not listed: yes).
        required_expertise: per type of place, the fields of expertise a visit team holds
            before the visit starts (a type not listed: none).
        calendar: the NPM's calendar, whose time zone says which day it is (rules read
            register entries as they hold on that day: :meth:`today`).
    """

    bodies: Bodies = field(default_factory=lambda: _NO_BODIES)
    acknowledge_on_receipt: frozenset[str] = frozenset({"during_visit", "in_person"})
    factual_check_by_kind: Mapping[str, bool] = field(default_factory=dict)
    required_expertise: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar, compare=False)

    def today(self, now: datetime) -> date:
        """The NPM's day at the instant ``now`` (in its time zone)."""
        return self.calendar.local_date(now)

    def with_bodies(self, bodies: Bodies) -> Policy:
        """This policy with other ``bodies``. Built positionally: it runs on every fire, and
        ``dataclasses.replace`` (or ``copy.copy``, through ``__reduce_ex__``) costs several
        times more."""
        return Policy(
            bodies,
            self.acknowledge_on_receipt,
            self.factual_check_by_kind,
            self.required_expertise,
            self.calendar,
        )


@dataclass(frozen=True)
class Verdict:
    """What :func:`may_share` decided for one use, recipient and set of fields.

    Attributes:
        shown: the requested fields that may be shared (every field carrying no personal
            data, and the personal ones consent or a decision covers).
        withheld: the requested personal fields holding data that may not be shared.
        why: why they are withheld, in words that name no person (empty when none are).
    """

    shown: frozenset[str]
    withheld: frozenset[str]
    why: str = ""

    @property
    def allowed(self) -> bool:
        return not self.withheld


def _filled(value: Any) -> bool:
    return value not in (None, "", [], {})


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _entries(value: Any) -> list[Mapping[str, Any]]:
    return [e for e in value or [] if isinstance(e, Mapping)] if isinstance(value, list) else []


def consent_is_active(person: Mapping[str, Any], use: str, today: date) -> bool:
    """A person's consent covers ``use`` today: given for it, by whom, when and how recorded,
    obtained no later than today and not withdrawn (a withdrawal counts from its day)."""
    if use not in (person.get("uses") or []):
        return False
    if not (_filled(person.get("consent_obtained_by")) and _filled(person.get("consent_how"))):
        return False
    obtained = _day(person.get("consent_obtained_on"))
    if obtained is None or obtained > today:
        return False
    withdrawn = _day(person.get("consent_withdrawn_on"))
    return withdrawn is None or withdrawn > today


def decision_covers(
    decision: Mapping[str, Any],
    *,
    use: str,
    recipient: str | None,
    field: str,
    bodies: Bodies,
    today: date,
) -> bool:
    """A do-no-harm decision lets ``field`` go to ``recipient`` for ``use`` today: the use
    is not consent-only, the body is known and independent, the decision names both and the
    field, and today is on or after its date and before its expiry day."""
    if use in CONSENT_ONLY or recipient is None:
        return False
    body = bodies.get(recipient)
    if body is None or not body.may_receive_without_consent:
        return False
    if decision.get("ground") not in GROUNDS:
        return False
    if decision.get("use") != use or decision.get("recipient") != recipient:
        return False
    if field not in (decision.get("fields") or []):
        return False
    decided, expires = _day(decision.get("decided_on")), _day(decision.get("expires_on"))
    return decided is not None and expires is not None and decided <= today < expires


def may_share(
    data: Mapping[str, Any],
    *,
    use: str,
    recipient: str | None,
    fields: Iterable[str],
    personal: Iterable[str],
    bodies: Bodies,
    today: date,
) -> Verdict:
    """Decide which of ``fields`` may go to ``recipient`` (a body id, or ``None`` for no
    particular body) for ``use``.

    A field carrying no personal data (not in ``personal``, or empty) is always shown. The
    personal ones are shown when every person recorded in ``persons`` has an active consent
    for the use (and at least one is recorded: data of nobody recorded has nobody's
    consent), or else one by one, each when an active do-no-harm decision covers it.
    """
    personal = frozenset(personal)
    requested = frozenset(fields)
    carried = frozenset(f for f in requested if f in personal and _filled(data.get(f)))
    if not carried:
        return Verdict(requested, frozenset())
    persons = _entries(data.get(PERSONS))
    consenting = [p for p in persons if consent_is_active(p, use, today)]
    if persons and len(consenting) == len(persons):
        return Verdict(requested, frozenset())
    decisions = _entries(data.get(DECISIONS))
    covered = frozenset(
        f
        for f in carried
        if any(
            decision_covers(d, use=use, recipient=recipient, field=f, bodies=bodies, today=today)
            for d in decisions
        )
    )
    withheld = carried - covered
    if not withheld:
        return Verdict(requested, frozenset())
    return Verdict(requested - withheld, withheld, _why(use, recipient, persons, consenting))


def _why(
    use: str,
    recipient: str | None,
    persons: list[Mapping[str, Any]],
    consenting: list[Mapping[str, Any]],
) -> str:
    if not persons:
        consent = "nobody is recorded in persons, so nobody consented"
    else:
        missing = len(persons) - len(consenting)
        consent = f"{missing} of {len(persons)} person(s) have no active consent for it"
    if use in CONSENT_ONLY:
        return f"{consent}, and {use!r} rests on consent only (never on a do-no-harm decision)"
    to = f"to {recipient!r}" if recipient else "to no named body"
    return f"{consent}, and no active do-no-harm decision covers these fields {to} for {use!r}"


def decision_problems(
    before: Any,
    after: Any,
    *,
    bodies: Bodies,
    fields: Iterable[str],
) -> list[str]:
    """Why the do-no-harm decisions added or changed from ``before`` to ``after`` may not be
    recorded (empty when they may)."""
    old = {str(e.get("n")): e for e in _entries(before)}
    known = frozenset(fields)
    problems: list[str] = []
    for entry in _entries(after):
        key = str(entry.get("n"))
        if old.get(key) == entry:
            continue
        label = f"{DECISIONS}[{key}]"
        recipient = entry.get("recipient")
        body = bodies.get(str(recipient)) if recipient is not None else None
        if body is None:
            problems.append(f"{label}.recipient: {recipient!r} {NOT_A_BODY}")
        elif not body.may_receive_without_consent:
            problems.append(
                f"{label}.recipient: {body.id!r} ({body.kind}) is not independent of the place; "
                "a do-no-harm decision names an independent body, never the management or "
                "staff of the place concerned"
            )
        if entry.get("use") in CONSENT_ONLY:
            problems.append(
                f"{label}.use: {entry.get('use')!r} rests on consent only, never on a "
                "do-no-harm decision"
            )
        unknown = [str(f) for f in entry.get("fields") or [] if f not in known]
        if unknown:
            problems.append(f"{label}.fields: unknown field(s) {', '.join(unknown)}")
        decided, expires = _day(entry.get("decided_on")), _day(entry.get("expires_on"))
        if decided is not None and expires is not None and expires <= decided:
            problems.append(f"{label}.expires_on: must be after decided_on")
    return problems
