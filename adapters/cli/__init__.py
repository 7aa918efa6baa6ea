"""The ``opcatflow`` command line: a thin layer over :class:`opcatflow.engine.Engine`."""

from __future__ import annotations

from opcatflow.adapters.cli.app import app, main

__all__ = ["app", "main"]
