"""Default limits of the HTTP API (a module of its own so the CLI can show them without
importing FastAPI)."""

from __future__ import annotations

from datetime import timedelta

DEFAULT_MAX_BODY = 256 * 1024  # bytes
DEFAULT_RETENTION = timedelta(hours=24)  # of Idempotency-Key replies
DEFAULT_KEY_CACHE = 2.0  # seconds a key found live is trusted without a database read
DEFAULT_AUTH_FAILURES = 20  # failed authentications per address and window before 429s
AUTH_FAILURE_WINDOW = 60.0  # seconds: the limit counts failures a minute
