"""Posting double-entry transactions; the balance moves in the same statement as the entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sscard.accounts.model import AccountKind, InsufficientBalance, TxnKind
from sscard.accounts.tables import LedgerAccount, LedgerEntry, LedgerTxn
from sscard.core.errors import DomainError


def account(
    s: Session,
    kind: AccountKind,
    *,
    person_id: int | None = None,
    org_id: int | None = None,
    now: datetime,
) -> LedgerAccount:
    """The ledger account of a person or organization, opened on first use."""
    q = select(LedgerAccount).where(LedgerAccount.kind == kind.value)
    q = (
        q.where(LedgerAccount.person_id == person_id)
        if person_id is not None
        else q.where(LedgerAccount.org_id == org_id)
    )
    found = s.scalar(q)
    if found is not None:
        return found
    fresh = LedgerAccount(
        kind=kind.value, person_id=person_id, org_id=org_id, balance_fen=0, created_at=now
    )
    try:
        with s.begin_nested():
            s.add(fresh)
    except IntegrityError:  # opened at the same moment by another transaction
        found = s.scalar(q)
        assert found is not None
        return found
    return fresh


@dataclass(frozen=True)
class Leg:
    account_id: int
    amount_fen: int  # + credit, - debit
    may_go_negative: bool = False


def post(
    s: Session,
    *,
    kind: TxnKind,
    person_id: int,
    legs: list[Leg],
    now: datetime,
    org_id: int | None = None,
    card_id: int | None = None,
    actor_staff_id: int | None = None,
    request_key: str | None = None,
    fingerprint: str | None = None,
    refund_of_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> LedgerTxn:
    """Record one balanced transaction; refuse a debit that would go below zero.

    Each leg's balance moves with ``UPDATE ... SET balance = balance + amount WHERE
    balance + amount >= 0``: on PostgreSQL concurrent debits of one account queue on
    the row and the second sees the first's result, so no race can overdraw it.
    """
    if sum(leg.amount_fen for leg in legs) != 0:
        raise DomainError("unbalanced transaction")  # a programming error, never input
    txn = LedgerTxn(
        kind=kind.value,
        person_id=person_id,
        org_id=org_id,
        card_id=card_id,
        amount_fen=max(abs(leg.amount_fen) for leg in legs),
        request_key=request_key,
        request_fingerprint=fingerprint,
        refund_of_id=refund_of_id,
        actor_staff_id=actor_staff_id,
        created_at=now,
        detail=detail or {},
    )
    s.add(txn)
    s.flush()
    for leg in sorted(legs, key=lambda leg: leg.account_id):  # one lock order: no deadlock
        stmt = (
            update(LedgerAccount)
            .where(LedgerAccount.id == leg.account_id)
            .values(balance_fen=LedgerAccount.balance_fen + leg.amount_fen)
        )
        if not leg.may_go_negative:
            stmt = stmt.where(LedgerAccount.balance_fen + leg.amount_fen >= 0)
        changed = s.execute(stmt.execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
        if changed != 1:
            balance = s.scalar(
                select(LedgerAccount.balance_fen).where(LedgerAccount.id == leg.account_id)
            )
            raise InsufficientBalance(
                f"the medical account holds {balance or 0} fen; {-leg.amount_fen} fen cannot be "
                "paid from it",
                balance_fen=balance or 0,
            )
    s.execute(
        insert(LedgerEntry),
        [
            {
                "txn_id": txn.id,
                "account_id": leg.account_id,
                "amount_fen": leg.amount_fen,
                "created_at": now,
            }
            for leg in legs
        ],
    )
    return txn


def balance(s: Session, account_id: int) -> int:
    return int(
        s.scalar(select(LedgerAccount.balance_fen).where(LedgerAccount.id == account_id)) or 0
    )


@dataclass(frozen=True)
class Mismatch:
    what: str
    id: int
    stored: int
    computed: int


def check(s: Session, *, batch: int = 10_000) -> list[Mismatch]:
    """Prove every account's balance equals the sum of its entries, no personal
    account is negative, and every transaction balances; one grouped query per batch
    of accounts. Run it in one snapshot (REPEATABLE READ on PostgreSQL) while the
    service is live, so the sums and balances are read at the same moment."""
    problems: list[Mismatch] = []
    after = 0
    while True:
        ids = list(
            s.scalars(
                select(LedgerAccount.id)
                .where(LedgerAccount.id > after)
                .order_by(LedgerAccount.id)
                .limit(batch)
            )
        )
        if not ids:
            break
        sums = dict(
            s.execute(
                select(LedgerEntry.account_id, func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
                .where(LedgerEntry.account_id.in_(ids))
                .group_by(LedgerEntry.account_id)
            ).all()
        )
        for acc_id, stored in s.execute(
            select(LedgerAccount.id, LedgerAccount.balance_fen).where(LedgerAccount.id.in_(ids))
        ).all():
            computed = int(sums.get(acc_id, 0))
            if computed != stored:
                problems.append(Mismatch("account", acc_id, int(stored), computed))
        after = ids[-1]
    for acc_id, stored in s.execute(
        select(LedgerAccount.id, LedgerAccount.balance_fen).where(
            LedgerAccount.kind.in_([AccountKind.PERSONAL.value, AccountKind.OLD_CARD.value]),
            LedgerAccount.balance_fen < 0,
        )
    ).all():
        problems.append(Mismatch("negative balance", acc_id, int(stored), 0))
    for txn_id, total in s.execute(
        select(LedgerEntry.txn_id, func.sum(LedgerEntry.amount_fen))
        .group_by(LedgerEntry.txn_id)
        .having(func.sum(LedgerEntry.amount_fen) != 0)
    ).all():
        problems.append(Mismatch("transaction", txn_id, 0, int(total)))
    return problems
