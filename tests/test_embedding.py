"""Embedded as a library, the engine is quiet: given no logger, it logs where the application
configured logging, and nowhere otherwise."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from opcatflow.engine.logs import default_logger, silent_logger

SCRIPT = Path(__file__).parent.parent / "scripts" / "embedded-core.py"


def test_an_embedded_engine_starts_and_fires_and_prints_nothing(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_the_silent_logger_discards_every_level(capfd: pytest.CaptureFixture[str]) -> None:
    log = silent_logger().bind(instance_id="i")
    for level in ("debug", "info", "warning", "error", "critical", "exception"):
        getattr(log, level)("event", key="value")
    assert capfd.readouterr() == ("", "")


def test_an_application_that_configured_logging_gets_the_events_there(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="opcatflow"):
        default_logger("opcatflow").info("transition_applied", instance_id="i-1")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("opcatflow", logging.INFO, "event='transition_applied' instance_id='i-1'")
    ]


def test_the_console_script_without_the_cli_extra_names_it_in_one_line() -> None:
    hide_typer = "import sys; sys.modules['typer'] = None"  # as if [cli] were not installed
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{hide_typer}; from opcatflow.adapters.console import main; main()",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    expected = (
        "error: the opcatflow command needs the [cli] extra (typer is not installed): "
        "pip install 'opcatflow[cli]'\n"
    )
    assert (run.returncode, run.stdout, run.stderr) == (1, "", expected)
