"""The distribution holds what the source tree holds, and each package exports what it says."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def source_packages() -> set[str]:
    found = set()
    for top, name in ((v, k) for k, v in SETUPTOOLS["package-dir"].items()):
        for init in (ROOT / top).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *relative.parts]))
    return found


def test_every_folder_with_an_init_is_listed_in_packages() -> None:
    # a package missing here still imports in editable mode but is absent from the wheel
    assert source_packages() == set(SETUPTOOLS["packages"])


def test_every_listed_package_imports() -> None:
    for name in SETUPTOOLS["packages"]:
        importlib.import_module(name)


ENGINE_API = {
    "AuditRecord", "Catalog", "ChainBreak", "Clock", "CompiledWorkflow", "ConcurrentUpdate",
    "DeadlineEvent", "FireResult", "Started", "TransactionHook", "TransitionEvent",
    "AmbiguousId", "IdTooShort", "InvalidFilter",
    "DefinitionError", "DuplicateKey", "Engine", "FrozenClock", "GuardRefusal", "Instance", "InstanceErased", "InstanceNotFound",
    "InvalidData", "InvalidText", "KeyUnavailable", "LimitExceeded", "MemoryStore", "NotFound", "OpcatflowError", "Problem", "Registry", "RuleContext", "RowsRefused",
    "SQLAlchemyStore", "SchemaLocked", "SchemaMismatch", "Store", "StoreError", "SystemClock",
    "TransitionRefused", "TriggerOption", "UnitOfWork", "VerifyReport", "VersionRetired", "WorkflowDefinition", "WorkflowNotFound", "compile_text",
    "load_catalog",
}  # fmt: skip


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        ("opcatflow.engine", ENGINE_API),
        ("opcatflow.workflows", {"BUNDLED", "PLANS", "registry", "shipped_plans"}),
    ],
)
def test_public_api_is_pinned(package: str, expected: set[str]) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == expected
    assert all(hasattr(module, name) for name in module.__all__)


def test_bundled_data_ships_as_package_data() -> None:
    data = SETUPTOOLS["package-data"]
    assert "*.yaml" in data["opcatflow.workflows"]
    assert "migrations/*.yaml" in data["opcatflow.workflows"]  # the shipped migration plans
    assert "script.py.mako" in data["opcatflow.engine.migrations"]
    assert "static/swagger-ui/*" in data["opcatflow.adapters.http"]  # the docs pages' files


def test_schema_revision_constant_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from opcatflow.engine.sql import tables
    from opcatflow.engine.sql.schemalock import MIGRATIONS

    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == tables.SCHEMA_REVISION
