"""The erasures, listed outside the database too: what a restore must erase again.

Erasure destroys an instance's wrapped keys in the database (engine/erasure.py). A backup
taken before the erasure still holds them, so restoring it would bring the person's data
back. The database cannot remember what happened after its own backup, so every erasure is
also appended to a file beside the key file, ``<key file>.erased`` (mode 0600), which is
backed up with the keys and never with the database. After a restore, each instance listed
there that the restored database still holds unerased is erased again (``opcatflow
restore``; docs/privacy.md).

One JSON object per line: ``instance_id``, ``erased_at`` and ``legal_basis``. The legal
basis is already in clear in the audit record and must not name the person; an instance id
is a random UUID. So the file holds no personal data.

The line is written and synced before the erasure commits: an erasure that could not be
listed is refused (a safeguard that could be skipped would not be one). An erasure whose
commit then fails leaves a line for an instance that still has its keys: a restore erases
it, which is what was asked.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from opcatflow.engine.errors import OpcatflowError

SUFFIX = ".erased"


class ErasureJournalError(OpcatflowError):
    """The erasure journal cannot be written, or a line of it cannot be read."""


@dataclass(frozen=True, slots=True)
class Erased:
    instance_id: str
    erased_at: datetime
    legal_basis: str


class ErasureJournal:
    """``<key file>.erased``: the erasures of every database this key file serves."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside(cls, key_file: Path) -> ErasureJournal:
        return cls(key_file.with_name(key_file.name + SUFFIX))

    def append(self, entry: Erased) -> None:
        """Append ``entry`` and sync it to disk.

        Raises:
            ErasureJournalError: the file cannot be written.
        """
        line = json.dumps(
            {
                "instance_id": entry.instance_id,
                "erased_at": entry.erased_at.isoformat(),
                "legal_basis": entry.legal_basis,
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:
            raise ErasureJournalError(
                f"cannot list the erasure in {self.path} (kept beside the key file, so that a "
                f"restored backup is erased again): {err}"
            ) from None

    def entries(self) -> list[Erased]:
        """Every erasure listed, the first of each instance (none if there is no file).

        Raises:
            ErasureJournalError: a line that is not an erasure (named by its number).
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as err:
            raise ErasureJournalError(f"cannot read {self.path}: {err}") from None
        found: dict[str, Erased] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                entry = Erased(
                    str(doc["instance_id"]),
                    datetime.fromisoformat(doc["erased_at"]),
                    str(doc["legal_basis"]),
                )
            except (ValueError, KeyError, TypeError):
                raise ErasureJournalError(
                    f"{self.path}:{number}: not an erasure (a JSON object with instance_id, "
                    "erased_at and legal_basis)"
                ) from None
            found.setdefault(entry.instance_id, entry)
        return list(found.values())
