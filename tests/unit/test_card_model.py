"""The card's transition table, fees and deadlines (C-2, L-1..L-3, R-1..R-4, F-1, F-2)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscard.cards.model import (
    HELD,
    LOST,
    TERMINAL,
    TRANSITIONS,
    Action,
    CardState,
    ChangeReason,
    FeeBasis,
    FeeDecision,
    add_months,
    allowed_actions,
    change_fee,
    decide_move,
    first_card_fee,
    loss_report_fee,
    next_state,
    oral_loss_lapses_at,
    replacement_fee,
    sources_of,
    valid_until,
)
from sscard.core.errors import IllegalTransition, InvalidInput
from sscard.core.policy import PRESETS_DIR, RegionPolicy, load_policy, parse_policy

SHANGHAI = ZoneInfo("Asia/Shanghai")
S = CardState
A = Action
DONGGUAN_TEXT = (PRESETS_DIR / "dongguan.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def policy() -> RegionPolicy:
    return load_policy("dongguan")


def edited_policy(old: str, new: str) -> RegionPolicy:
    assert DONGGUAN_TEXT.count(old) == 1
    return parse_policy(DONGGUAN_TEXT.replace(old, new))


def refused(state: CardState, action: Action) -> IllegalTransition:
    with pytest.raises(IllegalTransition) as info:
        next_state(state, action, None)
    return info.value


# --- the transition table ---------------------------------------------------------


def test_every_move_not_in_the_table_is_refused_naming_state_and_allowed() -> None:
    refusals = 0
    for state in CardState:
        for action in Action:
            if (state, action) in TRANSITIONS:
                continue
            error = refused(state, action)
            allowed = sorted(a.value for a in Action if (state, a) in TRANSITIONS)
            assert error.extra["allowed"] == allowed_actions(state) == allowed
            assert error.extra["current_state"] == state.value
            assert f"card is '{state.value}'" in error.detail
            assert f"'{action.value}' is not possible" in error.detail
            assert error.code == "illegal_transition"
            assert error.status == 409
            refusals += 1
    assert refusals == len(CardState) * len(Action) - len(TRANSITIONS)


def test_every_move_in_the_table_gives_its_target() -> None:
    for (state, action), target in TRANSITIONS.items():
        result = next_state(state, action, CardState.ACTIVE)
        if isinstance(target, CardState):
            assert result is target
        else:
            assert state in LOST
            assert result is CardState.ACTIVE


def test_refusal_lists_the_allowed_next_steps() -> None:
    error = refused(S.RECEIVED, A.REPLACE)
    for action in allowed_actions(S.RECEIVED):
        assert action in error.detail
    assert "activate" in error.extra["allowed"]


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_allow_nothing(state: CardState) -> None:
    assert allowed_actions(state) == []
    for action in Action:
        error = refused(state, action)
        assert error.extra["allowed"] == []
        assert "allowed next steps: none" in error.detail


@pytest.mark.parametrize("state", sorted(set(CardState) - TERMINAL))
def test_non_terminal_states_have_a_way_forward(state: CardState) -> None:
    assert allowed_actions(state)


def test_r_3_replaced_card_refusal_mentions_r_3() -> None:
    error = refused(S.REPLACED, A.ACTIVATE)
    assert "R-3" in error.detail
    assert "never come back" in error.detail


def test_l_3_no_cancelling_the_loss_report_after_replacement() -> None:
    error = refused(S.REPLACED, A.CANCEL_LOSS_REPORT)
    assert "R-3" in error.detail
    assert error.extra["current_state"] == "replaced"


def test_a_2_unit_flow_produce_pickup_hand_out_activate() -> None:
    state = S.ORDERED
    for action, expected in [
        (A.PRODUCE, S.AT_OUTLET),
        (A.PICKUP_BY_UNIT, S.WITH_UNIT),
        (A.HAND_OUT, S.RECEIVED),
        (A.ACTIVATE, S.ACTIVE),
    ]:
        state = next_state(state, action, None)
        assert state is expected


def test_a_3_holder_picks_up_at_the_outlet() -> None:
    assert next_state(S.AT_OUTLET, A.PICKUP_BY_HOLDER, None) is S.RECEIVED


@pytest.mark.parametrize("state", [S.ORDERED, S.AT_OUTLET, S.WITH_UNIT])
def test_v_2_card_not_in_the_holders_hands_cannot_be_activated(state: CardState) -> None:
    refused(state, A.ACTIVATE)


def test_d_1_unit_returns_undeliverable_card_to_the_outlet() -> None:
    assert next_state(S.WITH_UNIT, A.RETURN_UNDELIVERABLE, None) is S.AT_OUTLET


def test_d_2_only_a_card_waiting_at_the_outlet_is_destroyed_as_unclaimed() -> None:
    assert next_state(S.AT_OUTLET, A.DESTROY_UNCLAIMED, None) is S.DESTROYED
    assert sources_of(A.DESTROY_UNCLAIMED) == [S.AT_OUTLET]


def test_l_1_oral_report_from_a_held_card() -> None:
    assert next_state(S.ACTIVE, A.REPORT_LOST_ORAL, None) is S.LOST_ORAL
    assert next_state(S.RECEIVED, A.REPORT_LOST_ORAL, None) is S.LOST_ORAL


@pytest.mark.parametrize("before", [S.ACTIVE, S.RECEIVED])
def test_l_1_lapsed_oral_report_restores_state_before_loss(before: CardState) -> None:
    assert next_state(S.LOST_ORAL, A.ORAL_REPORT_LAPSE, before) is before


def test_l_2_written_report_follows_an_oral_one() -> None:
    assert next_state(S.LOST_ORAL, A.REPORT_LOST_WRITTEN, S.ACTIVE) is S.LOST_WRITTEN


def test_l_2_written_report_cannot_lapse() -> None:
    refused(S.LOST_WRITTEN, A.ORAL_REPORT_LAPSE)


@pytest.mark.parametrize("lost", sorted(LOST))
@pytest.mark.parametrize("before", [S.ACTIVE, S.RECEIVED])
def test_l_3_cancel_loss_report_restores_state_before_loss(
    lost: CardState, before: CardState
) -> None:
    assert next_state(lost, A.CANCEL_LOSS_REPORT, before) is before


@pytest.mark.parametrize("before", [None, *CardState])
def test_l_3_restore_always_lands_on_a_held_card(before: CardState | None) -> None:
    assert next_state(S.LOST_WRITTEN, A.CANCEL_LOSS_REPORT, before) in HELD


def test_l_3_cancel_is_possible_from_every_lost_state_only() -> None:
    assert set(sources_of(A.CANCEL_LOSS_REPORT)) == LOST


def test_r_1_replacement_only_after_a_written_report() -> None:
    assert next_state(S.LOST_WRITTEN, A.REPLACE, S.ACTIVE) is S.REPLACED
    assert sources_of(A.REPLACE) == [S.LOST_WRITTEN]
    error = refused(S.LOST_ORAL, A.REPLACE)
    assert "report_lost_written" in error.extra["allowed"]


@pytest.mark.parametrize("lost", sorted(LOST))
def test_r_2_no_change_while_reported_lost(lost: CardState) -> None:
    refused(lost, A.CHANGE)


@pytest.mark.parametrize("held", sorted(HELD))
def test_r_4_change_destroys_the_old_card(held: CardState) -> None:
    assert next_state(held, A.CHANGE, None) is S.DESTROYED


def test_v_3_old_card_of_the_same_bank_destroyed_at_activation() -> None:
    assert next_state(S.ACTIVE, A.DESTROY_OLD_SAME_BANK, None) is S.DESTROYED


def test_v_5_auto_loss_report_and_later_financial_activation() -> None:
    assert next_state(S.RECEIVED, A.AUTO_REPORT_LOST, None) is S.LOST_AUTO
    # Financial activation later does not lift the report by itself: the holder cancels.
    assert next_state(S.LOST_AUTO, A.FINANCIAL_ACTIVATE, S.RECEIVED) is S.LOST_AUTO
    assert next_state(S.LOST_AUTO, A.CANCEL_LOSS_REPORT, S.RECEIVED) is S.RECEIVED


def test_v_1_financial_activation_activates_a_received_card() -> None:
    assert next_state(S.RECEIVED, A.FINANCIAL_ACTIVATE, None) is S.ACTIVE


# --- fees -----------------------------------------------------------------------


def test_f_1_replacement_fee_is_20_yuan(policy: RegionPolicy) -> None:
    assert replacement_fee(policy) == FeeDecision(2000, FeeBasis.REPLACEMENT)


def test_f_1_replacement_fee_follows_the_policy() -> None:
    dearer = edited_policy("replacement_fen = 2000", "replacement_fen = 3000")
    assert replacement_fee(dearer) == FeeDecision(3000, FeeBasis.REPLACEMENT)


def test_f_1_first_card_free(policy: RegionPolicy) -> None:
    assert first_card_fee(policy) == FeeDecision(0, FeeBasis.FIRST_CARD_FREE)


def test_f_1_loss_report_free(policy: RegionPolicy) -> None:
    assert loss_report_fee(policy) == FeeDecision(0, FeeBasis.LOSS_REPORT)


def test_f_2_quality_problem_free_within_validity(policy: RegionPolicy) -> None:
    decision = change_fee(
        policy,
        ChangeReason.QUALITY_PROBLEM,
        valid_until=date(2036, 3, 1),
        today=date(2030, 5, 1),
    )
    assert decision == FeeDecision(0, FeeBasis.QUALITY_PROBLEM_FREE)


def test_f_2_quality_problem_free_on_the_last_day_of_validity(policy: RegionPolicy) -> None:
    end = date(2036, 3, 1)
    decision = change_fee(policy, ChangeReason.QUALITY_PROBLEM, valid_until=end, today=end)
    assert decision.amount_fen == 0


def test_f_2_quality_problem_free_when_validity_unknown(policy: RegionPolicy) -> None:
    decision = change_fee(
        policy, ChangeReason.QUALITY_PROBLEM, valid_until=None, today=date(2030, 5, 1)
    )
    assert decision == FeeDecision(0, FeeBasis.QUALITY_PROBLEM_FREE)


def test_f_2_expired_card_is_refused_as_a_quality_problem(policy: RegionPolicy) -> None:
    end = date(2036, 3, 1)
    with pytest.raises(InvalidInput) as info:
        change_fee(
            policy, ChangeReason.QUALITY_PROBLEM, valid_until=end, today=end + timedelta(days=1)
        )
    assert info.value.field == "reason"
    assert "expired on 2036-03-01" in info.value.detail
    assert "'expired'" in info.value.detail


def test_f_2_expired_card_change_costs_the_fee(policy: RegionPolicy) -> None:
    end = date(2036, 3, 1)
    decision = change_fee(
        policy, ChangeReason.EXPIRED, valid_until=end, today=end + timedelta(days=1)
    )
    assert decision == FeeDecision(2000, FeeBasis.CHANGE)


@pytest.mark.parametrize(
    "reason",
    [
        ChangeReason.SURFACE_DAMAGED,
        ChangeReason.CHIP_DAMAGED,
        ChangeReason.PHOTO_CHANGED,
        ChangeReason.PERSONAL_DATA_CHANGED,
    ],
)
def test_f_2_damage_and_data_changes_cost_2000_fen(
    policy: RegionPolicy, reason: ChangeReason
) -> None:
    decision = change_fee(policy, reason, valid_until=date(2036, 3, 1), today=date(2030, 5, 1))
    assert decision == FeeDecision(2000, FeeBasis.CHANGE)


def test_f_2_quality_problem_costs_the_fee_where_policy_says_so() -> None:
    strict = edited_policy("quality_problem_free = true", "quality_problem_free = false")
    decision = change_fee(
        strict, ChangeReason.QUALITY_PROBLEM, valid_until=date(2036, 3, 1), today=date(2030, 1, 1)
    )
    assert decision == FeeDecision(2000, FeeBasis.CHANGE)


def test_f_1_change_fee_follows_the_policy() -> None:
    cheaper = edited_policy("change_fen = 2000", "change_fen = 1000")
    decision = change_fee(
        cheaper, ChangeReason.CHIP_DAMAGED, valid_until=None, today=date(2030, 1, 1)
    )
    assert decision.amount_fen == 1000


# --- deadlines --------------------------------------------------------------------


def test_c_2_card_valid_for_ten_years(policy: RegionPolicy) -> None:
    assert valid_until(date(2026, 3, 2), policy) == date(2036, 3, 1)


def test_c_2_card_produced_on_new_years_day(policy: RegionPolicy) -> None:
    assert valid_until(date(2026, 1, 1), policy) == date(2035, 12, 31)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2080, 12, 31)))
def test_c_2_valid_until_the_day_before_the_tenth_anniversary(produced: date) -> None:
    if (produced.month, produced.day) == (2, 29):
        return
    policy = load_policy("dongguan")
    assert valid_until(produced, policy) == produced.replace(year=produced.year + 10) - timedelta(
        days=1
    )


def test_c_2_validity_follows_the_policy() -> None:
    five = edited_policy("card_validity_years = 10", "card_validity_years = 5")
    assert valid_until(date(2026, 3, 2), five) == date(2031, 3, 1)


def test_l_1_oral_report_lapses_after_five_natural_days(policy: RegionPolicy) -> None:
    reported = datetime(2026, 9, 30, 14, 30, tzinfo=SHANGHAI)
    lapses = oral_loss_lapses_at(reported, policy)
    # Natural days: the National Day holidays count like any other day.
    assert lapses == datetime(2026, 10, 5, 14, 30, tzinfo=SHANGHAI)
    assert lapses.tzinfo is SHANGHAI


def test_l_1_oral_report_lapse_follows_the_policy() -> None:
    seven = edited_policy("oral_loss_natural_days = 5", "oral_loss_natural_days = 7")
    reported = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
    assert oral_loss_lapses_at(reported, seven) == reported + timedelta(days=7)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2027, 8, 31), 6, date(2028, 2, 29)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 1, 15), -1, date(2025, 12, 15)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2026, 5, 17), 0, date(2026, 5, 17)),
    ],
)
def test_add_months_clamps_to_month_end(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


@given(
    st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31)),
    st.integers(min_value=-600, max_value=600),
)
def test_add_months_moves_whole_months_and_clamps(day: date, months: int) -> None:
    result = add_months(day, months)
    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    last = calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(day.day, last)


AT = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_l_1_oral_report_lapse_returns_to_the_state_before_and_clears_the_loss_fields() -> None:
    effect = decide_move(CardState.LOST_ORAL, Action.ORAL_REPORT_LAPSE, CardState.ACTIVE, at=AT)
    assert (effect.from_state, effect.to_state) == (CardState.LOST_ORAL, CardState.ACTIVE)
    assert dict(effect.changes) == {
        "state_before_loss": None,
        "oral_loss_lapses_at": None,
        "loss_reported_at": None,
    }
    lapsed = decide_move(CardState.LOST_ORAL, Action.ORAL_REPORT_LAPSE, None, at=AT)
    assert lapsed.to_state is CardState.RECEIVED


def test_l_1_oral_report_remembers_the_state_and_time_it_was_reported() -> None:
    effect = decide_move(CardState.ACTIVE, Action.REPORT_LOST_ORAL, None, at=AT)
    assert effect.to_state is CardState.LOST_ORAL
    assert dict(effect.changes) == {"state_before_loss": "active", "loss_reported_at": AT}


def test_l_2_written_report_after_an_oral_one_ends_the_lapse_and_keeps_the_state_before() -> None:
    effect = decide_move(CardState.LOST_ORAL, Action.REPORT_LOST_WRITTEN, CardState.RECEIVED, at=AT)
    assert effect.to_state is CardState.LOST_WRITTEN
    assert dict(effect.changes) == {"loss_reported_at": AT, "oral_loss_lapses_at": None}


def test_v_5_automatic_loss_report_remembers_the_state_before() -> None:
    effect = decide_move(CardState.RECEIVED, Action.AUTO_REPORT_LOST, None, at=AT)
    assert effect.to_state is CardState.LOST_AUTO
    assert dict(effect.changes) == {"state_before_loss": "received", "loss_reported_at": AT}


@given(st.sampled_from(sorted(TRANSITIONS, key=str)), st.sampled_from([None, *CardState]))
def test_every_move_s_effect_follows_the_transition_table(
    move: tuple[CardState, Action], before: CardState | None
) -> None:
    state, action = move
    effect = decide_move(state, action, before, at=AT)
    assert effect.to_state is next_state(state, action, before)
    fields = dict(effect.changes)
    assert set(fields) <= {"state_before_loss", "loss_reported_at", "oral_loss_lapses_at"}
    if effect.to_state not in LOST:  # L-3: out of a loss, nothing of it stays
        assert all(fields.get(k, "kept") in (None, "kept") for k in fields)


def test_d_2_moves_without_a_loss_change_no_loss_field() -> None:
    effect = decide_move(CardState.AT_OUTLET, Action.DESTROY_UNCLAIMED, None, at=AT)
    assert (effect.to_state, effect.changes) == (CardState.DESTROYED, ())
