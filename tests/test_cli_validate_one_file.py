"""Validating one file resolves the workflows it opens against --workflows (the bundled ones)."""

from __future__ import annotations

from helpers import EXAMPLE_DIR
from typer.testing import CliRunner

from opcatflow.adapters.cli.app import app
from opcatflow.workflows import BUNDLED


def test_one_bundled_file_that_opens_others_validates() -> None:
    result = CliRunner().invoke(app, ["validate", str(BUNDLED / "complaint.yaml")])
    assert result.exit_code == 0, result.output


def test_a_file_opening_a_workflow_nobody_defines_is_still_refused() -> None:
    result = CliRunner().invoke(app, ["validate", str(EXAMPLE_DIR / "linked" / "case.yaml")])
    assert result.exit_code == 6
    assert "case.yaml:20:19: unknown workflow followup" in result.output


def test_the_file_it_opens_can_come_from_workflows() -> None:
    linked = EXAMPLE_DIR / "linked"
    args = ["--workflows", str(linked), "validate", str(linked / "case.yaml")]
    assert CliRunner().invoke(app, args).exit_code == 0
