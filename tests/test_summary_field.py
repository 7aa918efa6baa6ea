"""``summary_field``: what lists and calendars show beside a case's id. A personal field is
refused by ``validate`` (calendars sync to services outside the NPM), with its position;
``summary_of`` never returns a personal value, even from a definition compiled in
compatibility mode. ``validate`` warns (exit 0) about deadlines without a label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DEFINITIONS
from typer.testing import CliRunner, Result

from opcatflow.adapters.cli import app
from opcatflow.engine import compile_text
from opcatflow.engine.summary import SUMMARY_WIDTH, summary_of
from opcatflow.workflows import registry

DOSSIER = (DEFINITIONS / "summary" / "dossier.yaml").read_text()
ENV = {"OPCATFLOW_DB": None, "COLUMNS": "200"}


def validate(path: Path, *options: str) -> Result:
    # the file alone as --workflows: no bundled catalog to load as context
    return CliRunner().invoke(
        app, ["--workflows", str(path), "validate", *options, str(path)], env=ENV
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dossier.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("person", "summary_field 'person' is personal: summaries are shown in lists and"),
        ("referense", "unknown field 'referense' (did you mean 'reference'?)"),
        ("pages_", "unknown field 'pages_' (did you mean 'pages'?)"),
    ],
)
def test_validate_refuses_a_personal_or_unknown_summary_field_where_it_is(
    tmp_path: Path, field: str, message: str
) -> None:
    path = write(tmp_path, DOSSIER.replace("summary_field: reference", f"summary_field: {field}"))
    result = validate(path)
    assert result.exit_code == 6, result.output
    assert f"{path}:6:16: {message}" in result.stdout


def test_a_summary_field_must_hold_one_short_value(tmp_path: Path) -> None:
    text = DOSSIER.replace("summary_field: reference", "summary_field: tags").replace(
        "  pages: {type: integer}", "  pages: {type: integer}\n  tags: {type: list, items: string}"
    )
    text = text.replace("writes: [pages]", "writes: [pages, tags]")
    result = validate(write(tmp_path, text))
    assert result.exit_code == 6
    assert "summary_field 'tags' is list: it must be one of date, enum, integer" in result.stdout


def test_summary_of_gives_the_value_on_one_short_line_and_never_a_personal_one() -> None:
    wf = compile_text(DOSSIER, "dossier.yaml", registry)
    assert summary_of(wf, {"reference": "NPM-1\n  x"}) == "NPM-1 x"
    assert summary_of(wf, {}) is None
    long = summary_of(wf, {"reference": "r" * 200})
    assert long is not None
    assert len(long) == SUMMARY_WIDTH
    assert long.endswith("…")
    # a stored copy is compiled in compatibility mode, where the rule is only tolerated:
    # the personal value is still never a summary
    personal = DOSSIER.replace("summary_field: reference", "summary_field: person")
    stored = compile_text(personal, "<stored dossier v1>", registry, compat=True)
    assert summary_of(stored, {"person": "Ana Pereira", "reference": "NPM-1"}) is None


def test_validate_warns_about_a_deadline_without_a_label_and_still_passes(tmp_path: Path) -> None:
    path = write(tmp_path, DOSSIER.replace("        label: Answer the dossier\n", ""))
    result = validate(path)
    assert result.exit_code == 0, result.output
    warning = "warning: deadline 'answer' has no label: lists and calendars will show its id"
    assert f"{path}:22:9: {warning}" in result.stdout
    listed = json.loads(validate(path, "--json").stdout)
    assert listed["ok"] is True
    assert [w["message"] for w in listed["warnings"]] == [warning]
    clean = validate(DEFINITIONS / "summary")
    assert "warning" not in clean.stdout
