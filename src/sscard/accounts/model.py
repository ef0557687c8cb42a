"""The medical personal account (C-4) as double-entry bookkeeping, in plain rules.

A transaction moves money between ledger accounts; its entries sum to zero. The
personal account's balance is the sum of its entries and never goes below zero;
the counterparties (the region's fund pool, each institution's settlement account,
the old medical insurance card being retired) may.
"""

from __future__ import annotations

from enum import StrEnum

from sscard.core.errors import DomainError, InvalidInput


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


MAX_AMOUNT_FEN = 10_000_000  # 100 000 yuan: above this a line is surely a typo


def check_amount(amount_fen: int, field: str = "amount_fen") -> int:
    if not isinstance(amount_fen, int) or not 0 < amount_fen <= MAX_AMOUNT_FEN:
        raise InvalidInput(
            f"{field} is a whole number of fen between 1 and {MAX_AMOUNT_FEN}", field=field
        )
    return amount_fen
