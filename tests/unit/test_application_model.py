"""Application rules: bank choice and forcing (B-1..B-3), form numbers (A-4), moves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscard.applications.model import (
    APPLICATION_MOVES,
    ApplicationState,
    application_move,
    choose_bank,
    forced_bank,
    form_number,
    form_number_valid,
)
from sscard.core.errors import IllegalTransition, PolicyRefused
from sscard.core.policy import RegionPolicy, UnitKind, load_policy
from sscard.register.model import MedicalScheme

DONGGUAN_BANKS = ("DGB", "CGB", "BOC", "CCB", "ICBC", "ABC")
ACTIONS = ("correct", "return", "cancel", "accept", "reject", "reopen")


@pytest.fixture(scope="module")
def dongguan() -> RegionPolicy:
    return load_policy("dongguan")


@pytest.fixture(scope="module")
def henan() -> RegionPolicy:
    return load_policy("henan")


def refused_choice(
    policy: RegionPolicy,
    chosen: str,
    *,
    unit_kind: UnitKind | None = None,
    scheme: MedicalScheme | None = None,
) -> PolicyRefused:
    with pytest.raises(PolicyRefused) as info:
        choose_bank(policy, chosen, unit_kind=unit_kind, scheme=scheme)
    return info.value


# --- B-1: only the region's issuing banks --------------------------------------


def test_b_1_refuses_a_bank_that_does_not_issue_in_the_region(dongguan: RegionPolicy) -> None:
    error = refused_choice(dongguan, "ZYB", unit_kind=UnitKind.ORDINARY)
    assert error.field == "bank_code"
    assert error.code == "refused_by_policy"
    assert "'ZYB' is not an issuing bank of Dongguan" in error.detail
    for code in DONGGUAN_BANKS:
        assert code in error.detail
    assert "forced_bank" not in error.extra


def test_b_1_unknown_bank_refused_even_where_a_bank_is_forced(dongguan: RegionPolicy) -> None:
    error = refused_choice(dongguan, "XYZ", unit_kind=UnitKind.COMPREHENSIVE_MEDICAL)
    assert "not an issuing bank" in error.detail


def test_b_1_henan_refuses_a_dongguan_only_bank(henan: RegionPolicy) -> None:
    error = refused_choice(henan, "DGB", scheme=MedicalScheme.EMPLOYEE)
    assert "'DGB' is not an issuing bank of Henan" in error.detail


# --- B-2: forcing for unit kinds ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "forced"),
    [(UnitKind.COMPREHENSIVE_MEDICAL, "CGB"), (UnitKind.VILLAGE_COMMUNITY, "DGB")],
)
def test_b_2_dongguan_forced_unit_kinds_must_choose_their_bank(
    dongguan: RegionPolicy, kind: UnitKind, forced: str
) -> None:
    assert choose_bank(dongguan, forced, unit_kind=kind, scheme=None) == forced
    for other in DONGGUAN_BANKS:
        if other == forced:
            continue
        error = refused_choice(dongguan, other, unit_kind=kind)
        assert error.extra["forced_bank"] == forced
        assert error.field == "bank_code"
        assert f"choose '{forced}', not '{other}'" in error.detail
        assert f"units of kind '{kind}'" in error.detail


def test_b_2_comprehensive_medical_unit_refused_icbc(dongguan: RegionPolicy) -> None:
    error = refused_choice(dongguan, "ICBC", unit_kind=UnitKind.COMPREHENSIVE_MEDICAL)
    assert error.extra["forced_bank"] == "CGB"


def test_b_2_village_unit_forcing_wins_over_the_medical_scheme(dongguan: RegionPolicy) -> None:
    assert (
        forced_bank(
            dongguan, unit_kind=UnitKind.VILLAGE_COMMUNITY, scheme=MedicalScheme.COMPREHENSIVE
        )
        == "DGB"
    )
    error = refused_choice(
        dongguan, "CGB", unit_kind=UnitKind.VILLAGE_COMMUNITY, scheme=MedicalScheme.COMPREHENSIVE
    )
    assert error.extra["forced_bank"] == "DGB"


@pytest.mark.parametrize("bank", DONGGUAN_BANKS)
def test_b_2_ordinary_unit_chooses_freely(dongguan: RegionPolicy, bank: str) -> None:
    assert choose_bank(dongguan, bank, unit_kind=UnitKind.ORDINARY, scheme=None) == bank
    assert forced_bank(dongguan, unit_kind=UnitKind.ORDINARY, scheme=None) is None


@pytest.mark.parametrize("kind", list(UnitKind))
def test_b_2_henan_forces_no_bank_for_any_unit_kind(henan: RegionPolicy, kind: UnitKind) -> None:
    assert forced_bank(henan, unit_kind=kind, scheme=MedicalScheme.COMPREHENSIVE) is None
    for bank in henan.banks:
        assert choose_bank(henan, bank.code, unit_kind=kind, scheme=None) == bank.code


# --- B-3: flexible employees ----------------------------------------------------


def test_b_3_flexible_employee_in_comprehensive_scheme_must_choose_cgb(
    dongguan: RegionPolicy,
) -> None:
    assert choose_bank(dongguan, "CGB", unit_kind=None, scheme=MedicalScheme.COMPREHENSIVE) == "CGB"
    error = refused_choice(dongguan, "BOC", scheme=MedicalScheme.COMPREHENSIVE)
    assert error.extra["forced_bank"] == "CGB"
    assert "persons in comprehensive basic medical insurance" in error.detail


@pytest.mark.parametrize("bank", DONGGUAN_BANKS)
def test_b_3_flexible_employee_in_employee_scheme_chooses_freely(
    dongguan: RegionPolicy, bank: str
) -> None:
    assert choose_bank(dongguan, bank, unit_kind=None, scheme=MedicalScheme.EMPLOYEE) == bank


def test_b_3_flexible_employee_without_scheme_chooses_freely(dongguan: RegionPolicy) -> None:
    assert forced_bank(dongguan, unit_kind=None, scheme=None) is None
    assert choose_bank(dongguan, "ABC", unit_kind=None, scheme=None) == "ABC"


def test_b_3_henan_comprehensive_scheme_chooses_freely(henan: RegionPolicy) -> None:
    assert choose_bank(henan, "ZYB", unit_kind=None, scheme=MedicalScheme.COMPREHENSIVE) == "ZYB"


# --- form numbers -----------------------------------------------------------


def test_a_4_form_number_layout() -> None:
    number = form_number("441900", 2026, 12345)
    assert number.startswith("SB44190026")
    assert number[10:20] == "0000012345"
    assert len(number) == 22
    # ISO 7064 mod 97-10: the whole numeric part is 1 modulo 97.
    assert int(number[2:]) % 97 == 1


def test_a_4_generated_form_numbers_are_valid_and_unique() -> None:
    numbers = [
        form_number(region, year, seq)
        for region in ("441900", "410000")
        for year in (2026, 2027)
        for seq in range(1, 501)
    ]
    assert len(set(numbers)) == len(numbers)
    assert all(form_number_valid(n) for n in numbers)


@given(
    st.sampled_from(["441900", "410000", "110101"]),
    st.integers(min_value=2000, max_value=2099),
    st.integers(min_value=0, max_value=9_999_999_999),
)
def test_a_4_any_generated_form_number_is_valid(region: str, year: int, seq: int) -> None:
    assert form_number_valid(form_number(region, year, seq))


@given(
    st.integers(min_value=0, max_value=9_999_999_999),
    st.integers(min_value=2, max_value=21),
    st.integers(min_value=1, max_value=9),
)
def test_a_4_any_single_digit_change_is_rejected(seq: int, position: int, delta: int) -> None:
    number = form_number("441900", 2026, seq)
    digit = str((int(number[position]) + delta) % 10)
    changed = number[:position] + digit + number[position + 1 :]
    assert changed != number
    assert not form_number_valid(changed)


@given(st.integers(min_value=0, max_value=9_999_999_999), st.integers(min_value=2, max_value=20))
def test_a_4_swapping_two_neighbouring_digits_is_rejected(seq: int, position: int) -> None:
    number = form_number("441900", 2026, seq)
    a, b = number[position], number[position + 1]
    if a == b:
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    assert not form_number_valid(swapped)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "SB",
        "XX44190026000001234528",
        "sb44190026000001234528",
        "SB4419002600000123452",
        "SB441900260000012345280",
        "SB44190026000001234A28",
    ],
)
def test_a_4_malformed_form_numbers_are_rejected(raw: str) -> None:
    assert form_number("441900", 2026, 12345) == "SB44190026000001234528"
    assert not form_number_valid(raw)


def test_a_4_form_number_with_non_ascii_digit_is_rejected() -> None:
    """A fullwidth digit is not a form number any generator printed."""
    number = form_number("441900", 2026, 12345)
    fullwidth = number[:5] + chr(ord(number[5]) + 0xFEE0) + number[6:]
    assert fullwidth != number
    assert not form_number_valid(fullwidth)


# --- application moves ------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        (ApplicationState.ISSUED, "correct", ApplicationState.ISSUED),
        (ApplicationState.ISSUED, "return", ApplicationState.RETURNED),
        (ApplicationState.ISSUED, "cancel", ApplicationState.CANCELLED),
        (ApplicationState.RETURNED, "accept", ApplicationState.ACCEPTED),
        (ApplicationState.RETURNED, "reject", ApplicationState.REJECTED),
    ],
)
def test_a_2_legal_application_moves(
    state: ApplicationState, action: str, expected: ApplicationState
) -> None:
    assert application_move(state, action) is expected


def test_a_2_every_other_application_move_is_refused() -> None:
    refusals = 0
    for state in ApplicationState:
        allowed = sorted(a for (s, a) in APPLICATION_MOVES if s == state)
        for action in ACTIONS:
            if (state, action) in APPLICATION_MOVES:
                continue
            with pytest.raises(IllegalTransition) as info:
                application_move(state, action)
            assert info.value.extra["current_state"] == state.value
            assert info.value.extra["allowed"] == allowed
            assert f"application is '{state.value}'" in info.value.detail
            assert f"'{action}' is not possible" in info.value.detail
            refusals += 1
    assert refusals == len(ApplicationState) * len(ACTIONS) - len(APPLICATION_MOVES)


@pytest.mark.parametrize(
    "state",
    [ApplicationState.ACCEPTED, ApplicationState.REJECTED, ApplicationState.CANCELLED],
)
def test_a_2_closed_applications_allow_nothing(state: ApplicationState) -> None:
    with pytest.raises(IllegalTransition) as info:
        application_move(state, "correct")
    assert info.value.extra["allowed"] == []
    assert "allowed next steps: none" in info.value.detail


def test_a_2_returned_form_can_no_longer_be_corrected() -> None:
    with pytest.raises(IllegalTransition) as info:
        application_move(ApplicationState.RETURNED, "correct")
    assert info.value.extra["allowed"] == ["accept", "reject"]
