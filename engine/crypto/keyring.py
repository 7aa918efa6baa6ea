"""The keyring: each owner's data key and audit key, made, wrapped, unwrapped and cached.

An owner is an instance (its id), or the store itself (:data:`STORE_OWNER`) for the records
that belong to no instance: idempotency replies and messages about no instance. Its two keys
(a 256-bit data key, a 256-bit audit key) are made together and stored wrapped as one,
under the provider's current key-encryption key, bound to the owner.

Unwrapped keys are cached for the life of the keyring (a data key never changes: a rotation
re-wraps it), but only once read from a committed row: keys made in a unit of work that
may still roll back live in that unit of work (:class:`Fresh`), never in the cache, so a
rolled-back key can never seal a value.

An erased owner's row is a tombstone (its wrapped key destroyed): :meth:`Keyring.find` raises
:class:`InstanceErased` for it and :meth:`Keyring.forget` drops it from this process's cache;
other processes are covered by the unit of work, which reads the row before its first seal
for an owner (:meth:`SealedUnitOfWork.ensure_keys`).
"""

from __future__ import annotations

import secrets
import threading
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from opcatflow.engine.audit import Redactor
from opcatflow.engine.crypto.cipher import OwnerKeys
from opcatflow.engine.crypto.providers import KeyProvider
from opcatflow.engine.errors import InstanceErased, KeyUnavailable
from opcatflow.engine.ports import DataKeyRepository
from opcatflow.engine.rows import WrappedKey

STORE_OWNER = "opcatflow:store"
SUBJECT_OWNER = "opcatflow:subjects"  # its audit key makes the blind index of data subjects
STORE_OWNERS = frozenset({STORE_OWNER, SUBJECT_OWNER})  # never erased
_WRAP_AAD = b"opcatflow data key\x00"
_KEY = 32

Fresh = dict[str, OwnerKeys]  # owner -> keys made in one unit of work, not committed yet


def wrap_aad(owner: str) -> bytes:
    return _WRAP_AAD + owner.encode()


class Keyring:
    """Data keys through a :class:`KeyProvider`.

    Args:
        provider: holds the key-encryption keys.
        cache_size: how many owners' unwrapped keys to keep (then the cache starts again).
    """

    def __init__(self, provider: KeyProvider, *, cache_size: int = 100_000) -> None:
        self.provider = provider
        self._cache: dict[str, OwnerKeys] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def find(self, repo: DataKeyRepository, owner: str, fresh: Fresh) -> OwnerKeys | None:
        """The keys of ``owner`` (``None``: it has none, e.g. an instance an older release
        wrote and nothing has written since).

        Raises:
            KeyUnavailable: its wrapped key does not unwrap.
            InstanceErased: its keys were erased.
        """
        keys = fresh.get(owner) or self._cache.get(owner)
        if keys is not None:
            return keys
        row = repo.get(owner)
        if row is None:
            return None
        if row.erased_at is not None:
            raise InstanceErased(owner)
        keys = self.unwrap(row)
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[owner] = keys
        return keys

    def forget(self, owner: str) -> None:
        """Drop ``owner``'s keys from this process's cache (they were erased)."""
        with self._lock:
            self._cache.pop(owner, None)

    def create(self, repo: DataKeyRepository, owner: str, now: datetime, fresh: Fresh) -> OwnerKeys:
        """New keys for ``owner``, stored wrapped in this unit of work.

        Raises:
            KeyUnavailable: no key-encryption key to wrap them with.
        """
        kek = self.current_kek(repo)
        data_key, audit_key = secrets.token_bytes(_KEY), secrets.token_bytes(_KEY)
        wrapped = self.provider.wrap(kek, data_key + audit_key, wrap_aad(owner))
        if not repo.add(WrappedKey(owner, kek, wrapped, now)):
            # Another unit of work made them first (the store's own, on PostgreSQL) and
            # committed: theirs are the keys.
            found = self.find(repo, owner, fresh)
            assert found is not None
            return found
        keys = fresh[owner] = OwnerKeys(owner, kek, AESGCM(data_key), Redactor(audit_key))
        return keys

    def current_kek(self, repo: DataKeyRepository) -> str:
        """The KEK new keys are wrapped with. A key file is created (mode 0600) only for a
        database without data keys: for one with some, a missing key is an error.

        Raises:
            KeyUnavailable
        """
        try:
            return self.provider.current(create=False)
        except KeyUnavailable:
            used = repo.kek_counts()
            if not used:
                return self.provider.current(create=True)
            named = ", ".join(sorted(used))
            raise KeyUnavailable(
                named,
                f"not in {self.provider.describe()}, which has no key at all, while this "
                "database's data keys are wrapped with it",
                "restore the key from the backup kept apart from the database (a new key "
                "would not open them); see docs/operations.md",
            ) from None

    def unwrap(self, row: WrappedKey) -> OwnerKeys:
        """Raises: KeyUnavailable."""
        plain = self.provider.unwrap(row.kek_id, row.wrapped, wrap_aad(row.owner))
        if len(plain) != 2 * _KEY:
            raise KeyUnavailable(
                row.kek_id, f"the wrapped key of {row.owner} is not a key pair", "restore it"
            )
        return OwnerKeys(row.owner, row.kek_id, AESGCM(plain[:_KEY]), Redactor(plain[_KEY:]))

    def rewrap(self, row: WrappedKey, kek_id: str) -> WrappedKey:
        """``row``'s keys wrapped with KEK ``kek_id`` instead (the keys themselves, and so
        every value sealed with them, unchanged). Raises: KeyUnavailable."""
        plain = self.provider.unwrap(row.kek_id, row.wrapped, wrap_aad(row.owner))
        wrapped = self.provider.wrap(kek_id, plain, wrap_aad(row.owner))
        return WrappedKey(row.owner, kek_id, wrapped, row.created_at)
