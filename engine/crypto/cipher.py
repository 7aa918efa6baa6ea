"""Sealed values: AES-256-GCM under an instance's data key, bound to where they sit.

A sealed value is ``{"$sealed": "<base64>"}`` where a JSON value is expected (instance data,
outbox payloads) and ``sealed:<base64>`` where text is (an audit reason, an idempotency
reply). The base64 holds a format byte, a random 96-bit nonce and the ciphertext with its
tag. The associated data names the place (``instance/<id>/data/<field>``), so a sealed value
copied to another field or instance does not open: it is an error, never another value.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from opcatflow.engine.audit import Redactor
from opcatflow.engine.errors import KeyUnavailable

SEALED = "$sealed"  # the one key of a sealed JSON value
TEXT_PREFIX = "sealed:"  # a sealed text value
_FORMAT = b"\x01"
_NONCE = 12
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def is_sealed(value: Any) -> bool:
    """Whether a stored JSON value is sealed (no field type stores a one-key object)."""
    return type(value) is dict and len(value) == 1 and SEALED in value


def is_sealed_text(value: str | None) -> bool:
    return value is not None and value.startswith(TEXT_PREFIX)


ERASED_KEY = "$erased"  # the one key of an erased value as stored: {"$erased": "<when>"}


class ErasedValue(str):
    """What an erased value reads as: the text ``[erased]``, told apart from the same text
    typed by someone by its type (a write that keeps it keeps the value erased)."""

    __slots__ = ()


ERASED = ErasedValue("[erased]")


def is_erased(value: Any) -> bool:
    """Whether a stored JSON value is an erased one."""
    return type(value) is dict and len(value) == 1 and ERASED_KEY in value


def normalise_subject(subject: Any) -> str:
    """A subject id as compared: Unicode NFKC, case folded, spaces collapsed (so ``Ana
    López`` and ``ana  lópez`` are one person, ``A-123`` and ``a-123`` one file number)."""
    return " ".join(unicodedata.normalize("NFKC", str(subject)).casefold().split())


def blind_index(keys: OwnerKeys, subject: Any) -> str:
    """The blind index of a data subject: a keyed hash of its normalised id, under the
    subject index's own key (never the id itself)."""
    return keys.redactor.digest(normalise_subject(subject))


@dataclass(frozen=True, slots=True)
class OwnerKeys:
    """The unwrapped keys of one owner (an instance, or the store's own records): the data
    key that seals its values and the key of its audit trail's keyed hashes."""

    owner: str
    kek_id: str
    cipher: AESGCM
    redactor: Redactor

    def seal_bytes(self, plain: bytes, where: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self.cipher.encrypt(nonce, plain, where.encode())
        return base64.b64encode(_FORMAT + nonce + sealed).decode("ascii")

    def open_bytes(self, token: str, where: str) -> bytes:
        try:
            raw = base64.b64decode(token, validate=True)
            if raw[:1] != _FORMAT:
                raise ValueError("unknown format")
            return self.cipher.decrypt(raw[1 : 1 + _NONCE], raw[1 + _NONCE :], where.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise KeyUnavailable(
                self.kek_id,
                f"the sealed value at {where} does not open with the data key of {self.owner} "
                "(altered, or copied from elsewhere)",
                "restore the database from its backup; see docs/operations.md",
            ) from None

    def seal(self, value: Any, where: str) -> dict[str, str]:
        """A JSON value, sealed."""
        return {SEALED: self.seal_bytes(_ENCODER.encode(value).encode(), where)}

    def open(self, sealed: dict[str, str], where: str) -> Any:
        return json.loads(self.open_bytes(sealed[SEALED], where))

    def seal_text(self, text: str, where: str) -> str:
        return TEXT_PREFIX + self.seal_bytes(text.encode(), where)

    def open_text(self, sealed: str, where: str) -> str:
        return self.open_bytes(sealed[len(TEXT_PREFIX) :], where).decode()


def data_place(instance_id: str, name: str) -> str:
    return f"instance/{instance_id}/data/{name}"


def reason_place(instance_id: str, seq: int) -> str:
    return f"instance/{instance_id}/audit/{seq}/reason"


def outbox_place(message_key: str) -> str:
    return f"outbox/{message_key}"


def reply_place(api_key_id: str, key: str) -> str:
    return f"idempotency/{api_key_id}/{key}"
