"""Helpers for the sealing tests: markers, and every place a database keeps bytes."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from conftest import PG_URL


def marker() -> str:
    """A value no template, definition or generated id contains (22 characters)."""
    return "mk" + secrets.token_hex(10)


def pg_schema(url: str) -> str:
    options = parse_qs(urlparse(url).query)["options"][0]
    return options.split("search_path=")[1]


def stored_bytes(url: str) -> bytes:
    """Everything the database keeps: a SQLite file with its WAL (and shared memory file),
    or a ``pg_dump`` of the test's PostgreSQL schema."""
    if url.startswith("postgresql"):
        target = urlparse(PG_URL)
        dump = subprocess.run(
            [
                "pg_dump",
                "-h",
                target.hostname or "127.0.0.1",
                "-p",
                str(target.port or 5432),
                "-U",
                target.username or "root",
                "-n",
                pg_schema(url),
                target.path.lstrip("/"),
            ],
            capture_output=True,
            check=True,
        )
        return dump.stdout
    found = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(url + suffix)
        if path.exists():
            found += path.read_bytes()
    return found


def leaked(url: str, markers: list[str]) -> list[str]:
    """The markers found in what the database keeps."""
    data = stored_bytes(url)
    return [m for m in markers if m.encode() in data]
