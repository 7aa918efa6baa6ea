"""Key-encryption keys (KEKs): held outside the database, behind a small port.

The database keeps one data key per instance, wrapped (AES-256-GCM) by a key-encryption key
that never enters it. A :class:`KeyProvider` wraps and unwraps those data keys; it is the only
thing that ever sees a KEK, so a KMS or an HSM plugs in by implementing it (wrap and unwrap
become calls to the device), named on the command line as ``--key-provider module:factory``.

Two providers ship:

- :class:`KeyFile`: a file of KEKs, one a line, the last one current. Created with mode 0600
  on first use when the database has no data keys yet, so a new deployment (``make serve``)
  works without a step; a missing file for a database that has data keys is an error, never
  a new key.
- :class:`EnvironmentKeys`: the same lines in an environment variable (``OPCATFLOW_KEK``),
  for deployments whose secrets arrive that way; it cannot add a key itself.

A KEK's id is derived from the key (``kek-`` and 16 hex digits of a SHA-256), so a file
restored from the wrong backup is told apart from the right one by the id every wrapped key
names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import os
import secrets
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from opcatflow.engine.errors import KeyUnavailable

KEY_FILE_ENV = "OPCATFLOW_KEY_FILE"
KEK_ENV = "OPCATFLOW_KEK"
_NONCE = 12
_DOCS = "see docs/operations.md"


def kek_id(key: bytes) -> str:
    """A key-encryption key's public id: names it without saying anything about it."""
    return "kek-" + hashlib.sha256(b"opcatflow kek id\x00" + key).hexdigest()[:16]


def default_key_file() -> Path:
    """``$OPCATFLOW_KEY_FILE``, else ``opcatflow/keys`` in the user's configuration folder
    (``$XDG_CONFIG_HOME``, else ``~/.config``): outside the database's folder, so a copy of
    that folder carries no key."""
    named = os.environ.get(KEY_FILE_ENV)
    if named:
        return Path(named)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "opcatflow" / "keys"


class KeyProvider(Protocol):
    """Wraps and unwraps data keys with key-encryption keys it keeps to itself.

    ``aad`` binds a wrapped key to its owner (the instance id): a wrapped key copied onto
    another instance does not unwrap.
    """

    def describe(self) -> str:
        """Where the keys are, for messages (``key file /etc/opcatflow/keys``)."""

    def current(self, *, create: bool) -> str:
        """The id of the KEK new data keys are wrapped with; with ``create``, one is made if
        there is none yet (a provider that cannot make one raises).

        Raises:
            KeyUnavailable: there is none (and ``create`` is false or impossible).
        """

    def wrap(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        """``plaintext`` sealed under KEK ``key_id``. Raises: KeyUnavailable."""

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        """The plaintext of :meth:`wrap`. Raises: KeyUnavailable (unknown KEK, or the
        wrapped key does not open under it)."""

    def add_key(self) -> str:
        """Make a new KEK current (for rotation); returns its id. Raises: KeyUnavailable
        when the provider cannot (keys in an environment variable, a KMS: add it there)."""

    def retire(self, key_id: str) -> None:
        """Forget KEK ``key_id`` (after no data key is wrapped with it any more)."""

    def key_ids(self) -> list[str]:
        """The KEKs it holds, oldest first (a KMS may list only the current one)."""


class LocalKeys:
    """KEKs held as bytes in this process (the key file's and the environment's)."""

    def __init__(self, keys: Mapping[str, bytes] | None = None, current: str | None = None):
        self._keys: dict[str, bytes] = dict(keys or {})
        self._ciphers: dict[str, AESGCM] = {}
        self._current = current

    def describe(self) -> str:
        return "keys held in memory"

    def _load(self) -> None:
        """Refresh ``_keys`` and ``_current`` from where the keys live (nothing here)."""

    def current(self, *, create: bool) -> str:
        self._load()
        if self._current is None:
            if not create:
                raise KeyUnavailable(
                    "(none)", f"no key-encryption key in {self.describe()}", f"restore it; {_DOCS}"
                )
            return self.add_key()
        return self._current

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is not None:
            return cipher
        key = self._keys.get(key_id)
        if key is None:
            self._load()
            key = self._keys.get(key_id)
        if key is None:
            raise KeyUnavailable(
                key_id,
                f"not in {self.describe()}",
                f"restore the key from the backup kept apart from the database; {_DOCS}",
            )
        cipher = self._ciphers[key_id] = AESGCM(key)
        return cipher

    def wrap(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._cipher(key_id).encrypt(nonce, plaintext, aad)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        try:
            return self._cipher(key_id).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
        except InvalidTag:
            raise KeyUnavailable(
                key_id,
                f"a data key wrapped with it does not open with the key of that id in "
                f"{self.describe()} (the key or the wrapped data key was altered)",
                f"restore both from their backups; {_DOCS}",
            ) from None

    def add_key(self) -> str:
        key = AESGCM.generate_key(bit_length=256)
        key_id = kek_id(key)
        self._keys[key_id] = key
        self._current = key_id
        return key_id

    def key_ids(self) -> list[str]:
        self._load()
        return list(self._keys)

    def retire(self, key_id: str) -> None:
        if key_id == self._current:
            raise ValueError("the current key-encryption key cannot be retired")
        self._keys.pop(key_id, None)
        self._ciphers.pop(key_id, None)


def parse_keys(text: str, where: str) -> tuple[dict[str, bytes], str | None]:
    """KEKs from lines ``kek-<id> <base64 key>`` (``#`` comments and blank lines allowed;
    the id may be left out); the last one is current.

    Raises:
        KeyUnavailable: a line is not a 32-byte key, or names an id that is not its own.
    """
    keys: dict[str, bytes] = {}
    current = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        named, encoded = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32 or (named is not None and named != kek_id(key)):
            raise KeyUnavailable(
                named or "(unnamed)",
                f"line {number} of {where} is not a 32-byte key in base64 under its own id",
                f"restore the file from its backup; {_DOCS}",
            )
        current = kek_id(key)
        keys.pop(current, None)  # a repeated key moves to the end: it is the current one
        keys[current] = key
    return keys, current


def _lines(keys: Mapping[str, bytes]) -> str:
    header = (
        "# opcatflow key-encryption keys: the last line is current. Back this file up apart\n"
        "# from the database. Without it the personal values stored there cannot be read.\n"
    )
    return header + "".join(f"{i} {base64.b64encode(k).decode()}\n" for i, k in keys.items())


class KeyFile(LocalKeys):
    """KEKs in a file (mode 0600, in a folder made 0700), one per line, the last current.

    Re-read when it changes on disk, so a rotation run by another process is seen. Written
    whole through a temporary file, fsync and rename, so a kill leaves the old file or the
    new one, never half of one.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        super().__init__()
        self.path = Path(path) if path is not None else default_key_file()
        self._stamp: tuple[int, int] | None = None
        self._guard = threading.Lock()

    def describe(self) -> str:
        return f"key file {self.path}"

    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._keys, self._current, self._stamp = {}, None, None
            self._ciphers.clear()
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            text = self.path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as err:
            raise KeyUnavailable(
                "(unread)", f"{self.describe()} cannot be read ({err})", f"fix it; {_DOCS}"
            ) from None
        self._keys, self._current = parse_keys(text, self.describe())
        self._ciphers.clear()
        self._stamp = stamp

    def add_key(self) -> str:
        with self._guard:  # nothing sees the new key before the file holds it
            self._load()
            key = AESGCM.generate_key(bit_length=256)
            keys = {**self._keys, kek_id(key): key}
            if not self._write(keys, replace=bool(self._keys)):
                # Another process created the file first: its key is the one all use.
                self._load()
                assert self._current is not None
                return self._current
            self._keys, self._current = keys, kek_id(key)
            return self._current

    def retire(self, key_id: str) -> None:
        with self._guard:
            self._load()
            if key_id == self._current:
                raise ValueError("the current key-encryption key cannot be retired")
            keys = {k: v for k, v in self._keys.items() if k != key_id}
            self._write(keys, replace=True)
            self._keys = keys
            self._ciphers.pop(key_id, None)

    def _write(self, keys: Mapping[str, bytes], *, replace: bool) -> bool:
        """Write ``keys``; without ``replace``, only if there is no file yet (returns False
        if there is one)."""
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".keys-")  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(_lines(keys))
                fh.flush()
                os.fsync(fh.fileno())
            if replace:
                os.replace(temp, self.path)
            else:
                try:
                    os.link(temp, self.path)  # fails if the file exists: no race to create
                except FileExistsError:
                    return False
        finally:
            Path(temp).unlink(missing_ok=True)
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power loss
        finally:
            os.close(directory)
        self._stamp = None
        return True


class EnvironmentKeys(LocalKeys):
    """KEKs in an environment variable (``OPCATFLOW_KEK``), in the key file's line format
    (``;`` may separate lines). Adding a key means changing the variable: rotate by putting
    the new key last, restarting, and running ``keys rotate``."""

    def __init__(self, variable: str = KEK_ENV) -> None:
        self.variable = variable
        text = os.environ.get(variable, "").replace(";", "\n")
        keys, current = parse_keys(text, f"${variable}")
        super().__init__(keys, current)

    def describe(self) -> str:
        return f"environment variable {self.variable}"

    def add_key(self) -> str:
        raise KeyUnavailable(
            self._current or "(none)",
            f"{self.describe()} cannot be changed from here",
            f"add a new key as its last line (`opcatflow keys new` prints one), restart, then "
            f"run `opcatflow keys rotate`; {_DOCS}",
        )

    def retire(self, key_id: str) -> None:
        raise KeyUnavailable(
            key_id, f"{self.describe()} cannot be changed from here", "remove its line yourself"
        )


def new_key_line() -> str:
    """A new KEK as a line of the key file's format (for keys kept in the environment)."""
    key = AESGCM.generate_key(bit_length=256)
    return f"{kek_id(key)} {base64.b64encode(key).decode()}"


def load_provider(spec: str | None) -> KeyProvider:
    """The provider a deployment names: ``file:PATH``, ``env`` / ``env:VARIABLE``, or
    ``module:factory`` (a callable returning a :class:`KeyProvider`: a KMS or HSM); none:
    ``$OPCATFLOW_KEK`` when it is set, else the key file.

    Raises:
        ValueError: a spec that names nothing loadable.
    """
    if not spec:
        return EnvironmentKeys() if os.environ.get(KEK_ENV) else KeyFile()
    kind, _, rest = spec.partition(":")
    if kind == "file":
        return KeyFile(rest or None)
    if kind == "env":
        return EnvironmentKeys(rest or KEK_ENV)
    if not rest:
        raise ValueError(f"key provider {spec!r}: expected file:PATH, env[:VAR] or module:factory")
    try:
        factory = getattr(importlib.import_module(kind), rest)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"key provider {spec!r} cannot be loaded: {err}") from None
    provider: KeyProvider = factory()
    return provider
