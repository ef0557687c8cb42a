"""The log privacy guard itself: it must recognise what it is there to catch."""

from __future__ import annotations

import logging
from datetime import date

from sscard.core.ids import luhn_complete, make_citizen_id, mask_bank_card, mask_id_number
from tests.conftest import LEAK_WATCH, TEST_SECRETS, personal_numbers, secrets_in


def test_guard_recognises_full_numbers_and_ignores_masked_ones() -> None:
    number = make_citizen_id("441900", date(1990, 5, 17), 123)
    card = luhn_complete("622202" + "123456789012")
    assert personal_numbers(f"person {number} card {card}") == [number, card]
    assert personal_numbers(f"{mask_id_number(number)} {mask_bank_card(card)}") == []
    assert personal_numbers("order 2026112300000000017 at 12:00") == []  # no card prefix


def test_guard_collects_a_leaking_record() -> None:
    number = make_citizen_id("441900", date(1991, 1, 2), 321)
    before = len(LEAK_WATCH.leaks)
    record = logging.LogRecord("probe", logging.INFO, __file__, 1, "leak %s", (number,), None)
    LEAK_WATCH.emit(record)
    assert len(LEAK_WATCH.leaks) == before + 1
    assert number not in LEAK_WATCH.leaks[-1]  # the report itself shows only the tail
    LEAK_WATCH.leaks.pop()  # this one was planted


def test_guard_recognises_passwords_tokens_and_secrets_given_as_values() -> None:
    assert secrets_in("login failed: password=hunter2-x for staff 7") == ["hunter2-x"]
    assert secrets_in('body {"new_password": "602417"}') == ["602417"]
    assert secrets_in("Authorization: Bearer sk_live.abcdef123") == ["sk_live.abcdef123"]
    assert secrets_in("TOTP: 493022") == ["493022"]
    # Masked values and words about passwords are no leak.
    assert secrets_in("password: ******") == []
    assert secrets_in("password reset for staff 3; pin locked") == []


def test_guard_knows_every_password_literal_the_tests_use() -> None:
    assert "482913" in TEST_SECRETS  # the walk-through's consumption password
    assert secrets_in("settled with 482913 at the counter") == ["482913"]


def test_guard_collects_a_record_leaking_a_password() -> None:
    before = len(LEAK_WATCH.leaks)
    record = logging.LogRecord(
        "probe", logging.INFO, __file__, 1, "change %s", ("old_password=730416",), None
    )
    LEAK_WATCH.emit(record)
    assert len(LEAK_WATCH.leaks) == before + 1
    assert "730416" not in LEAK_WATCH.leaks[-1]
    LEAK_WATCH.leaks.pop()  # this one was planted
