"""The SQLAlchemy store: every statement opcatflow sends to a database lives in this package.

:class:`SQLAlchemyStore` implements :class:`opcatflow.engine.ports.Store` over a SQLite file
or PostgreSQL; ``tables`` declares the current schema (the migrations in
``opcatflow.engine.migrations`` create it); dialect differences are decided in ``dialect``.
"""

from __future__ import annotations

from opcatflow.engine.sql.store import SQLAlchemyStore, displayed_url, normalise_url, sqlite_file

__all__ = ["SQLAlchemyStore", "displayed_url", "normalise_url", "sqlite_file"]
