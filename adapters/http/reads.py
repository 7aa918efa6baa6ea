"""Reads of personal values through the API, in the read log (engine/readlog.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated

from fastapi import Header

from opcatflow.adapters.http.auth import Caller
from opcatflow.adapters.http.context import Api
from opcatflow.engine.readlog import record_reads

ReadReason = Annotated[
    str | None,
    Header(
        alias="Read-Reason",
        max_length=2000,
        description="Why the caller reads personal values (kept, sealed, in the read log).",
    ),
]


def log_reads(
    ctx: Api,
    who: Caller,
    what: str,
    reads: Iterable[tuple[str | None, Sequence[str]]],
    reason: str | None,
) -> None:
    """One read-log entry per instance whose personal fields the caller was shown."""
    record_reads(
        ctx.engine, actor=who.actor, role=",".join(who.roles), channel="http", what=what,
        reads=reads, reason=reason,
    )  # fmt: skip
