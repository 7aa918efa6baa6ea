"""The store contract, part 4: wrapped data keys and key settings, on every store."""

from __future__ import annotations

import pytest
from storekit import T0

from opcatflow.engine.ports import Store
from opcatflow.engine.rows import WrappedKey


def key(owner: str, kek: str = "kek-a", wrapped: bytes = b"\x00\xff" * 8) -> WrappedKey:
    return WrappedKey(owner, kek, wrapped, T0)


def test_a_wrapped_key_is_stored_once_and_read_back_as_given(store: Store) -> None:
    with store.write() as uow:
        assert uow.data_keys.add(key("i1"))
    with store.write() as uow:
        assert not uow.data_keys.add(key("i1", wrapped=b"other"))  # the first one stays
    with store.read() as uow:
        assert uow.data_keys.get("i1") == key("i1")
        assert uow.data_keys.get("i2") is None


def test_rewrapping_needs_the_kek_it_is_still_wrapped_with(store: Store) -> None:
    with store.write() as uow:
        for owner in ("a", "b", "c"):
            uow.data_keys.add(key(owner))
    with store.write() as uow:
        assert uow.data_keys.rewrap(key("a", "kek-b", b"new"), "kek-a")
        assert not uow.data_keys.rewrap(key("a", "kek-c", b"newer"), "kek-a")
    with store.read() as uow:
        assert uow.data_keys.get("a") == key("a", "kek-b", b"new")
        assert [k.owner for k in uow.data_keys.wrapped_with_other("kek-b")] == ["b", "c"]
        assert [k.owner for k in uow.data_keys.wrapped_with_other("kek-b", after="b")] == ["c"]
        assert uow.data_keys.wrapped_with_other("kek-b", limit=1)[0].owner == "b"
        assert uow.data_keys.kek_counts() == {"kek-a": 2, "kek-b": 1}


def _add_then_die(store: Store) -> None:
    with store.write() as uow:
        uow.data_keys.add(key("x"))
        raise RuntimeError("dies before the commit")


def test_a_rolled_back_key_is_gone(store: Store) -> None:
    with pytest.raises(RuntimeError):
        _add_then_die(store)
    with store.read() as uow:
        assert uow.data_keys.get("x") is None


def test_key_settings_are_set_replaced_and_removed(store: Store) -> None:
    with store.write() as uow:
        uow.data_keys.set_setting("kek_rotation", "kek-a")
        uow.data_keys.set_setting("kek_rotation", "kek-b")
    with store.read() as uow:
        assert uow.data_keys.setting("kek_rotation") == "kek-b"
    with store.write() as uow:
        uow.data_keys.set_setting("kek_rotation", None)
    with store.read() as uow:
        assert uow.data_keys.setting("kek_rotation") is None
