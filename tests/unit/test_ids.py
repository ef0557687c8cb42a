"""ID-1, ID-2: citizen numbers and residence permits; USCC; bank cards; masking.

The check characters are recomputed here with independent implementations of
GB 11643, GB 32100 and Luhn, so the tests do not trust the code under test.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscard.core.errors import InvalidIdentifier, InvalidInput
from sscard.core.ids import (
    ID_REASONS,
    IdKind,
    luhn_complete,
    make_citizen_id,
    mask_bank_card,
    mask_id_number,
    mask_phone,
    parse_bank_card_number,
    parse_id_number,
    parse_uscc,
)

DONGGUAN = "441900"
# Region codes that stdnum's table knows for every birth year used below.
REGIONS = ("110101", "440300", "410102", DONGGUAN)
BAD_CHECK = "bad_check_character"
IMPOSSIBLE_BIRTH = "impossible_birth_date"
UNKNOWN_REGION = "unknown_region_code"

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def gb11643_check(body: str) -> str:
    """GB 11643 check character of a 17-digit body, computed from the standard."""
    assert len(body) == 17
    total = sum(int(c) * (2 ** (17 - i) % 11) for i, c in enumerate(body))
    return "10X98765432"[total % 11]


def gb32100_check(body: str) -> str:
    """GB 32100 (USCC) check character of a 17-character body."""
    assert len(body) == 17
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def luhn_ok(number: str) -> bool:
    """Plain Luhn (ISO/IEC 7812) check, written out."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def id_from_body(body: str) -> str:
    """A number whose check character is right, whatever the body says."""
    return body + gb11643_check(body)


def refusal(raw: str, *, today: date | None = None) -> InvalidIdentifier:
    with pytest.raises(InvalidIdentifier) as info:
        parse_id_number(raw, today=today)
    return info.value


valid_ids = st.builds(
    make_citizen_id,
    st.sampled_from(REGIONS),
    st.dates(min_value=date(1990, 1, 1), max_value=date(2020, 12, 31)),
    st.integers(min_value=0, max_value=999),
)


# --- ID-1: citizen numbers --------------------------------------------------------


def test_id_1_make_citizen_id_agrees_with_gb_11643() -> None:
    number = make_citizen_id(DONGGUAN, date(1990, 3, 15), 123)
    assert number[:17] == "44190019900315123"
    assert number[17] == gb11643_check(number[:17])


def test_id_1_accepts_valid_citizen_number() -> None:
    number = make_citizen_id(DONGGUAN, date(1990, 3, 15), 123)
    checked = parse_id_number(number)
    assert checked.number == number
    assert checked.kind is IdKind.CITIZEN
    assert checked.birth_date == date(1990, 3, 15)
    assert checked.masked == mask_id_number(number)


@given(valid_ids)
def test_id_1_any_generated_citizen_number_parses(number: str) -> None:
    checked = parse_id_number(number)
    assert checked.number == number
    assert checked.kind is IdKind.CITIZEN
    assert checked.birth_date == date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def test_id_1_accepts_check_character_x_written_lowercase() -> None:
    order = next(o for o in range(1000) if gb11643_check(f"44190019900101{o:03d}") == "X")
    number = make_citizen_id(DONGGUAN, date(1990, 1, 1), order)
    assert number.endswith("X")
    assert parse_id_number(number.lower()).number == number


def test_id_1_strips_surrounding_whitespace() -> None:
    number = make_citizen_id(DONGGUAN, date(1990, 1, 1), 5)
    assert parse_id_number(f"  {number} ").number == number


def test_id_1_normalises_fullwidth_digits() -> None:
    number = make_citizen_id(DONGGUAN, date(1990, 1, 1), 5)
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in number)
    assert parse_id_number(fullwidth).number == number


def test_id_1_refuses_bad_check_character() -> None:
    number = make_citizen_id(DONGGUAN, date(1990, 3, 15), 123)
    wrong = "0" if number[-1] != "0" else "1"
    error = refusal(number[:-1] + wrong)
    assert error.extra["reason"] == BAD_CHECK
    assert error.field == "id_number"
    assert ID_REASONS[BAD_CHECK] in error.detail
    assert error.code == "invalid_identifier"
    assert error.status == 422


def test_id_1_refusal_detail_shows_only_the_masked_number() -> None:
    number = make_citizen_id(DONGGUAN, date(1990, 3, 15), 123)
    bad = number[:-1] + ("0" if number[-1] != "0" else "1")
    error = refusal(bad)
    assert mask_id_number(bad) in error.detail
    assert bad not in error.detail
    assert "19900315" not in error.detail


@given(
    valid_ids,
    st.integers(min_value=0, max_value=17),
    st.sampled_from("0123456789X"),
)
def test_id_1_any_single_character_change_is_refused(
    number: str, position: int, replacement: str
) -> None:
    if replacement == number[position] or (position < 17 and replacement == "X"):
        return
    changed = number[:position] + replacement + number[position + 1 :]
    error = refusal(changed)
    assert error.extra["reason"] == BAD_CHECK


@pytest.mark.parametrize("raw", ["", "4419001990010112", "44190019900101123", "4" * 19])
def test_id_1_refuses_wrong_length(raw: str) -> None:
    error = refusal(raw)
    assert error.extra["reason"] == "bad_length"
    assert error.field == "id_number"
    assert f"must have 18 characters, got {len(raw)}" in error.detail


def test_id_1_refuses_old_fifteen_digit_number() -> None:
    error = refusal("441900900101123")
    assert error.extra["reason"] == "bad_length"
    assert "got 15" in error.detail


def test_id_1_refuses_letters_in_the_body() -> None:
    error = refusal("4419001990A1011231")
    assert error.extra["reason"] == "bad_format"
    assert "only digits" in error.detail


def test_id_1_refuses_letter_other_than_x_as_check_character() -> None:
    error = refusal("44190019900101123A")
    assert error.extra["reason"] == "bad_format"


def test_id_1_refuses_non_ascii_digits_with_a_domain_error() -> None:
    """A superscript two passes ``str.isdigit``; it must still be a clean refusal."""
    number = make_citizen_id(DONGGUAN, date(1990, 1, 1), 123)
    with pytest.raises(InvalidIdentifier) as info:
        parse_id_number(number[:5] + "\u00b2" + number[6:])
    assert info.value.field == "id_number"


@pytest.mark.parametrize(
    "birth",
    ["19900230", "19900229", "19901301", "19900001", "19900132", "18991231"],
)
def test_id_1_refuses_impossible_birth_date(birth: str) -> None:
    error = refusal(id_from_body(f"{DONGGUAN}{birth}123"))
    assert error.extra["reason"] == IMPOSSIBLE_BIRTH
    assert ID_REASONS[IMPOSSIBLE_BIRTH] in error.detail
    assert error.field == "id_number"


def test_id_1_accepts_february_29_in_a_leap_year() -> None:
    number = id_from_body(f"{DONGGUAN}20000229123")
    assert parse_id_number(number).birth_date == date(2000, 2, 29)


def test_id_1_refuses_birth_date_after_today() -> None:
    today = date(2026, 3, 2)
    number = make_citizen_id(DONGGUAN, today + timedelta(days=1), 123)
    error = refusal(number, today=today)
    assert error.extra["reason"] == IMPOSSIBLE_BIRTH
    assert ID_REASONS[IMPOSSIBLE_BIRTH] in error.detail


def test_id_1_accepts_birth_date_equal_to_today() -> None:
    today = date(2026, 3, 2)
    number = make_citizen_id(DONGGUAN, today, 123)
    assert parse_id_number(number, today=today).birth_date == today


@pytest.mark.parametrize("region", ["999999", "000000"])
def test_id_1_refuses_unknown_region_code(region: str) -> None:
    error = refusal(make_citizen_id(region, date(1990, 1, 1), 123))
    assert error.extra["reason"] == UNKNOWN_REGION
    assert ID_REASONS[UNKNOWN_REGION] in error.detail
    assert error.field == "id_number"


@pytest.mark.parametrize("region", ["441999", "449999", "110199"])
def test_id_1_refuses_unknown_county_of_a_known_province(region: str) -> None:
    """Province known, county not: still a clean refusal, never a crash."""
    error = refusal(make_citizen_id(region, date(1990, 1, 1), 123))
    assert error.extra["reason"] == UNKNOWN_REGION
    assert error.field == "id_number"


def test_id_1_accepts_dongguan_region_code_for_holders_born_before_1988() -> None:
    """The region code is the place where the number was first assigned, not of birth.

    441900 (Dongguan) has existed since 1988; people born earlier who got their first
    number after 1988 carry it, and the region code is valid for them.
    """
    number = make_citizen_id(DONGGUAN, date(1975, 6, 1), 123)
    assert parse_id_number(number).kind is IdKind.CITIZEN


def test_id_1_field_name_is_taken_from_the_caller() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_id_number("123", field="agent.id_number")
    assert info.value.field == "agent.id_number"
    assert isinstance(info.value, InvalidInput)


# --- ID-3: gender from the order code ------------------------------------------


def test_id_3_odd_order_code_is_male() -> None:
    assert parse_id_number(make_citizen_id(DONGGUAN, date(1990, 1, 1), 123)).gender == "male"


def test_id_3_even_order_code_is_female() -> None:
    assert parse_id_number(make_citizen_id(DONGGUAN, date(1990, 1, 1), 124)).gender == "female"


@given(valid_ids)
def test_id_3_gender_follows_parity_of_seventeenth_digit(number: str) -> None:
    expected = "male" if int(number[16]) % 2 else "female"
    assert parse_id_number(number).gender == expected


# --- ID-2: Hong Kong, Macao and Taiwan residence permits ------------------------


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("810000", IdKind.HK_PERMIT),
        ("820000", IdKind.MACAO_PERMIT),
        ("830000", IdKind.TAIWAN_PERMIT),
    ],
)
def test_id_2_residence_permit_prefixes_give_their_kind(prefix: str, kind: IdKind) -> None:
    number = make_citizen_id(prefix, date(1985, 7, 1), 42)
    checked = parse_id_number(number)
    assert checked.kind is kind
    assert checked.birth_date == date(1985, 7, 1)
    assert checked.gender == "female"


@pytest.mark.parametrize("prefix", ["810000", "820000", "830000"])
def test_id_2_refuses_bad_check_character_on_a_permit(prefix: str) -> None:
    number = make_citizen_id(prefix, date(1985, 7, 1), 42)
    wrong = "0" if number[-1] != "0" else "1"
    error = refusal(number[:-1] + wrong)
    assert error.extra["reason"] == BAD_CHECK
    assert ID_REASONS[BAD_CHECK] in error.detail


def test_id_2_refuses_impossible_birth_date_on_a_permit() -> None:
    error = refusal(id_from_body("81000019900230001"))
    assert error.extra["reason"] == IMPOSSIBLE_BIRTH


def test_id_2_refuses_future_birth_date_on_a_permit() -> None:
    today = date(2026, 3, 2)
    error = refusal(make_citizen_id("830000", date(2027, 1, 1), 1), today=today)
    assert error.extra["reason"] == IMPOSSIBLE_BIRTH


def test_id_2_other_codes_in_81_are_not_permits() -> None:
    error = refusal(make_citizen_id("810001", date(1990, 1, 1), 1))
    assert error.extra["reason"] == UNKNOWN_REGION


# --- USCC (GB 32100) --------------------------------------------------------------


def test_uscc_accepts_valid_code() -> None:
    assert gb32100_check("91110000600037341") == "L"
    assert parse_uscc("91110000600037341L") == "91110000600037341L"


def test_uscc_normalises_case_and_spaces() -> None:
    assert parse_uscc(" 91110000600037341l ") == "91110000600037341L"


@given(st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9), st.sampled_from("12345679"))
def test_uscc_any_code_with_a_right_check_character_is_accepted(org: str, authority: str) -> None:
    body = f"{authority}1{DONGGUAN}{org}"
    assert parse_uscc(body + gb32100_check(body)) == body + gb32100_check(body)


def test_uscc_refuses_bad_check_character() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_uscc("91110000600037341M")
    assert info.value.extra["reason"] == "bad_check_character"
    assert info.value.field == "uscc"
    assert "bad check character" in info.value.detail


@pytest.mark.parametrize("raw", ["", "9111000060003734", "91110000600037341L0"])
def test_uscc_refuses_bad_length(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_uscc(raw)
    assert info.value.extra["reason"] == "bad_length"
    assert "18 characters" in info.value.detail
    assert info.value.field == "uscc"


@pytest.mark.parametrize("raw", ["9111000060003734IL", "91110000600037O41L", "9A110000600037341L"])
def test_uscc_refuses_bad_format(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_uscc(raw, field="unit.uscc")
    assert info.value.extra["reason"] == "bad_format"
    assert info.value.field == "unit.uscc"
    assert "invalid format" in info.value.detail


@pytest.mark.parametrize(
    "head",
    [
        "N2",  # agriculture: village-level collective economic organisation (B-2 village units)
        "N1",  # agriculture: group-level collective economic organisation
        "Y1",  # other registration authorities
        "A1",  # Central Military Commission: army institutions
    ],
)
def test_uscc_accepts_letter_registration_authorities(head: str) -> None:
    """GB 32100 allows letters as registration authority (N agriculture, Y other, A)."""
    body = f"{head}{DONGGUAN}MA1FL4WD2"
    code = body + gb32100_check(body)
    assert parse_uscc(code) == code


# --- Bank card numbers ------------------------------------------------------------


def test_luhn_complete_gives_a_luhn_valid_number() -> None:
    number = luhn_complete("622202123456789012")
    assert len(number) == 19
    assert luhn_ok(number)


@given(
    st.integers(min_value=16, max_value=19).flatmap(
        lambda n: st.text(alphabet="0123456789", min_size=n - 7, max_size=n - 7)
    )
)
def test_bank_card_any_luhn_valid_number_of_16_to_19_digits_in_bin_is_accepted(
    middle: str,
) -> None:
    number = luhn_complete("622202" + middle)
    assert luhn_ok(number)
    assert parse_bank_card_number(number, bin_prefixes=("622202",)) == number


def test_bank_card_spaces_are_removed() -> None:
    number = luhn_complete("622202123456789012")
    spaced = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    assert parse_bank_card_number(spaced) == number


def test_bank_card_refuses_bad_check_digit() -> None:
    number = luhn_complete("622202123456789012")
    bad = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not luhn_ok(bad)
    with pytest.raises(InvalidIdentifier) as info:
        parse_bank_card_number(bad)
    assert info.value.extra["reason"] == "bad_check_digit"
    assert info.value.field == "bank_card_number"
    assert "Luhn" in info.value.detail
    assert mask_bank_card(bad) in info.value.detail
    assert bad not in info.value.detail


@given(st.text(alphabet="0123456789", min_size=12, max_size=12), st.integers(0, 18))
def test_bank_card_any_single_digit_change_is_refused(middle: str, position: int) -> None:
    number = luhn_complete("622202" + middle)
    changed = number[:position] + str((int(number[position]) + 1) % 10) + number[position + 1 :]
    with pytest.raises(InvalidIdentifier) as info:
        parse_bank_card_number(changed)
    assert info.value.extra["reason"] == "bad_check_digit"


@pytest.mark.parametrize(
    "raw",
    [
        luhn_complete("62220212345678"),  # 15 digits
        luhn_complete("6222021234567890123"),  # 20 digits
        "62220212345678901X",
        "",
    ],
)
def test_bank_card_refuses_wrong_length_or_non_digits(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_bank_card_number(raw, field="card.bank_card_number")
    assert info.value.extra["reason"] == "bad_format"
    assert info.value.field == "card.bank_card_number"
    assert "16 to 19 digits" in info.value.detail


def test_bank_card_refuses_number_outside_the_banks_bin_ranges() -> None:
    number = luhn_complete("621790123456789012")
    with pytest.raises(InvalidIdentifier) as info:
        parse_bank_card_number(number, bin_prefixes=("622202", "623333"))
    assert info.value.extra["reason"] == "wrong_bin"
    assert "622202, 623333" in info.value.detail
    assert number not in info.value.detail


def test_bank_card_accepts_any_of_several_bin_prefixes() -> None:
    number = luhn_complete("623333123456789012")
    assert parse_bank_card_number(number, bin_prefixes=("622202", "623333")) == number


def test_bank_card_without_bin_prefixes_checks_no_range() -> None:
    number = luhn_complete("400000123456789012")
    assert parse_bank_card_number(number) == number


# --- Masking (S-1: nobody sees more than they need) -----------------------------


def test_mask_id_number_keeps_first_and_last_four() -> None:
    assert mask_id_number("441900199001011234") == "4419**********1234"


def test_mask_bank_card_keeps_bin_and_last_four() -> None:
    assert mask_bank_card("6222021234567890123") == "622202*********0123"


def test_mask_phone_keeps_prefix_and_last_four() -> None:
    assert mask_phone("13812345678") == "138****5678"


@pytest.mark.parametrize("short", ["", "1", "12345678"])
def test_mask_id_number_hides_short_values_entirely(short: str) -> None:
    assert mask_id_number(short) == "*" * len(short)


@pytest.mark.parametrize("short", ["", "1234567890"])
def test_mask_bank_card_hides_short_values_entirely(short: str) -> None:
    assert mask_bank_card(short) == "*" * len(short)


def test_mask_phone_hides_short_values_entirely() -> None:
    assert mask_phone("123456") == "******"


@given(valid_ids)
def test_masked_id_number_never_contains_the_middle_digits(number: str) -> None:
    masked = parse_id_number(number).masked
    assert len(masked) == 18
    assert masked[:4] == number[:4]
    assert masked[-4:] == number[-4:]
    assert set(masked[4:-4]) == {"*"}
    assert number[6:14] not in masked


@given(st.text(alphabet="0123456789", min_size=16, max_size=19))
def test_masked_bank_card_never_contains_the_middle_digits(number: str) -> None:
    masked = mask_bank_card(number)
    assert len(masked) == len(number)
    assert masked[:6] == number[:6]
    assert masked[-4:] == number[-4:]
    assert set(masked[6:-4]) == {"*"}


def test_c_1_missing_key_stops_unless_creation_is_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sscard.core.errors import DomainError
    from sscard.core.keys import load_key

    monkeypatch.delenv("SSCARD_PROBE_KEY", raising=False)
    monkeypatch.delenv("SSCARD_CREATE_KEYS", raising=False)
    monkeypatch.setenv("SSCARD_KEY_DIR", str(tmp_path))
    with pytest.raises(DomainError) as exc:
        load_key("probe")
    assert exc.value.code == "key_unavailable"
    monkeypatch.setenv("SSCARD_CREATE_KEYS", "1")
    key = load_key("probe")
    assert len(key) == 32
    assert load_key("probe") == key  # created once, then read
    assert oct((tmp_path / "probe.key").stat().st_mode & 0o777) == "0o600"
