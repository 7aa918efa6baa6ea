"""The CLI's one table from engine error types to exit codes (the engine's errors carry none)."""

from __future__ import annotations

import pytest

from opcatflow.adapters.cli.errors import EXIT_CODES, describe, exit_code
from opcatflow.adapters.cli.outbox import MessageNotFound
from opcatflow.engine import (
    ConcurrentUpdate,
    DefinitionError,
    InstanceNotFound,
    InvalidData,
    InvalidText,
    KeyUnavailable,
    OpcatflowError,
    Problem,
    RowsRefused,
    SchemaLocked,
    SchemaMismatch,
    StoreError,
    TransitionRefused,
    WorkflowNotFound,
)
from opcatflow.engine.migration.convert import UnmappedValues
from opcatflow.engine.settings import SettingsError
from opcatflow.notifications.channel import DeliveryError
from opcatflow.notifications.directory import ConfigError

PROBLEM = Problem("x.yaml", 1, 1, "bad")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (OpcatflowError("x"), 1),
        (StoreError("x"), 1),
        (DeliveryError("x"), 1),
        (TransitionRefused("i", "t", "guard", "no"), 3),
        (InvalidData("complaint", ["bad"]), 3),
        (ConcurrentUpdate("i", 1, 2), 4),
        (InstanceNotFound("i"), 5),
        (WorkflowNotFound("w"), 5),
        (MessageNotFound(7), 5),
        (DefinitionError([PROBLEM]), 6),
        (SettingsError([PROBLEM]), 6),
        (ConfigError([PROBLEM]), 6),
        (SchemaMismatch("a", "b"), 7),
        (SchemaLocked("db", 1.0), 9),
        (KeyUnavailable("kek-1", "missing", "restore it"), 10),
        (UnmappedValues([PROBLEM]), 12),
        (InvalidText("actor", 0), 2),
        (RowsRefused("place", [(0, "bad")]), 11),
    ],
)
def test_each_error_maps_to_the_readme_exit_code(error: OpcatflowError, code: int) -> None:
    assert code == exit_code(error)


def test_no_row_is_hidden_behind_an_earlier_base_class() -> None:
    classes = [kind for kind, _ in EXIT_CODES]
    for later, kind in enumerate(classes):
        assert not any(issubclass(kind, earlier) for earlier in classes[:later]), kind


def test_engine_errors_carry_no_exit_code() -> None:
    assert not hasattr(OpcatflowError("x"), "exit_code")


def test_a_missing_extra_is_named_in_one_line() -> None:
    err = ModuleNotFoundError("No module named 'psycopg'", name="psycopg")
    assert describe(err) == ("psycopg is not installed: pip install 'opcatflow[postgres]'", 1)
