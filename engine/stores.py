"""Which store a URL names: ``memory:`` for the in-memory store, anything else for SQL."""

from __future__ import annotations

from structlog.typing import FilteringBoundLogger

from opcatflow.engine.memory import MemoryStore
from opcatflow.engine.memory.store import URL as MEMORY
from opcatflow.engine.ports import Store
from opcatflow.engine.sql import SQLAlchemyStore

__all__ = ["MEMORY", "open_store"]


def open_store(
    url: str, *, synchronous: str = "FULL", logger: FilteringBoundLogger | None = None
) -> Store:
    """A new store for ``url``: ``memory:`` (nothing durable; every call a new, empty store),
    a ``postgresql://`` URL, or a SQLite file path or URL (``synchronous`` is its ``PRAGMA
    synchronous``; ``logger`` gets its group commit's batches at debug)."""
    if url == MEMORY:
        return MemoryStore()
    return SQLAlchemyStore(url, synchronous=synchronous, logger=logger)
