"""Cursors for paged lists, the same on every edge (``list --after``, HTTP ``cursor=``).

A cursor is the ``(created_at, id)`` key of the last row of a page, encoded so that callers
treat it as opaque. The store pages after the key (keyset paging on an index), so a cursor
stays valid and exact while instances are started: a page never skips or repeats a row, and
it costs the same on the thousandth page as on the first.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

from opcatflow.engine.agenda import AgendaKey
from opcatflow.engine.runtime import ListKey

_VERSION = "1"  # the cursor format: a later one can tell old cursors apart
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BadCursor(ValueError):
    """Text that is not a cursor this program gave out."""


def encode_cursor(key: ListKey) -> str:
    """The cursor of the page after the row with this key."""
    created_at, instance_id = key
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    raw = f"{_VERSION}.{micros:x}.{instance_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> ListKey:
    """Raises: BadCursor."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, micros, instance_id = text.split(".", 2)
        created_at = _EPOCH + timedelta(microseconds=int(micros, 16))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise BadCursor(f"not a cursor this program gave out: {cursor[:40]!r}") from None
    if version != _VERSION or not instance_id:
        raise BadCursor(f"not a cursor this program gave out: {cursor[:40]!r}")
    return created_at, instance_id


def more_text(count: int) -> str:
    """``1 more`` / ``12 more``, for the line under a truncated list."""
    return f"{count:,} more"


_AGENDA_VERSION = "d1"  # a deadline cursor: not taken for an instance list's, nor the reverse


def encode_agenda_cursor(key: AgendaKey) -> str:
    """The cursor of the deadlines page after the obligation with this ``(due_at, id)``."""
    due_at, obligation_id = key
    micros = (due_at - _EPOCH) // timedelta(microseconds=1)
    raw = f"{_AGENDA_VERSION}.{micros:x}.{obligation_id:x}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_agenda_cursor(cursor: str) -> AgendaKey:
    """Raises: BadCursor."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, micros, obligation_id = text.split(".")
        key = (_EPOCH + timedelta(microseconds=int(micros, 16)), int(obligation_id, 16))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise BadCursor(f"not a cursor this program gave out: {cursor[:40]!r}") from None
    if version != _AGENDA_VERSION:
        raise BadCursor(f"not a deadlines cursor this program gave out: {cursor[:40]!r}")
    return key
