"""Q-1: the insured may inquire their payment records and account entries."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.accounts.model import AccountKind
from sscard.accounts.tables import Contribution, LedgerAccount, LedgerEntry, LedgerTxn
from sscard.core.pagination import Page, check_limit, decode_cursor


@dataclass(frozen=True)
class Statement:
    balance_fen: int
    old_card_balance_fen: int
    entries: Page[tuple[LedgerEntry, LedgerTxn]]
    contributions: list[Contribution]


def statement(s: Session, *, person_id: int, after: str | None, limit: int) -> Statement:
    """The person's balance, account entries (newest first, by cursor) and contributions."""
    check_limit(limit)
    accounts = dict(
        s.execute(
            select(LedgerAccount.kind, LedgerAccount.id).where(LedgerAccount.person_id == person_id)
        ).all()
    )
    balances = dict(
        s.execute(
            select(LedgerAccount.kind, LedgerAccount.balance_fen).where(
                LedgerAccount.person_id == person_id
            )
        ).all()
    )
    personal = accounts.get(AccountKind.PERSONAL.value)
    rows: list[tuple[LedgerEntry, LedgerTxn]] = []
    if personal is not None:
        q = (
            select(LedgerEntry, LedgerTxn)
            .join(LedgerTxn, LedgerTxn.id == LedgerEntry.txn_id)
            .where(LedgerEntry.account_id == personal)
            .order_by(LedgerEntry.id.desc())
            .limit(limit + 1)
        )
        cursor = decode_cursor(after)
        if cursor:
            q = q.where(LedgerEntry.id < cursor)
        rows = [(e, t) for e, t in s.execute(q).all()]
    contributions = list(
        s.scalars(
            select(Contribution)
            .where(Contribution.person_id == person_id)
            .order_by(Contribution.month.desc())
            .limit(120)
        )
    )
    return Statement(
        balance_fen=int(balances.get(AccountKind.PERSONAL.value, 0)),
        old_card_balance_fen=int(balances.get(AccountKind.OLD_CARD.value, 0)),
        entries=Page.of(rows, limit, key=lambda row: row[0].id),
        contributions=contributions,
    )
