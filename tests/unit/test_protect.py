"""Personal data at rest, the pure part: sealing, blind indexes, keyrings from configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from sscard.core.keys import KeyUnavailable
from sscard.core.protect import (
    DataKeyring,
    DataUnreadable,
    IndexKeyring,
    blind_version,
    load_versions,
    sealed_length,
    sealed_version,
)

K1, K2 = bytes(range(32)), bytes(range(1, 33))
CONTEXT = "persons.id_number"
NUMBER = "44190019900517123X"


def test_seal_opens_to_the_plaintext_and_never_shows_it() -> None:
    ring = DataKeyring({1: K1})
    sealed = ring.seal(NUMBER, context=CONTEXT)
    assert sealed.startswith("v1:")
    assert NUMBER not in sealed
    assert ring.open(sealed, context=CONTEXT) == NUMBER
    # A random 96-bit nonce per value: the same number never seals the same way twice.
    assert ring.seal(NUMBER, context=CONTEXT) != sealed
    assert len(sealed) <= sealed_length(18)
    assert sealed_version(sealed) == 1


def test_a_tampered_value_fails_loudly_never_returns_garbage() -> None:
    ring = DataKeyring({1: K1})
    sealed = ring.seal(NUMBER, context=CONTEXT)
    body = sealed[3:]
    flipped = "v1:" + ("B" if body[5] == "A" else "A").join((body[:5], body[6:]))
    for bad in (flipped, sealed[:-4], "v1:", NUMBER, "v1:!!!!"):
        with pytest.raises(DataUnreadable):
            ring.open(bad, context=CONTEXT)


def test_a_value_moved_to_another_column_does_not_open() -> None:
    ring = DataKeyring({1: K1})
    sealed = ring.seal(NUMBER, context="persons.id_number")
    with pytest.raises(DataUnreadable, match=r"cards\.bank_card_number"):
        ring.open(sealed, context="cards.bank_card_number")


def test_the_wrong_key_or_a_missing_version_fails_with_a_clear_error() -> None:
    sealed = DataKeyring({1: K1}).seal(NUMBER, context=CONTEXT)
    with pytest.raises(DataUnreadable, match="integrity check"):
        DataKeyring({1: K2}).open(sealed, context=CONTEXT)
    with pytest.raises(DataUnreadable, match="version 1, which is not configured"):
        DataKeyring({2: K2}).open(sealed, context=CONTEXT)


def test_rotation_keyring_seals_under_the_newest_and_opens_both() -> None:
    old = DataKeyring({1: K1}).seal(NUMBER, context=CONTEXT)
    ring = DataKeyring({1: K1, 2: K2})
    assert ring.current == 2
    assert ring.open(old, context=CONTEXT) == NUMBER
    assert sealed_version(ring.seal(NUMBER, context=CONTEXT)) == 2


def test_data_keys_are_aes_256() -> None:
    with pytest.raises(KeyUnavailable, match="32 bytes"):
        DataKeyring({1: bytes(16)})


def test_blind_index_normalises_and_is_keyed_per_kind_and_version() -> None:
    ring = IndexKeyring({1: K1})
    h = ring.blind(NUMBER, kind="id_number")
    assert blind_version(h) == 1
    assert NUMBER not in h
    assert ring.blind(NUMBER.lower(), kind="id_number") == h  # upper-case X
    assert ring.blind(f" {NUMBER[:6]} {NUMBER[6:]}", kind="id_number") == h
    assert ring.blind(NUMBER, kind="bank_card_number") != h
    assert IndexKeyring({1: K2}).blind(NUMBER, kind="id_number") != h
    both = IndexKeyring({1: K1, 2: K2}).blinds(NUMBER, kind="id_number")
    assert len(both) == 2
    assert both[1] == h
    assert blind_version(both[0]) == 2


def test_keyring_configuration_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSCARD_DATA_KEYS", f"2:{K2.hex()}, 1:{K1.hex()}")
    assert load_versions("data") == {2: K2, 1: K1}
    monkeypatch.setenv("SSCARD_DATA_KEYS", "2-abc")
    with pytest.raises(KeyUnavailable, match="SSCARD_DATA_KEYS"):
        load_versions("data")
    monkeypatch.delenv("SSCARD_DATA_KEYS")
    monkeypatch.setenv("SSCARD_DATA_KEY", K1.hex())
    assert load_versions("data") == {1: K1}  # SSCARD_DATA_KEY alone is version 1


def test_keyring_from_key_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SSCARD_DATA_KEYS", "SSCARD_DATA_KEY", "SSCARD_CREATE_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSCARD_KEY_DIR", str(tmp_path))
    with pytest.raises(KeyUnavailable, match="no key 'data'"):
        load_versions("data")
    (tmp_path / "data.key").write_text(K1.hex())
    (tmp_path / "data.v2.key").write_text(K2.hex())
    assert load_versions("data") == {1: K1, 2: K2}
    (tmp_path / "data.key").unlink()  # version 1 retired after a rotation
    assert load_versions("data") == {2: K2}
