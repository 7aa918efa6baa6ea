"""A signed audit checkpoint as an outbox message to an outside witness (docs/audit.md).

The witness folder is one keeper of checkpoints; a mailbox or a webhook outside the NPM's
servers is a better one, because the database's administrators cannot rewrite it. So a
checkpoint can also go to a recipient of the notifications directory: a person (by email, or
their ``log``/``file`` channel) or a webhook endpoint. It is an ordinary outbox row, so the
usual delivery, retries and dead letters apply.

What travels is the checkpoint file itself (its canonical body and signature: a size, a root,
a time and a public key, never a personal value) and the fingerprint of the signing key, so
the keeper can pin the key the first time and notice a checkpoint signed by another:

- email: a short text naming size, root, time and fingerprint, and the checkpoint file as an
  attachment (``checkpoint-<size>-<time>.json``) that ``audit verify --checkpoint`` reads;
- webhook: a CloudEvent of type ``org.opcatflow.audit.checkpoint`` whose ``data`` is the
  checkpoint file's JSON plus ``key_fingerprint`` (save ``data`` to a file to verify it).
"""

from __future__ import annotations

import hashlib
from typing import Any

from opcatflow.engine.checkpoint import Checkpoint, checkpoint_file_name, checkpoint_text
from opcatflow.engine.errors import NotFound
from opcatflow.notifications.directory import Directory
from opcatflow.notifications.model import WEBHOOK, NewMessage, idempotency_key

CHECKPOINT_EVENT = "audit.checkpoint"
CLOUDEVENT_TYPE = "org.opcatflow.audit.checkpoint"
CLOUDEVENT_SOURCE = "urn:opcatflow:audit"
ATTACHMENT_TYPE = "application/json"


class UnknownRecipient(NotFound):
    """A checkpoint addressed to someone the recipients directory does not name (or who has
    no way to be reached)."""

    def __init__(self, recipient: str, known: list[str]) -> None:
        self.recipient = recipient
        listed = ", ".join(known) if known else "none"
        super().__init__(
            f"no recipient {recipient!r} in the recipients directory who can be reached "
            f"(active people with a channel, and webhook endpoints: {listed})"
        )


def key_fingerprint(checkpoint: Checkpoint) -> str:
    """``SHA256:`` and the hex SHA-256 of the raw Ed25519 public key (32 bytes)."""
    return "SHA256:" + hashlib.sha256(bytes.fromhex(checkpoint.public_key)).hexdigest()


def check_recipient(directory: Directory, recipient: str) -> None:
    """Raises: UnknownRecipient: ``recipient`` is neither a reachable person nor an endpoint."""
    if recipient in directory.endpoints:
        return
    person = directory.people.get(recipient)
    if person is not None and person.active and directory.person_target(person) is not None:
        return
    reachable = [p.id for p in directory.people.values() if p.active and directory.person_target(p)]
    raise UnknownRecipient(recipient, sorted([*reachable, *directory.endpoints]))


def checkpoint_message(directory: Directory, recipient: str, checkpoint: Checkpoint) -> NewMessage:
    """The outbox row that carries ``checkpoint`` to ``recipient``.

    Raises:
        UnknownRecipient: see :func:`check_recipient`.
    """
    check_recipient(directory, recipient)
    fingerprint = key_fingerprint(checkpoint)
    if recipient in directory.endpoints:
        key = _key(checkpoint, WEBHOOK, recipient)
        return NewMessage(
            None, CHECKPOINT_EVENT, WEBHOOK, recipient, {"cloudevent": _event(checkpoint, key)}, key
        )
    person = directory.people[recipient]
    target = directory.person_target(person)
    assert target is not None  # check_recipient made sure
    key = _key(checkpoint, target.channel, recipient)
    payload: dict[str, Any] = {
        "locale": target.locale,
        "to": {"name": target.name, "address": target.address},
        "message": {"subject": _subject(checkpoint), "text": _text(checkpoint, fingerprint)},
        "attachments": [
            {
                "name": checkpoint_file_name(checkpoint),
                "type": ATTACHMENT_TYPE,
                "text": checkpoint_text(checkpoint),
            }
        ],
    }
    return NewMessage(None, CHECKPOINT_EVENT, target.channel, recipient, payload, key)


def _key(checkpoint: Checkpoint, channel: str, recipient: str) -> str:
    # the time too: two checkpoints of the same size (nothing written between) are two files
    when = checkpoint.time.isoformat()
    return idempotency_key(
        CHECKPOINT_EVENT, checkpoint.size, checkpoint.root, when, channel, recipient
    )


def _event(checkpoint: Checkpoint, key: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": key,
        "source": CLOUDEVENT_SOURCE,
        "type": CLOUDEVENT_TYPE,
        "subject": str(checkpoint.size),
        "time": checkpoint.time.isoformat(),
        "datacontenttype": "application/json",
        "data": {**checkpoint.as_json(), "key_fingerprint": key_fingerprint(checkpoint)},
    }


def _subject(checkpoint: Checkpoint) -> str:
    when = f"{checkpoint.time:%Y-%m-%d %H:%M} UTC"
    return f"opcatflow audit checkpoint: {checkpoint.size} records at {when}"


def _text(checkpoint: Checkpoint, fingerprint: str) -> str:
    return (
        "This is a signed checkpoint of the opcatflow audit trail. Keep this message and its\n"
        "attachment where the NPM's database administrators cannot change them: later,\n"
        "`opcatflow audit verify --checkpoint <the attachment>` proves that no audit record up\n"
        "to this size was changed, removed or rolled back.\n\n"
        f"Size: {checkpoint.size} records\n"
        f"Root: {checkpoint.root}\n"
        f"Time: {checkpoint.time.isoformat()}\n"
        f"Signing key fingerprint: {fingerprint}\n\n"
        "The first checkpoint you receive pins the signing key: a later checkpoint with\n"
        "another fingerprint was not signed by the same deployment.\n"
    )
