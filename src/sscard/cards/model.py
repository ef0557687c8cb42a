"""The card's life as plain rules: states, the transition table, fees, deadlines.

Nothing here knows about databases or HTTP; services apply these rules to rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sscard.core.errors import IllegalTransition, InvalidInput, PolicyRefused
from sscard.core.policy import RegionPolicy


class CardState(StrEnum):
    ORDERED = "ordered"  # application accepted, card in production
    AT_OUTLET = "at_outlet"  # produced, waiting at the bank outlet
    WITH_UNIT = "with_unit"  # picked up by the unit administrator (A-2 step 7)
    RECEIVED = "received"  # in the holder's hands, not yet activated
    ACTIVE = "active"  # social security application activated (V-1)
    LOST_ORAL = "lost_oral"  # temporary oral loss report (L-1)
    LOST_WRITTEN = "lost_written"  # written loss report, frozen (L-2)
    LOST_AUTO = "lost_auto"  # reported lost automatically (V-5)
    REPLACED = "replaced"  # dead for good after replacement
    SUPERSEDED = "superseded"  # a newer card from another bank was activated
    DESTROYED = "destroyed"  # destroyed: unclaimed (D-2), same bank (V-3), change


TERMINAL = frozenset({CardState.REPLACED, CardState.SUPERSEDED, CardState.DESTROYED})
LOST = frozenset({CardState.LOST_ORAL, CardState.LOST_WRITTEN, CardState.LOST_AUTO})
TERMINAL_NOTES = {
    CardState.REPLACED: "A replaced card can never come back, even if found (R-3, L-3)",
    CardState.DESTROYED: "The card was destroyed",
    CardState.SUPERSEDED: "A newer card of the holder was activated",
}
# States in which the holder has the card in hand.
HELD = frozenset({CardState.RECEIVED, CardState.ACTIVE})


class Action(StrEnum):
    PRODUCE = "produce"
    PICKUP_BY_UNIT = "pickup_by_unit"
    PICKUP_BY_HOLDER = "pickup_by_holder"
    HAND_OUT = "hand_out"
    RETURN_UNDELIVERABLE = "return_undeliverable"
    ACTIVATE = "activate"
    FINANCIAL_ACTIVATE = "financial_activate"
    REPORT_LOST_ORAL = "report_lost_oral"
    REPORT_LOST_WRITTEN = "report_lost_written"
    ORAL_REPORT_LAPSE = "oral_report_lapse"
    CANCEL_LOSS_REPORT = "cancel_loss_report"
    AUTO_REPORT_LOST = "auto_report_lost"
    REPLACE = "replace"
    CHANGE = "change"
    DESTROY_UNCLAIMED = "destroy_unclaimed"
    DESTROY_OLD_SAME_BANK = "destroy_old_same_bank"
    SUPERSEDE = "supersede"


class _Restore:
    """Target of an action that returns the card to its state before the loss report."""

    def __repr__(self) -> str:
        return "RESTORE"


RESTORE = _Restore()
S = CardState

# The only moves a card can make. Anything else is refused with the allowed set.
TRANSITIONS: dict[tuple[CardState, Action], CardState | _Restore] = {
    (S.ORDERED, Action.PRODUCE): S.AT_OUTLET,
    (S.AT_OUTLET, Action.PICKUP_BY_UNIT): S.WITH_UNIT,
    (S.AT_OUTLET, Action.PICKUP_BY_HOLDER): S.RECEIVED,
    (S.AT_OUTLET, Action.DESTROY_UNCLAIMED): S.DESTROYED,
    (S.WITH_UNIT, Action.HAND_OUT): S.RECEIVED,
    (S.WITH_UNIT, Action.RETURN_UNDELIVERABLE): S.AT_OUTLET,
    (S.RECEIVED, Action.ACTIVATE): S.ACTIVE,
    (S.RECEIVED, Action.FINANCIAL_ACTIVATE): S.ACTIVE,
    (S.ACTIVE, Action.FINANCIAL_ACTIVATE): S.ACTIVE,
    (S.LOST_AUTO, Action.FINANCIAL_ACTIVATE): S.LOST_AUTO,
    (S.RECEIVED, Action.REPORT_LOST_ORAL): S.LOST_ORAL,
    (S.ACTIVE, Action.REPORT_LOST_ORAL): S.LOST_ORAL,
    (S.RECEIVED, Action.REPORT_LOST_WRITTEN): S.LOST_WRITTEN,
    (S.ACTIVE, Action.REPORT_LOST_WRITTEN): S.LOST_WRITTEN,
    (S.LOST_ORAL, Action.REPORT_LOST_WRITTEN): S.LOST_WRITTEN,
    (S.LOST_AUTO, Action.REPORT_LOST_WRITTEN): S.LOST_WRITTEN,
    (S.LOST_ORAL, Action.ORAL_REPORT_LAPSE): RESTORE,
    (S.LOST_ORAL, Action.CANCEL_LOSS_REPORT): RESTORE,
    (S.LOST_WRITTEN, Action.CANCEL_LOSS_REPORT): RESTORE,
    (S.LOST_AUTO, Action.CANCEL_LOSS_REPORT): RESTORE,
    (S.RECEIVED, Action.AUTO_REPORT_LOST): S.LOST_AUTO,
    (S.ACTIVE, Action.AUTO_REPORT_LOST): S.LOST_AUTO,
    (S.LOST_WRITTEN, Action.REPLACE): S.REPLACED,
    (S.RECEIVED, Action.CHANGE): S.DESTROYED,
    (S.ACTIVE, Action.CHANGE): S.DESTROYED,
    (S.RECEIVED, Action.DESTROY_OLD_SAME_BANK): S.DESTROYED,
    (S.ACTIVE, Action.DESTROY_OLD_SAME_BANK): S.DESTROYED,
    (S.LOST_AUTO, Action.DESTROY_OLD_SAME_BANK): S.DESTROYED,
    (S.RECEIVED, Action.SUPERSEDE): S.SUPERSEDED,
    (S.ACTIVE, Action.SUPERSEDE): S.SUPERSEDED,
    (S.LOST_AUTO, Action.SUPERSEDE): S.SUPERSEDED,
}


def allowed_actions(state: CardState) -> list[str]:
    """Actions the transition table allows from ``state``."""
    return sorted(a.value for (s, a) in TRANSITIONS if s == state)


def next_state(state: CardState, action: Action, before_loss: CardState | None) -> CardState:
    """The state after ``action``, or IllegalTransition naming what is allowed."""
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise IllegalTransition(
            "card", state.value, action.value, allowed_actions(state), TERMINAL_NOTES.get(state, "")
        )
    if isinstance(target, _Restore):
        return before_loss if before_loss in HELD else CardState.RECEIVED
    return target


LossField = str | datetime | None


@dataclass(frozen=True, slots=True)
class MoveEffect:
    """What one move does to a card: its new state and the loss fields it sets."""

    action: Action
    from_state: CardState
    to_state: CardState
    # Column name -> new value, for state_before_loss / loss_reported_at /
    # oral_loss_lapses_at; a field not named keeps its value.
    changes: tuple[tuple[str, LossField], ...] = ()


def decide_move(
    state: CardState, action: Action, before_loss: CardState | None, *, at: datetime
) -> MoveEffect:
    """The effects of ``action`` on a card in ``state`` (the transition table, L-1, L-2,
    L-3, V-5): entering a loss remembers the state to return to and when it was reported;
    a written report ends the oral report's lapse (L-2); leaving a loss clears all three."""
    target = next_state(state, action, before_loss)
    changes: dict[str, LossField] = {}
    if target in LOST and state not in LOST:
        changes = {"state_before_loss": state.value, "loss_reported_at": at}
    elif target in LOST and target is not state:
        changes = {"loss_reported_at": at, "oral_loss_lapses_at": None}
    elif state in LOST and target not in LOST:
        changes = {"state_before_loss": None, "oral_loss_lapses_at": None, "loss_reported_at": None}
    return MoveEffect(action, state, target, tuple(changes.items()))


# Why a card cannot be used for a payment or pass a card check; one table for both.
WHY_NOT_USABLE = {
    CardState.ORDERED: "the card is still in production",
    CardState.AT_OUTLET: "the card has not been picked up",
    CardState.WITH_UNIT: "the card has not been handed to its holder",
    CardState.RECEIVED: "the card is not activated yet (V-2)",
    CardState.LOST_ORAL: "the card is reported lost: the account is suspended (L-1, R-2)",
    CardState.LOST_WRITTEN: "the card is reported lost and frozen (L-2, R-2)",
    CardState.LOST_AUTO: "the card was reported lost automatically (V-5, R-2)",
    CardState.REPLACED: "the card was replaced and is dead for good (R-3)",
    CardState.SUPERSEDED: "a newer card of the holder is in use",
    CardState.DESTROYED: "the card was destroyed",
}


def why_not_usable(state: CardState, *, valid_until: date | None, today: date) -> str | None:
    """None when the card can be used here and now (active, V-2, within validity, C-2);
    otherwise the reason, for a card check and for a refused payment alike."""
    if state is not CardState.ACTIVE:
        return WHY_NOT_USABLE[state]
    if valid_until is not None and today > valid_until:
        return f"the card expired on {valid_until} (C-2): it is changed at the bank"
    return None


class CardNotUsable(PolicyRefused):
    code = "card_not_usable"


def refuse_unusable(state: CardState, *, valid_until: date | None, today: date) -> None:
    """Debits need a usable card (V-2, L-1, L-2, R-2, C-2)."""
    why = why_not_usable(state, valid_until=valid_until, today=today)
    if why is not None:
        raise CardNotUsable(f"no payment from the medical account: {why}", card_state=state.value)


def sources_of(action: Action) -> list[CardState]:
    """States from which ``action`` is allowed (for set-based sweeps)."""
    return [s for (s, a) in TRANSITIONS if a == action]


class ChangeReason(StrEnum):
    """Why a card is changed (R-4, F-2)."""

    SURFACE_DAMAGED = "surface_damaged"
    CHIP_DAMAGED = "chip_damaged"
    PHOTO_CHANGED = "photo_changed"
    PERSONAL_DATA_CHANGED = "personal_data_changed"
    QUALITY_PROBLEM = "quality_problem"
    EXPIRED = "expired"


class FeeBasis(StrEnum):
    FIRST_CARD_FREE = "first_card_free"
    REPLACEMENT = "replacement"
    CHANGE = "change"
    QUALITY_PROBLEM_FREE = "quality_problem_free"
    LOSS_REPORT = "loss_report"


@dataclass(frozen=True, slots=True)
class FeeDecision:
    amount_fen: int
    basis: FeeBasis


def replacement_fee(policy: RegionPolicy) -> FeeDecision:
    """R-1, F-1: replacement after loss costs the policy fee."""
    return FeeDecision(policy.fees.replacement_fen, FeeBasis.REPLACEMENT)


def loss_report_fee(policy: RegionPolicy) -> FeeDecision:
    """F-1: loss reports are free (policy value, 0 in both presets)."""
    return FeeDecision(policy.fees.loss_report_fen, FeeBasis.LOSS_REPORT)


def first_card_fee(policy: RegionPolicy) -> FeeDecision:
    return FeeDecision(policy.fees.first_card_fen, FeeBasis.FIRST_CARD_FREE)


def change_fee(
    policy: RegionPolicy, reason: ChangeReason, *, valid_until: date | None, today: date
) -> FeeDecision:
    """F-1, F-2: a quality problem within validity is free; damage, expiry and changes cost."""
    if reason is ChangeReason.QUALITY_PROBLEM:
        if valid_until is not None and today > valid_until:
            raise InvalidInput(
                f"the card expired on {valid_until}: an expired card is changed for reason "
                "'expired' (with fee), not as a quality problem",
                field="reason",
            )
        if policy.fees.quality_problem_free:
            return FeeDecision(0, FeeBasis.QUALITY_PROBLEM_FREE)
    return FeeDecision(policy.fees.change_fen, FeeBasis.CHANGE)


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months, clamped to the month's last day."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for d in (31, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=min(day.day, d))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def valid_until(produced_on: date, policy: RegionPolicy) -> date:
    """C-2: the card is valid for ten years (policy) from production."""
    return add_months(produced_on, 12 * policy.deadlines.card_validity_years) - timedelta(days=1)


def oral_loss_lapses_at(reported_at: datetime, policy: RegionPolicy) -> datetime:
    """L-1: an oral report lapses after 5 natural days unless a written one follows."""
    return reported_at + timedelta(days=policy.deadlines.oral_loss_natural_days)


def serial_ok(value: str, field: str) -> str:
    """A card number or chip serial: 6-32 letters or digits, upper case."""
    value = (value or "").strip().upper()
    if not value.isascii() or not value.isalnum() or not 6 <= len(value) <= 32:
        raise InvalidInput(f"{field} must be 6-32 letters or digits", field=field)
    return value
