"""What every route works with: the engine, the API keys, the idempotency records, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import Request

from opcatflow.adapters.http.idempotency import IdempotencyRecords
from opcatflow.adapters.http.keys import ApiKeys
from opcatflow.adapters.http.limits import (
    DEFAULT_KEY_CACHE,
    DEFAULT_MAX_BODY,
    DEFAULT_RETENTION,
)
from opcatflow.engine.runtime import Engine

T = TypeVar("T")


@dataclass(frozen=True)
class ApiConfig:
    """Limits of one API.

    Attributes:
        max_body: largest request body accepted, in bytes (larger: 413).
        idempotency_retention: how long the first response to an ``Idempotency-Key`` is kept
            for its retries.
        key_cache_seconds: how long a key found live is trusted without asking the database
            again (so how long a revoked key may still work in a running server); 0: ask
            every time.
    """

    max_body: int = DEFAULT_MAX_BODY
    idempotency_retention: timedelta = DEFAULT_RETENTION
    key_cache_seconds: float = DEFAULT_KEY_CACHE


@dataclass
class Api:
    engine: Engine
    keys: ApiKeys
    idempotency: IdempotencyRecords
    config: ApiConfig
    log: Any
    schema_revision: str
    key_cache: Any  # auth.KeyCache (auth imports this module)
    executor: ThreadPoolExecutor

    async def blocking(self, work: Callable[[], T]) -> T:
        """Run database work on the API's own threads, off the event loop (one hop, lighter
        than a sync route's)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, work)


def context_of(request: Request) -> Api:
    context: Api = request.app.state.api
    return context


async def api(request: Request) -> Api:
    """The dependency form of :func:`context_of`."""
    return context_of(request)
