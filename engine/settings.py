"""The NPM's settings: its calendar (time zone, holidays) and the durations of its deadlines.

The shipped defaults are ``opcatflow/config/opcatflow.yaml`` (package data). An NPM writes its
own file with only what differs; it is read over the defaults:

.. code-block:: yaml

    calendar: {timezone: Europe/Paris, country: FR}
    deadlines:
      visit.factual_check: 15 working days   # overrides a known key (typos are refused)
    custom_deadlines:
      visit.translation: 20 days             # a key of the NPM's own

Definitions refer to a key as ``due: config:visit.factual_check``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opcatflow.engine.calendar import WorkingCalendar
from opcatflow.engine.durations import SETTING_KEY, Duration, Period, at_least, parse_duration
from opcatflow.engine.errors import DefinitionError, OpcatflowError, Problem
from opcatflow.engine.sharing import Policy
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.validation import pydantic_problems
from opcatflow.engine.yamlsource import Located, load_yaml

DEFAULTS_RESOURCE = ("opcatflow.config", "opcatflow.yaml")


class SettingsError(OpcatflowError):
    """A settings file is invalid; ``problems`` lists each one as ``path:line:column``."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid settings: " + "; ".join(str(p) for p in self.problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarSpec(_Model):
    """Where working days are counted."""

    timezone: str = Field("UTC", description="IANA time zone of the NPM, e.g. Europe/Paris.")
    country: str | None = Field(
        None, description="ISO 3166 country code for public holidays (the holidays package)."
    )
    subdivision: str | None = Field(None, description="Region, state or canton code.")
    weekend: list[int] | None = Field(
        None, description="Weekday numbers (Monday 0 ... Sunday 6); default: the country's."
    )
    closures: dict[date, str] = Field(
        default_factory=dict, description="Days the NPM itself is closed: date -> name."
    )


Channel = Literal["during_visit", "in_person", "mail", "phone", "email", "web_form"]


def _receipt_channels() -> list[Channel]:
    return ["during_visit", "in_person"]


class ComplaintSpec(_Model):
    """How complaints are handled."""

    acknowledge_on_receipt: list[Channel] = Field(
        default_factory=_receipt_channels,
        description="Channels where receiving a complaint is its acknowledgement (the person "
        "handed it to the NPM); every other channel needs the 'acknowledge' transition.",
    )


VisitKind = Literal["regular", "ad_hoc", "reactive", "follow_up", "joint", "reprisal_follow_up"]


# The place register's types of place and the person register's fields of expertise
# (workflows/place.yaml and person.yaml hold the same lists; a test keeps them equal).
PlaceType = Literal[
    "police_custody",
    "prison",
    "pre_trial_detention",
    "immigration_detention",
    "psychiatric_institution",
    "social_care_home",
    "juvenile_institution",
    "other",
]
Expertise = Literal[
    "psychiatrist",
    "medical_doctor",
    "psychologist",
    "lawyer",
    "social_worker",
    "interpreter",
    "gender_specialist",
    "child_specialist",
    "other",
]


class VisitSpec(_Model):
    """How visits are handled."""

    factual_check_by_kind: dict[VisitKind, bool] = Field(
        default_factory=dict,
        description="Per kind of visit, whether its draft goes to the authorities for a "
        "factual check when the head has not decided for that visit (a kind left out: yes).",
    )
    required_expertise: dict[PlaceType, list[Expertise]] = Field(
        default_factory=dict,
        description="Per type of place (the place register's place_type), the fields of "
        "expertise a visit team must hold (each by a member or an expert on the team, as the "
        "person register records it) before the visit starts. A type left out: none.",
    )


class ReportsSpec(_Model):
    """How published reports treat small counts."""

    small_count_threshold: int = Field(
        5,
        ge=2,
        le=100,
        description="A count below this is shown as '<N' in every report, and more cells "
        "are withheld so that none can be worked out from the totals.",
    )


class SettingsFile(_Model):
    """One settings file as written."""

    calendar: CalendarSpec = Field(default_factory=CalendarSpec)
    complaint: ComplaintSpec = Field(default_factory=ComplaintSpec)
    visit: VisitSpec = Field(default_factory=VisitSpec)
    reports: ReportsSpec = Field(default_factory=ReportsSpec)
    deadlines: dict[str, str] = Field(
        default_factory=dict, description="Durations of the known deadline keys."
    )
    custom_deadlines: dict[str, str] = Field(
        default_factory=dict, description="Deadline keys of the NPM's own."
    )
    minimums: dict[str, str] = Field(
        default_factory=dict,
        description="Statutory minimums of deadline keys (e.g. recommendation.reply: 1 month): "
        "a duration shorter than its minimum is refused, here and per case.",
    )


@dataclass(frozen=True)
class Settings:
    """Validated settings: a working calendar and one duration per deadline key."""

    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    deadlines: Mapping[str, Duration] = field(default_factory=dict)
    source: str = "<defaults>"
    minimums: Mapping[str, Duration] = field(default_factory=dict)
    acknowledge_on_receipt: frozenset[str] = frozenset({"during_visit", "in_person"})
    factual_check_by_kind: Mapping[str, bool] = field(default_factory=dict)
    small_count_threshold: int = 5
    required_expertise: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @cached_property
    def policy(self) -> Policy:
        """The complaint and visit rules, as the decision step reads them (built once per
        settings object: every fire reads it, and settings are frozen). The bodies that may
        receive data are not settings: the engine reads them from the authority register."""
        return Policy(
            acknowledge_on_receipt=self.acknowledge_on_receipt,
            factual_check_by_kind=self.factual_check_by_kind,
            required_expertise=self.required_expertise,
            calendar=self.calendar,
        )

    def duration(self, period: Period) -> Duration:
        """The duration a period stands for.

        Raises:
            SettingsError: an unknown ``config:`` key.
        """
        if isinstance(period, Duration):
            return period
        found = self.deadlines.get(period.key)
        if found is None:
            hint = did_you_mean(period.key, self.deadlines)
            raise SettingsError(
                [Problem(self.source, 1, 1, f"no deadline key {period.key!r}{hint}")]
            )
        return found

    @classmethod
    def default(cls) -> Settings:
        """The shipped defaults (UTC, no public holidays, the docs/domain.md durations)."""
        return _defaults()

    @classmethod
    def load(cls, path: str | Path) -> Settings:
        """Read an NPM's settings file over the defaults.

        Raises:
            SettingsError: every problem, located.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise SettingsError([Problem(str(path), 1, 1, f"cannot read: {err}")]) from None
        return cls.from_text(text, str(path))

    @classmethod
    def from_text(cls, text: str, path: str = "<settings>") -> Settings:
        """Parse settings text over the defaults. Raises: SettingsError."""
        base_doc, base = _defaults_file()
        doc, spec = _parse(text, path)
        known = dict(base.deadlines)
        problems: list[Problem] = []
        for key in spec.deadlines:
            if key not in known:
                problems.append(
                    doc.problem(
                        ("deadlines", key),
                        f"unknown deadline key {key!r}{did_you_mean(key, known)}; "
                        "keys of your own go under 'custom_deadlines'",
                    )
                )
        for key in spec.custom_deadlines:
            if key in known:
                problems.append(
                    doc.problem(
                        ("custom_deadlines", key),
                        f"{key!r} is a known key: set it under 'deadlines'",
                    )
                )
        calendar = base.calendar.model_copy(
            update={k: getattr(spec.calendar, k) for k in spec.calendar.model_fields_set}
        )
        raw = {**known, **spec.deadlines, **spec.custom_deadlines}
        origin = dict.fromkeys(known, (base_doc, "deadlines"))
        origin.update(dict.fromkeys(spec.deadlines, (doc, "deadlines")))
        origin.update(dict.fromkeys(spec.custom_deadlines, (doc, "custom_deadlines")))
        complaint = spec.complaint if "complaint" in spec.model_fields_set else base.complaint
        reports = spec.reports if "reports" in spec.model_fields_set else base.reports
        # Kinds the NPM's file leaves out keep the shipped default.
        by_kind = {
            str(kind): wanted
            for given in (base.visit.factual_check_by_kind, spec.visit.factual_check_by_kind)
            for kind, wanted in given.items()
        }
        # Types of place the NPM's file leaves out keep the shipped list (an empty list: none).
        expertise = {
            str(kind): tuple(dict.fromkeys(needed))
            for given in (base.visit.required_expertise, spec.visit.required_expertise)
            for kind, needed in given.items()
        }
        built = _build(calendar, raw, origin, doc=doc, problems=problems, path=path)
        minimums = _minimums(spec.minimums, built.deadlines, origin, doc)
        return replace(
            built,
            minimums=minimums,
            acknowledge_on_receipt=frozenset(complaint.acknowledge_on_receipt),
            factual_check_by_kind=by_kind,
            small_count_threshold=reports.small_count_threshold,
            required_expertise=expertise,
        )


def _minimums(
    given: Mapping[str, str],
    durations: Mapping[str, Duration],
    origin: Mapping[str, tuple[Located, str]],
    doc: Located,
) -> dict[str, Duration]:
    """The statutory minimums, each checked against its key's duration: one below its
    minimum is refused where it is written (the minimum's line when it is a shipped default).

    Raises:
        SettingsError: every problem, located.
    """
    problems: list[Problem] = []
    found: dict[str, Duration] = {}
    for key, text in given.items():
        if key not in durations:
            problems.append(
                doc.problem(
                    ("minimums", key), f"no deadline key {key!r}{did_you_mean(key, durations)}"
                )
            )
            continue
        try:
            minimum = found[key] = parse_duration(text)
        except ValueError as err:
            problems.append(doc.problem(("minimums", key), str(err)))
            continue
        value = durations[key]
        if not at_least(value, minimum):
            where, section = origin[key]
            at = (section, key) if where is doc else ("minimums", key)
            problems.append(
                doc.problem(
                    at,
                    f"{key} is {value}, shorter than its statutory minimum of {minimum} "
                    f"(minimums: {key})"
                    + ("" if where is doc else f"; the shipped default is {value}: set it"),
                )
            )
    if problems:
        raise SettingsError(sorted(problems, key=lambda p: (p.path, p.line, p.column)))
    return found


# Settings files of earlier releases listed the receiving bodies here: refused with where
# they went, rather than as an unknown key (docs/registers.md).
BODIES_MOVED = (
    "bodies",
    "the bodies that may receive data are entries of the authority register now (their "
    "ids kept): `opcatflow registers seed` adds the shipped ones, `opcatflow import register "
    "authority FILE` yours (docs/registers.md); remove 'bodies' from this file",
)


def _parse(text: str, path: str) -> tuple[Located, SettingsFile]:
    try:
        doc = load_yaml(text, path)
    except DefinitionError as err:
        raise SettingsError(list(err.problems)) from None
    value: Any = doc.value
    if not isinstance(value, dict):
        raise SettingsError([Problem(path, 1, 1, "settings must be a mapping")])
    if BODIES_MOVED[0] in value:
        raise SettingsError([doc.problem((BODIES_MOVED[0],), BODIES_MOVED[1])])
    try:
        return doc, SettingsFile.model_validate(value)
    except ValidationError as err:
        raise SettingsError(pydantic_problems(doc, err)) from None


def _build(
    spec: CalendarSpec,
    raw: Mapping[str, str],
    origin: Mapping[str, tuple[Located, str]],
    *,
    doc: Located,
    problems: list[Problem],
    path: str,
) -> Settings:
    durations: dict[str, Duration] = {}
    for key, text in raw.items():
        where, section = origin[key]
        if not SETTING_KEY.match(key):
            problems.append(
                where.problem((section, key), f"malformed key {key!r}: e.g. 'visit.factual_check'")
            )
            continue
        try:
            durations[key] = parse_duration(text)
        except ValueError as err:
            problems.append(where.problem((section, key), str(err)))
    calendar = WorkingCalendar()
    try:
        calendar = WorkingCalendar(
            spec.timezone, spec.country, spec.subdivision, spec.weekend, spec.closures
        )
    except ValueError as err:
        message = str(err)
        key = (
            "timezone"
            if "time zone" in message
            else "weekend"
            if "weekend" in message
            else ("subdivision" if "subdivision" in message else "country")
        )
        problems.append(doc.problem(("calendar", key), message))
    if problems:
        raise SettingsError(sorted(problems, key=lambda p: (p.path, p.line, p.column)))
    return Settings(calendar, durations, path)


@cache
def _defaults_file() -> tuple[Located, SettingsFile]:
    resource = resources.files(DEFAULTS_RESOURCE[0]) / DEFAULTS_RESOURCE[1]
    return _parse(resource.read_text(encoding="utf-8"), f"<defaults {DEFAULTS_RESOURCE[1]}>")


@cache
def _defaults() -> Settings:
    doc, spec = _defaults_file()
    origin = dict.fromkeys(spec.deadlines, (doc, "deadlines"))
    built = _build(spec.calendar, spec.deadlines, origin, doc=doc, problems=[], path=doc.path)
    return replace(
        built,
        acknowledge_on_receipt=frozenset(spec.complaint.acknowledge_on_receipt),
        factual_check_by_kind={str(k): v for k, v in spec.visit.factual_check_by_kind.items()},
        required_expertise={
            str(k): tuple(dict.fromkeys(v)) for k, v in spec.visit.required_expertise.items()
        },
    )
