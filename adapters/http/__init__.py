"""The HTTP API (FastAPI) for systems that embed opcatflow without importing Python.

:func:`create_app` builds the application over an open :class:`~opcatflow.engine.Engine`;
``opcatflow serve`` runs it with the deadline scheduler and the outbox dispatcher. Names are
imported on first use, so the CLI can manage API keys without loading FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opcatflow.adapters.http.app import create_app
    from opcatflow.adapters.http.context import ApiConfig
    from opcatflow.adapters.http.keys import ADMIN, ApiKey, ApiKeys

__all__ = ["ADMIN", "ApiConfig", "ApiKey", "ApiKeys", "create_app"]

_WHERE = {
    "ADMIN": "keys",
    "ApiConfig": "context",
    "ApiKey": "keys",
    "ApiKeys": "keys",
    "create_app": "app",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
