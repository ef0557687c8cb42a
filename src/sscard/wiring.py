"""Who listens to which message: run once by every entry point (server, CLI, tests).

The bank side and the center talk only through ``sscard.messages`` (C-1); their handlers
subscribe when their modules are imported, and ``wire`` makes sure they are.
"""

from __future__ import annotations

from sscard.messages import (
    BUS,
    BankAccountsChanged,
    CardsMoved,
    FinancialActivated,
    OldMedicalCardClosed,
)


def wire() -> None:
    """Subscribe every message handler (again is harmless: the bus ignores repeats)."""
    from sscard.accounts import settlement
    from sscard.bank import follow
    from sscard.cards import service as cards
    from sscard.events import bank_acts

    BUS.subscribe(CardsMoved, follow.on_cards_moved)
    BUS.subscribe(FinancialActivated, cards.receive_financial_activation)
    BUS.subscribe(OldMedicalCardClosed, settlement.move_old_card_balance)
    BUS.subscribe(BankAccountsChanged, bank_acts.on_bank_accounts_changed)
