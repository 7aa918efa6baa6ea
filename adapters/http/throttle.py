"""A limit on failed authentications per client address, so keys cannot be guessed at speed.

A sliding window per address, in memory (so per process: with ``--workers N`` each process
counts on its own). Only failures count; once an address has ``limit`` failures within
``window`` seconds, its requests are answered 429 until the oldest of them leaves the window.
At most ``max_clients`` addresses are remembered, the least recently failing forgotten first,
so a flood of addresses cannot grow memory without bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureLimit:
    """Counts failures per client; ``limit`` 0 turns the limit off."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        now: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.now = now
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        while times and times[0] <= now - self.window:
            times.popleft()
        if times is not None and not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or ``None`` when it may now."""
        if self.limit <= 0:
            return None
        with self._lock:
            now = self.now()
            times = self._recent(client, now)
            if times is None or len(times) < self.limit:
                return None
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def failed(self, client: str) -> bool:
        """Record a failure; returns whether ``client`` has just reached the limit."""
        if self.limit <= 0:
            return False
        with self._lock:
            now = self.now()
            times = self._recent(client, now)
            if times is None:
                times = self._failures[client] = deque(maxlen=self.limit)
            times.append(now)
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
            return len(times) == self.limit
