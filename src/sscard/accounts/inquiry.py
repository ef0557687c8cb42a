"""Q-1: the insured may inquire their payment records and account entries."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import Actor, Service, require, require_authorised
from sscard.access.scoping import record_of_person
from sscard.accounts.model import AccountKind
from sscard.accounts.tables import Contribution, LedgerAccount, LedgerEntry, LedgerTxn
from sscard.core.pagination import Page, check_limit, decode_cursor
from sscard.register.service import find_person, granted


@dataclass(frozen=True)
class Statement:
    balance_fen: int
    old_card_balance_fen: int
    entries: Page[tuple[LedgerEntry, LedgerTxn]]
    contributions: list[Contribution]


def statement(s: Session, *, person_id: int, after: str | None, limit: int) -> Statement:
    """The person's balance, account entries (newest first, by cursor) and contributions."""
    check_limit(limit)
    found = s.execute(
        select(LedgerAccount.kind, LedgerAccount.id, LedgerAccount.balance_fen).where(
            LedgerAccount.person_id == person_id
        )
    ).all()
    accounts = {kind: account_id for kind, account_id, _ in found}
    balances = {kind: amount for kind, _, amount in found}
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


def inquire(
    s: Session, *, actor: Actor, id_number: str, after: str | None, limit: int
) -> tuple[int, Statement]:
    """Q-1 at a window, a service point or 12333: the holder is named by ID number (never
    in a URL), and the party must be authorised for inquiries (P-3)."""
    require(actor, "accounts.inquire")
    require_authorised(actor, Service.INQUIRY, granted(s, actor))
    person = find_person(s, id_number)
    require(
        actor,
        "accounts.inquire",
        record_of_person(
            s,
            person,
            what="person with this ID number is registered",
            field="id_number",
            presented=True,
        ),
    )
    return person.id, statement(s, person_id=person.id, after=after, limit=limit)
