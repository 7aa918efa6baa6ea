"""The bundled OPCAT workflow definitions (YAML beside this file) and the rules they name."""

from __future__ import annotations

from pathlib import Path

from opcatflow.workflows import engagement as _engagement  # noqa: F401  (registers its rules)
from opcatflow.workflows.rules import registry

BUNDLED = Path(__file__).parent

__all__ = ["BUNDLED", "registry"]
