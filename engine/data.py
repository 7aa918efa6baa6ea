"""Instance data checked against a definition's fields.

Values are stored as JSON: dates and datetimes as ISO 8601 text, so what was validated is
exactly what is stored and hashed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from opcatflow.engine.definition import TEXT_LIMITS, FieldSpec, FieldType, SubFieldSpec
from opcatflow.engine.durations import parse_duration
from opcatflow.engine.errors import LimitExceeded
from opcatflow.engine.limits import LIST, Limit
from opcatflow.engine.partial_dates import is_partial, parse_partial
from opcatflow.engine.records import Records
from opcatflow.engine.refs import check_entry_id
from opcatflow.engine.suggest import did_you_mean

Check = Callable[[Any], Any]


def _string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("expected text")
    if "\x00" in value:  # PostgreSQL cannot store it, and no person types it
        raise ValueError("text must not contain NUL characters")
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    return value


def _boolean(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _date(value: Any) -> Any:
    if isinstance(value, datetime):
        raise ValueError("expected a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise ValueError("expected a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        hint = " (this field takes no partial dates)" if is_partial(value) else ""
        raise ValueError(f"expected a date (YYYY-MM-DD), got {value!r}{hint}") from None


def _partial_date(value: Any) -> Any:
    """A day, or a year or month for a field declared ``partial`` (stored as entered)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if not isinstance(value, str):
        raise ValueError("expected a date (YYYY-MM-DD), a month (YYYY-MM) or a year (YYYY)")
    try:
        return parse_partial(value).text
    except ValueError:
        raise ValueError(
            f"expected a date (YYYY-MM-DD), a month (YYYY-MM) or a year (YYYY), got {value!r}"
        ) from None


def _datetime(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 date and time, got {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError("expected an ISO 8601 date and time")
    if value.tzinfo is None:
        raise ValueError("a date and time needs a UTC offset (e.g. +00:00)")
    return value.isoformat()


def _period(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("expected a period such as '2 months'")
    try:
        return str(parse_duration(value))  # normalised: '2 Months ' -> '2 months'
    except ValueError as err:
        raise ValueError(str(err)) from None


def _enum(values: list[str]) -> Check:
    allowed = frozenset(values)

    def check(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(values)}, got {value!r}")
        return value

    return check


_SCALARS: dict[FieldType, Check] = {
    FieldType.STRING: _string,
    FieldType.TEXT: _string,
    FieldType.INTEGER: _integer,
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
    FieldType.PERIOD: _period,
    FieldType.REF: check_entry_id,  # the entry itself is checked on write (engine/refs.py)
}


def _bounded(check: Check, name: str, limit: Limit | None) -> Check:
    """``check``, then the field's text length: past it, the input is refused as a whole
    (:class:`LimitExceeded`), not reported as one more data error."""
    if limit is None:
        return check

    def bounded(value: Any, where: str = f"data.{name}") -> Any:
        value = check(value)
        if len(value) > limit.maximum:
            raise LimitExceeded(limit, where, len(value))
        return value

    return bounded


def _length_limit(spec: FieldSpec | SubFieldSpec) -> Limit | None:
    if isinstance(spec, FieldSpec):
        return spec.length_limit()
    item = spec.items if spec.type is FieldType.LIST else spec.type
    return TEXT_LIMITS.get(item) if item is not None else None


def field_check(name: str, spec: FieldSpec | SubFieldSpec) -> Check:
    """The function that checks and normalises one value of this field (None clears it).

    A records field's check returns its entries or a change to apply to them (see
    :meth:`DataSchema.resolve`).

    Raises (from the function):
        ValueError: the value does not fit the field.
        LimitExceeded: text longer than the field's limit, a list with too many items.
    """
    if isinstance(spec, FieldSpec) and spec.type is FieldType.RECORDS:
        return records_of(name, spec).check
    limit = _length_limit(spec)
    if spec.type is FieldType.LIST:
        assert spec.items is not None
        item: Callable[..., Any] = (
            _enum(spec.values or [])
            if spec.items is FieldType.ENUM
            else _bounded(_SCALARS[spec.items], name, limit)
        )

        def check_list(value: Any) -> Any:
            if not isinstance(value, list):
                raise ValueError("expected a list")
            if len(value) > LIST.maximum:
                raise LimitExceeded(LIST, f"data.{name}", len(value))
            if limit is None:
                return [item(v) for v in value]
            return [item(v, f"data.{name}[{i}]") for i, v in enumerate(value)]

        return check_list
    if spec.type is FieldType.ENUM:
        return _enum(spec.values or [])
    if isinstance(spec, FieldSpec) and spec.partial:
        return _partial_date
    return _bounded(_SCALARS[spec.type], name, limit)


def records_of(name: str, spec: FieldSpec) -> Records:
    assert spec.item is not None
    return Records(
        name, spec, {sub: field_check(f"{name}.{sub}", s) for sub, s in spec.item.items()}
    )


class DataSchema:
    """The compiled checks of one definition's fields."""

    def __init__(self, fields: Mapping[str, FieldSpec]) -> None:
        self.fields = dict(fields)
        self.records = {
            name: records_of(name, spec)
            for name, spec in fields.items()
            if spec.type is FieldType.RECORDS
        }
        self.checks = {
            name: self.records[name].check if name in self.records else field_check(name, spec)
            for name, spec in fields.items()
        }
        # Fields that hold personal data: personal fields, and records with personal
        # sub-fields. Code that knows records redacts only the sub-fields (personal_parts);
        # code that does not withholds the whole field.
        self.personal_parts = {n: r.personal for n, r in self.records.items() if r.personal}
        self.personal = frozenset(n for n, s in fields.items() if s.personal) | frozenset(
            self.personal_parts
        )
        self.confidential = frozenset(n for n, s in fields.items() if s.confidential)
        # Kept only as keyed hashes in the audit trail, and sealed in the store (a records
        # field with personal sub-fields is sealed whole).
        self.sealed = self.personal | self.confidential
        self.required = tuple(n for n, s in fields.items() if s.required)

    def resolve(self, stored: Mapping[str, Any], clean: dict[str, Any]) -> list[str]:
        """Apply the records changes in ``clean`` (from :meth:`validate`) to the ``stored``
        entries, in place; returns the errors."""
        errors = []
        for name, value in clean.items():
            if name in self.records and value is not None:
                try:
                    clean[name] = self.records[name].apply(stored.get(name), value)
                except ValueError as err:
                    errors.append(f"{name}{err}")
        return errors

    def append_only_problems(
        self, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> list[str]:
        """Why ``after`` edits or removes entries of append-only records of ``before``."""
        problems = []
        for name, records in self.records.items():
            if records.append_only and before.get(name) != after.get(name):
                problem = records.append_only_problem(before.get(name), after.get(name))
                if problem:
                    problems.append(problem)
        return problems

    def validate(self, supplied: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Check supplied values; returns the normalised values and a list of errors."""
        clean: dict[str, Any] = {}
        errors: list[str] = []
        checks = self.checks
        for name, value in supplied.items():
            check = checks.get(name)
            if check is None:
                errors.append(f"unknown field {name!r}" + did_you_mean(name, checks))
            elif value is None:
                clean[name] = None
            else:
                try:
                    clean[name] = check(value)
                except ValueError as err:
                    sep = "" if str(err).startswith("[") else ": "
                    errors.append(f"{name}{sep}{err}")
        return clean, errors
