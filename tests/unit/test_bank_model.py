"""The financial account's pure rules: transitions, what card moves mean, password entries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sscard.bank.model import (
    ENDED,
    HELD,
    PRODUCE,
    REPORTED_LOST,
    TRANSITIONS,
    AccountAction,
    AccountState,
    account_action_for,
    applies,
    decide_account_move,
    next_state,
)
from sscard.cards.model import HELD as HELD_BY_HOLDER
from sscard.cards.model import LOST, TERMINAL, Action, CardState
from sscard.core.errors import IllegalTransition

A = AccountState


def test_c_1_activation_only_from_issued() -> None:
    assert next_state(A.ISSUED, AccountAction.ACTIVATE) is A.ACTIVE
    for state in (A.ACTIVE, A.FROZEN, A.CLOSED):
        with pytest.raises(IllegalTransition) as refused:
            next_state(state, AccountAction.ACTIVATE)
        assert refused.value.extra["current_state"] == state.value
        assert f"'{state.value}'" in refused.value.detail


def test_r_2_freeze_remembers_and_unfreeze_restores() -> None:
    assert next_state(A.ISSUED, AccountAction.FREEZE) is A.FROZEN
    assert next_state(A.ACTIVE, AccountAction.FREEZE) is A.FROZEN
    assert next_state(A.FROZEN, AccountAction.UNFREEZE, A.ACTIVE) is A.ACTIVE
    assert next_state(A.FROZEN, AccountAction.UNFREEZE, A.ISSUED) is A.ISSUED
    assert next_state(A.FROZEN, AccountAction.UNFREEZE, None) is A.ISSUED


def test_r_3_a_closed_account_never_moves_again() -> None:
    for state in (A.ISSUED, A.ACTIVE, A.FROZEN):
        assert next_state(state, AccountAction.CLOSE) is A.CLOSED
    for action in AccountAction:
        with pytest.raises(IllegalTransition) as refused:
            next_state(A.CLOSED, action)
        assert refused.value.extra["allowed"] == []
        assert "R-3" in refused.value.detail


def test_l_2_a_frozen_account_names_the_way_out() -> None:
    with pytest.raises(IllegalTransition) as refused:
        next_state(A.FROZEN, AccountAction.ACTIVATE)
    assert refused.value.extra["allowed"] == ["close", "unfreeze"]


@pytest.mark.parametrize(
    ("card_action", "before", "after", "expected"),
    [
        ("produce", "ordered", "at_outlet", AccountAction.OPEN),
        ("report_lost_oral", "active", "lost_oral", AccountAction.FREEZE),  # L-1
        ("report_lost_written", "received", "lost_written", AccountAction.FREEZE),  # L-2
        ("report_lost_written", "lost_oral", "lost_written", None),  # frozen already
        ("report_lost_written", "lost_auto", "lost_written", AccountAction.FREEZE),
        ("auto_report_lost", "received", "lost_auto", None),  # V-5: nothing to freeze
        ("oral_report_lapse", "lost_oral", "active", AccountAction.UNFREEZE),  # L-1
        ("cancel_loss_report", "lost_written", "received", AccountAction.UNFREEZE),  # L-3
        ("cancel_loss_report", "lost_auto", "received", None),
        ("replace", "lost_written", "replaced", AccountAction.CLOSE),
        ("change", "active", "destroyed", AccountAction.CLOSE),
        ("destroy_unclaimed", "at_outlet", "destroyed", AccountAction.CLOSE),  # D-2
        ("supersede", "active", "superseded", AccountAction.CLOSE),  # V-3
        ("financial_activate", "received", "active", None),
        ("activate", "received", "active", None),
        ("pickup_by_holder", "at_outlet", "received", None),
    ],
)
def test_c_1_card_moves_map_to_account_actions(
    card_action: str, before: str, after: str, expected: AccountAction | None
) -> None:
    assert account_action_for(card_action, before, after) is expected


def test_c_1_the_bank_speaks_the_center_s_card_vocabulary() -> None:
    """The bank names card states and actions as strings; they must be the center's."""
    assert {*REPORTED_LOST, *HELD, *ENDED} <= {s.value for s in CardState}
    assert Action.PRODUCE.value == PRODUCE
    assert {s.value for s in LOST} - REPORTED_LOST == {CardState.LOST_AUTO.value}
    assert {s.value for s in TERMINAL} == ENDED
    assert {s.value for s in HELD_BY_HOLDER} == HELD


AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_l_1_freeze_remembers_the_state_and_when() -> None:
    effect = decide_account_move(A.ACTIVE, AccountAction.FREEZE, None, at=AT)
    assert effect.to_state is A.FROZEN
    assert dict(effect.changes) == {"state_before_freeze": "active", "frozen_at": AT}


def test_l_1_lapse_thaws_back_to_the_state_before_and_forgets_the_freeze() -> None:
    for before in (A.ACTIVE, A.ISSUED):
        effect = decide_account_move(A.FROZEN, AccountAction.UNFREEZE, before, at=AT)
        assert effect.to_state is before
        assert dict(effect.changes) == {"state_before_freeze": None, "frozen_at": None}


def test_r_3_closing_notes_when_and_forgets_the_state_before_a_freeze() -> None:
    effect = decide_account_move(A.FROZEN, AccountAction.CLOSE, A.ACTIVE, at=AT)
    assert effect.to_state is A.CLOSED
    assert dict(effect.changes) == {"state_before_freeze": None, "closed_at": AT}


def test_v_1_activation_notes_when() -> None:
    effect = decide_account_move(A.ISSUED, AccountAction.ACTIVATE, None, at=AT)
    assert (effect.to_state, dict(effect.changes)) == (A.ACTIVE, {"activated_at": AT})


@pytest.mark.parametrize("state", list(AccountState))
@pytest.mark.parametrize("action", [a for a in AccountAction if a is not AccountAction.OPEN])
def test_r_2_an_account_move_s_effect_follows_the_transition_table(
    state: AccountState, action: AccountAction
) -> None:
    assert applies(state, action) == ((state, action) in TRANSITIONS)
    if not applies(state, action):
        with pytest.raises(IllegalTransition):
            decide_account_move(state, action, None, at=AT)
        return
    effect = decide_account_move(state, action, A.ACTIVE, at=AT)
    assert effect.to_state is next_state(state, action, A.ACTIVE)
