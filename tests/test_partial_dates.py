"""Partial dates: a year or a month where the source gives no day, counted as the period's
last day (engine/partial_dates.py), accepted only by date fields declared ``partial``."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opcatflow.engine.data import field_check
from opcatflow.engine.definition import FieldSpec, FieldType
from opcatflow.engine.partial_dates import counted_day, is_partial, parse_partial


@pytest.mark.parametrize(
    ("text", "precision", "first", "last"),
    [
        ("2019", "year", date(2019, 1, 1), date(2019, 12, 31)),
        ("2020-02", "month", date(2020, 2, 1), date(2020, 2, 29)),  # a leap year
        ("2019-02", "month", date(2019, 2, 1), date(2019, 2, 28)),
        ("2019-11-30", "day", date(2019, 11, 30), date(2019, 11, 30)),
    ],
)
def test_a_partial_date_covers_its_period(
    text: str, precision: str, first: date, last: date
) -> None:
    parsed = parse_partial(text)
    assert (parsed.text, parsed.precision, parsed.first, parsed.last) == (
        text,
        precision,
        first,
        last,
    )
    assert counted_day(text) == last
    assert is_partial(text) is (precision != "day")


@pytest.mark.parametrize("text", ["19", "2019-13", "2019-00", "0000", "2019-1", "in 2019", ""])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"Invalid isoformat|month must be|year 0"):
        parse_partial(text)


def test_only_a_partial_field_accepts_a_year_and_says_so() -> None:
    partial = field_check("due", FieldSpec(type=FieldType.DATE, partial=True))
    full = field_check("due", FieldSpec(type=FieldType.DATE))
    assert (partial("2019"), partial("2019-05"), partial(date(2019, 5, 2))) == (
        "2019",
        "2019-05",
        "2019-05-02",
    )
    with pytest.raises(ValueError, match="takes no partial dates"):
        full("2019")
    with pytest.raises(ValueError, match=r"a month \(YYYY-MM\) or a year"):
        partial("May 2019")


def test_the_http_schema_of_a_partial_field_accepts_the_three_forms() -> None:
    import re

    from opcatflow.adapters.http.views import data_schema

    fields = {
        "due": FieldSpec(type=FieldType.DATE, partial=True),
        "day": FieldSpec(type=FieldType.DATE),
    }
    props = data_schema("wf", fields, [])["properties"]
    partial, full = props["due"]["anyOf"][0], props["day"]["anyOf"][0]
    assert full == {"type": "string", "format": "date"}
    pattern = re.compile(partial["pattern"])
    assert [bool(pattern.match(v)) for v in ("2019", "2019-05", "2019-05-02", "May 2019")] == [
        True,
        True,
        True,
        False,
    ]


@given(
    st.dates(min_value=date(1, 1, 1), max_value=date(9998, 12, 31)),
    st.sampled_from(["year", "month", "day"]),
)
def test_a_day_falls_within_each_period_it_belongs_to(day: date, precision: str) -> None:
    text = {"year": f"{day.year:04d}", "month": f"{day.year:04d}-{day.month:02d}"}.get(
        precision, day.isoformat()
    )
    parsed = parse_partial(text)
    assert parsed.precision == precision
    assert parsed.first <= day <= parsed.last == counted_day(text)
    assert (parsed.last + timedelta(days=1)).isoformat()[: len(text)] != text  # the period's end
