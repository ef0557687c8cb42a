"""Posting double-entry transactions; the balance moves in the same statement as the entry.

A leg names its account by id or by its owner (``Owner``: a person's account of a kind,
or one of an institution's sub-accounts). Each leg is one guarded
``UPDATE ... RETURNING``: the balance moves, a debit that would take a personal account
below zero changes nothing, and the new balance comes back in the same round trip.
Every transaction locks a person's accounts before its counterparties' (one lock
order, so two postings never deadlock).

Hot rows: every settlement at a hospital credits the hospital, so its account would be
one row that all its payments queue on. Each institution has ``INSTITUTION_SHARDS``
sub-accounts instead; a payment credits the one its holder maps to, the institution's
balance is their sum, and each sub-account's balance is still the sum of its entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    bindparam,
    cast,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sscard.accounts.model import AccountKind, InsufficientBalance, TxnKind
from sscard.accounts.tables import LedgerAccount, LedgerEntry, LedgerTxn
from sscard.core.errors import DomainError
from sscard.db.base import UTCDateTime, table
from sscard.db.statements import Prepared

INSTITUTION_SHARDS = 8
# Postings are plain table statements on the session's connection (no ORM objects).
_ACCOUNT = table(LedgerAccount)
_A = _ACCOUNT.c


@dataclass(frozen=True, slots=True)
class Owner:
    """An account named by whose it is: a person's, an organization's sub-account."""

    kind: AccountKind
    person_id: int | None = None
    org_id: int | None = None
    shard: int = 0

    def where(self) -> ColumnElement[bool]:
        if self.person_id is not None:
            return and_(_A.kind == self.kind.value, _A.person_id == self.person_id)
        return and_(_A.kind == self.kind.value, _A.org_id == self.org_id, _A.shard == self.shard)

    @property
    def order(self) -> tuple[int, str, int, int]:
        """The lock order: persons' accounts first."""
        return (
            0 if self.person_id is not None else 1,
            self.kind.value,
            self.org_id or 0,
            self.shard,
        )


def personal(person_id: int) -> Owner:
    return Owner(AccountKind.PERSONAL, person_id=person_id)


def institution(org_id: int, *, person_id: int) -> Owner:
    """The institution's sub-account that a payment of ``person_id`` goes to."""
    return Owner(AccountKind.INSTITUTION, org_id=org_id, shard=person_id % INSTITUTION_SHARDS)


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
        else q.where(LedgerAccount.org_id == org_id, LedgerAccount.shard == 0)
    )
    found = s.scalar(q)
    if found is not None:
        return found
    fresh = LedgerAccount(
        kind=kind.value, person_id=person_id, org_id=org_id, shard=0, balance_fen=0, created_at=now
    )
    try:
        with s.begin_nested():
            s.add(fresh)
    except IntegrityError:  # opened at the same moment by another transaction
        found = s.scalar(q)
        assert found is not None
        return found
    return fresh


def _open(s: Session, owner: Owner, now: datetime) -> None:
    """Open ``owner``'s account unless it exists (a racing opener is no error)."""
    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    s.connection().execute(
        dialect.insert(_ACCOUNT)
        .values(
            kind=owner.kind.value,
            person_id=owner.person_id,
            org_id=owner.org_id,
            shard=owner.shard,
            balance_fen=0,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )


@dataclass(frozen=True)
class Leg:
    account: int | Owner
    amount_fen: int  # + credit, - debit
    may_go_negative: bool = False


@dataclass(frozen=True, slots=True)
class Posted:
    txn_id: int
    balances: dict[int | Owner, int]  # each leg's account balance after the posting


def _moving(by: str, guarded: bool) -> Any:
    """The balance UPDATE of a leg, built once per way of naming the account."""
    amount = bindparam("b_amount", type_=BigInteger)
    where = {
        "person": and_(_A.kind == bindparam("b_kind"), _A.person_id == bindparam("b_owner")),
        "org": and_(
            _A.kind == bindparam("b_kind"),
            _A.org_id == bindparam("b_owner"),
            _A.shard == bindparam("b_shard"),
        ),
        "id": _A.id == bindparam("b_owner"),
    }[by]
    stmt = (
        update(_ACCOUNT)
        .where(where)
        .values(balance_fen=_A.balance_fen + amount)
        .returning(_A.id, _A.balance_fen)
    )
    return stmt.where(_A.balance_fen + amount >= 0) if guarded else stmt


_NEW_TXN = Prepared(insert(table(LedgerTxn)).returning(table(LedgerTxn).c.id))


@cache
def _entries(legs: int) -> Any:
    """The INSERT of a posting's entries, one row per leg, built once per number of legs
    (``INSERT ... SELECT ... UNION ALL SELECT ...``: one statement whose compiled form is
    cached, unlike a multi-row VALUES)."""
    txn = cast(bindparam("txn_id"), BigInteger)
    at = bindparam("created_at", type_=UTCDateTime())
    rows = [
        select(
            txn,
            cast(bindparam(f"account_{i}"), BigInteger),
            cast(bindparam(f"amount_{i}"), BigInteger),
            at,
        )
        for i in range(legs)
    ]
    return Prepared(
        insert(table(LedgerEntry)).from_select(
            ["txn_id", "account_id", "amount_fen", "created_at"], union_all(*rows)
        )
    )


_MOVES = {
    (by, g): Prepared(_moving(by, g)) for by in ("person", "org", "id") for g in (True, False)
}


def _move(s: Session, leg: Leg, now: datetime) -> tuple[int, int]:
    """One leg's guarded balance UPDATE; (account id, balance after)."""
    account = leg.account
    if isinstance(account, Owner):
        by = "person" if account.person_id is not None else "org"
        values = {
            "b_kind": account.kind.value,
            "b_owner": account.person_id if account.person_id is not None else account.org_id,
            "b_shard": account.shard,
        }
    else:
        by, values = "id", {"b_owner": account}
    stmt = _MOVES[(by, not leg.may_go_negative)]
    values["b_amount"] = leg.amount_fen
    row = stmt.first(s, values)
    if row is not None:
        return int(row[0]), int(row[1])
    conn = s.connection()
    where = account.where() if isinstance(account, Owner) else _A.id == account
    if isinstance(account, Owner):
        exists = conn.execute(select(_A.balance_fen).where(where)).scalar()
        if exists is None:  # first use of this account: open it, then move
            _open(s, account, now)
            row = stmt.first(s, values)
    if row is None:
        current = conn.execute(select(_A.balance_fen).where(where)).scalar()
        raise InsufficientBalance(
            f"the medical account holds {current or 0} fen; {-leg.amount_fen} fen cannot be "
            "paid from it",
            balance_fen=current or 0,
        )
    return int(row[0]), int(row[1])


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
    refund_of_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> Posted:
    """Record one balanced transaction; refuse a debit that would go below zero.

    The balances move first (persons' accounts first, then counterparties'), so a
    refused debit has written nothing; then the transaction and its entries.
    """
    if sum(leg.amount_fen for leg in legs) != 0:
        raise DomainError("unbalanced transaction")  # a programming error, never input

    def order(leg: Leg) -> tuple[int, str, int, int]:
        return leg.account.order if isinstance(leg.account, Owner) else (2, "", leg.account, 0)

    moved = [(leg, *_move(s, leg, now)) for leg in sorted(legs, key=order)]
    txn_id = _NEW_TXN.scalar(
        s,
        {
            "kind": kind.value,
            "person_id": person_id,
            "org_id": org_id,
            "card_id": card_id,
            "amount_fen": max(abs(leg.amount_fen) for leg in legs),
            "refund_of_id": refund_of_id,
            "actor_staff_id": actor_staff_id,
            "created_at": now,
            "detail": detail or {},
        },
    )
    # One multi-row INSERT (not a batch of single-row ones): a posting has two or three legs.
    entries: dict[str, Any] = {"txn_id": txn_id, "created_at": now}
    for i, (leg, account_id, _) in enumerate(moved):
        entries[f"account_{i}"], entries[f"amount_{i}"] = account_id, leg.amount_fen
    _entries(len(moved)).run(s, entries)
    return Posted(txn_id=txn_id, balances={leg.account: after for leg, _, after in moved})


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
