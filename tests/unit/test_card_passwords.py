"""Card passwords (P-1, P-2): keyed verification values, one lockout rule, their keys."""

from __future__ import annotations

import hashlib
import hmac
import threading
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from sscard.core.keys import load_key
from sscard.core.passwords import PinKey, enter_pin

KEY = bytes.fromhex("5a" * 32)


def test_p_1_a_verification_value_is_bound_to_its_key_and_subject() -> None:
    key = PinKey(KEY)
    stored = key.verifier("person:7", "482913")
    assert stored.startswith("pv1:1:")
    assert "482913" not in stored
    assert key.matches(stored, "person:7", "482913")
    assert not key.matches(stored, "person:7", "482914")
    # Copied onto another person's row, it does not open their account.
    assert not key.matches(stored, "person:8", "482913")
    # C-1: the other side's key (or a stolen table without the key) checks nothing.
    assert not PinKey(bytes.fromhex("b4" * 32)).matches(stored, "person:7", "482913")
    assert not key.needs_upgrade(stored)


def test_p_1_values_stored_before_verification_values_still_verify_and_upgrade() -> None:
    keyed = hmac.new(KEY, b"482913", hashlib.sha256).hexdigest()
    legacy = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(keyed)
    key = PinKey(KEY)
    assert key.matches(legacy, "person:7", "482913")
    assert not key.matches(legacy, "person:7", "000001")
    assert key.needs_upgrade(legacy)


def test_p_2_consecutive_wrong_entries_lock_and_a_right_one_resets() -> None:
    first = enter_pin(right=False, failed_attempts=0, max_wrong=3)
    assert (first.verified, first.failed_attempts, first.locked, first.attempts_left) == (
        False,
        1,
        False,
        2,
    )
    assert enter_pin(right=True, failed_attempts=2, max_wrong=3).failed_attempts == 0
    third = enter_pin(right=False, failed_attempts=2, max_wrong=3)
    assert third.locked
    assert third.attempts_left == 0
    assert enter_pin(right=False, failed_attempts=0, max_wrong=1).locked  # policy count


def test_a_key_created_by_many_threads_at_once_is_whole_and_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent first uses of a missing key never read it empty (was: key_unavailable)."""
    monkeypatch.setenv("SSCARD_KEY_DIR", str(tmp_path))
    monkeypatch.setenv("SSCARD_CREATE_KEYS", "1")
    monkeypatch.delenv("SSCARD_RACE_KEY", raising=False)
    barrier = threading.Barrier(16)
    keys: list[bytes] = []
    errors: list[BaseException] = []

    def first_use() -> None:
        barrier.wait()
        try:
            keys.append(load_key("race"))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(keys) == 16
    assert len(set(keys)) == 1
    assert len(keys[0]) == 32
    assert [p.name for p in tmp_path.iterdir()] == ["race.key"]
    assert (tmp_path / "race.key").stat().st_mode & 0o777 == 0o600
