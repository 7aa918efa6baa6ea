"""What every route works with: the engine, the API keys, the idempotency records, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import Request
from structlog.typing import FilteringBoundLogger

from opcatflow.adapters.http.hosts import LOCAL_HOSTS, public_host
from opcatflow.adapters.http.idempotency import IdempotencyRecords
from opcatflow.adapters.http.keys import ApiKeys
from opcatflow.adapters.http.limits import (
    DEFAULT_AUTH_FAILURES,
    DEFAULT_KEY_CACHE,
    DEFAULT_MAX_BODY,
    DEFAULT_RETENTION,
)
from opcatflow.adapters.http.throttle import FailureLimit
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
        public_url: where clients reach the API (``https://npm.example.org/api``): absolute
            URLs (``Location``) are built on it, and its host is trusted. ``None``: on the
            request's (trusted) ``Host``.
        trusted_hosts: the ``Host`` names a request may carry (``*.example.org`` for
            subdomains, ``*`` for any); any other is answered 400. The public URL's host is
            added.
        auth_failure_limit: failed authentications an address may make within a minute
            before its requests are answered 429; 0: no limit.
    """

    max_body: int = DEFAULT_MAX_BODY
    idempotency_retention: timedelta = DEFAULT_RETENTION
    key_cache_seconds: float = DEFAULT_KEY_CACHE
    public_url: str | None = None
    trusted_hosts: tuple[str, ...] = LOCAL_HOSTS
    auth_failure_limit: int = DEFAULT_AUTH_FAILURES

    def __post_init__(self) -> None:
        if self.public_url is not None:
            public_host(self.public_url)  # raises ValueError for a URL that is not one
        if self.auth_failure_limit < 0:
            raise ValueError("auth_failure_limit must be 0 (no limit) or more")

    def hosts(self) -> tuple[str, ...]:
        """The trusted ``Host`` names, with the public URL's."""
        extra = (public_host(self.public_url),) if self.public_url else ()
        return tuple(dict.fromkeys((*self.trusted_hosts, *extra)))

    def absolute(self, path: str) -> str | None:
        """``path`` (from the root of the API) on the public URL, if one is set."""
        if self.public_url is None:
            return None
        return self.public_url.rstrip("/") + path


@dataclass
class Api:
    engine: Engine
    keys: ApiKeys
    idempotency: IdempotencyRecords
    config: ApiConfig
    log: FilteringBoundLogger
    schema_revision: str
    key_cache: Any  # auth.KeyCache (auth imports this module)
    executor: ThreadPoolExecutor
    auth_failures: FailureLimit

    async def blocking(self, work: Callable[[], T]) -> T:
        """Run database work on the API's own threads, off the event loop (one hop, lighter
        than a sync route's). The thread hands its outcome straight to the loop: lighter than
        ``run_in_executor``, which chains a second future to the executor's."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[T] = loop.create_future()

        def run() -> None:
            try:
                result = work()
            except BaseException as err:  # the request's to raise, as run_in_executor does
                loop.call_soon_threadsafe(_reject, outcome, err)
            else:
                loop.call_soon_threadsafe(_resolve, outcome, result)

        job = self.executor.submit(run)
        try:
            return await outcome
        except asyncio.CancelledError:
            job.cancel()  # if no thread has started it, none will (as with run_in_executor)
            raise

    async def settled(self, future: Future[T]) -> T:
        """The outcome of ``future`` (settled by another thread), without a thread waiting
        for it: the settling thread hands it straight to the loop."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[T] = loop.create_future()

        def hand_over(done: Future[T]) -> None:
            error = done.exception()
            if error is not None:
                loop.call_soon_threadsafe(_reject, outcome, error)
            else:
                loop.call_soon_threadsafe(_resolve, outcome, done.result())

        future.add_done_callback(hand_over)
        return await outcome


def _resolve(outcome: asyncio.Future[T], result: T) -> None:
    if not outcome.cancelled():  # the request went away meanwhile
        outcome.set_result(result)


def _reject(outcome: asyncio.Future[Any], error: BaseException) -> None:
    if not outcome.cancelled():
        outcome.set_exception(error)


def context_of(request: Request) -> Api:
    context: Api = request.app.state.api
    return context


async def api(request: Request) -> Api:
    """The dependency form of :func:`context_of`."""
    return context_of(request)
