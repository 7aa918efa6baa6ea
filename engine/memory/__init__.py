"""The in-memory store: the store's contract with no durability (tests, embedding)."""

from __future__ import annotations

from opcatflow.engine.memory.store import MemoryStore, MemoryUnitOfWork

__all__ = ["MemoryStore", "MemoryUnitOfWork"]
