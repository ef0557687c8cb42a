"""The medical personal account (C-4) as double-entry bookkeeping, in plain rules.

A transaction moves money between ledger accounts; its entries sum to zero. The
personal account's balance is the sum of its entries and never goes below zero;
the counterparties (the region's fund pool, each institution's settlement account,
the old medical insurance card being retired) may.
"""

from __future__ import annotations

from enum import StrEnum

from sscard.cards.model import CardState
from sscard.core.errors import DomainError, InvalidInput, PolicyRefused


class AccountKind(StrEnum):
    PERSONAL = "personal"  # 医保个人账户, one per person, whatever card they hold
    OLD_CARD = "old_card"  # the old medical insurance card's balance, until moved (V-1)
    FUND_POOL = "fund_pool"  # where a unit's contributions come from (one per unit)
    INSTITUTION = "institution"  # what a hospital or pharmacy is owed by settlements
    LEGACY = "legacy"  # region-wide: old medical cards' balances taken over from the old system


class TxnKind(StrEnum):
    CONTRIBUTION = "contribution"
    SETTLEMENT = "settlement"
    REFUND = "refund"
    OLD_CARD_TRANSFER = "old_card_transfer"
    OLD_CARD_OPENING = "old_card_opening"


class SettlementKind(StrEnum):
    """What the holder does at the institution; registration activates on first use."""

    OUTPATIENT = "outpatient"
    INPATIENT = "inpatient"
    PHARMACY = "pharmacy"


class InsufficientBalance(DomainError):
    code = "insufficient_balance"
    status = 409
    title = "Insufficient balance"


class CardNotUsable(PolicyRefused):
    code = "card_not_usable"


MAX_AMOUNT_FEN = 10_000_000  # 100 000 yuan: above this a line is surely a typo

WHY_NOT_USABLE = {
    CardState.ORDERED: "the card is still in production",
    CardState.AT_OUTLET: "the card has not been picked up",
    CardState.WITH_UNIT: "the card has not been handed to its holder",
    CardState.RECEIVED: "the card is not activated (V-2)",
    CardState.LOST_ORAL: "the card is reported lost: the account is suspended (L-1, R-2)",
    CardState.LOST_WRITTEN: "the card is reported lost and frozen (L-2, R-2)",
    CardState.LOST_AUTO: "the card was reported lost automatically (V-5, R-2)",
    CardState.REPLACED: "the card was replaced and is dead for good (R-3)",
    CardState.SUPERSEDED: "a newer card of the holder is in use",
    CardState.DESTROYED: "the card was destroyed",
}


def refuse_unusable(state: CardState) -> None:
    """Debits need an active card (V-2, L-1, L-2, R-2)."""
    if state is not CardState.ACTIVE:
        raise CardNotUsable(
            f"no payment from the medical account: {WHY_NOT_USABLE[state]}",
            card_state=state.value,
        )


def check_amount(amount_fen: int, field: str = "amount_fen") -> int:
    if not isinstance(amount_fen, int) or not 0 < amount_fen <= MAX_AMOUNT_FEN:
        raise InvalidInput(
            f"{field} is a whole number of fen between 1 and {MAX_AMOUNT_FEN}", field=field
        )
    return amount_fen
