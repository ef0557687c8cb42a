"""Q-1: the insured may inquire their payment records and account entries.

A read of a few indexed rows, asked at every window all day: plain table statements built
once (no ORM objects), and the holder found through the ID number's blind index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from sscard.access.model import Actor, RecordScope, Scope, Service, require, require_authorised
from sscard.access.scoping import record_of_person
from sscard.accounts.model import AccountKind
from sscard.accounts.tables import Contribution, LedgerAccount, LedgerEntry, LedgerTxn
from sscard.core.errors import NotFound
from sscard.core.ids import parse_id_number
from sscard.core.pagination import Page, check_limit, decode_cursor
from sscard.core.protect import ID_NUMBER, SOCIAL
from sscard.db.base import table
from sscard.db.statements import Prepared
from sscard.db.types import BlindLookup
from sscard.register.service import get_person, granted
from sscard.register.tables import Person

_A = table(LedgerAccount).c
_E = table(LedgerEntry).c
_T = table(LedgerTxn).c
_C = table(Contribution).c
_P = table(Person).c

# A person's accounts, by the (kind, person_id) index: each kind a person can hold named.
_HOLDERS_KINDS = (AccountKind.PERSONAL, AccountKind.OLD_CARD)
_ACCOUNTS = Prepared(
    select(_A.kind, _A.id, _A.balance_fen).where(
        _A.kind.in_([bindparam(f"kind_{k.value}", k.value) for k in _HOLDERS_KINDS]),
        _A.person_id == bindparam("person_id"),
    )
)
_ENTRIES = Prepared(
    select(
        _E.id,
        _E.txn_id.label("transaction_id"),
        _T.kind,
        _E.amount_fen,
        _E.created_at.label("at"),
        _T.org_id,
    )
    .select_from(table(LedgerEntry).join(table(LedgerTxn), _T.id == _E.txn_id))
    .where(_E.account_id == bindparam("account_id"), _E.id < bindparam("before"))
    .order_by(_E.id.desc())
    .limit(bindparam("rows"))
)
_CONTRIBUTIONS = Prepared(
    select(_C.month, _C.amount_fen, _C.unit_org_id)
    .where(_C.person_id == bindparam("person_id"))
    .order_by(_C.month.desc())
    .limit(120)
)
_NO_CURSOR = 2**63 - 1


@dataclass(frozen=True)
class Statement:
    balance_fen: int
    old_card_balance_fen: int
    entries: Page[Any]  # rows: id, transaction_id, kind, amount_fen, at, org_id
    contributions: list[Any]  # rows: month, amount_fen, unit_org_id


def statement(s: Session, *, person_id: int, after: str | None, limit: int) -> Statement:
    """The person's balance, account entries (newest first, by cursor) and contributions."""
    check_limit(limit)
    found = _ACCOUNTS.all(s, {"person_id": person_id})
    accounts = {kind: account_id for kind, account_id, _ in found}
    balances = {kind: amount for kind, _, amount in found}
    personal = accounts.get(AccountKind.PERSONAL.value)
    rows: list[Any] = []
    if personal is not None:
        rows = _ENTRIES.all(
            s,
            {
                "account_id": personal,
                "before": decode_cursor(after) or _NO_CURSOR,
                "rows": limit + 1,
            },
        )
    contributions = _CONTRIBUTIONS.all(s, {"person_id": person_id})
    return Statement(
        balance_fen=int(balances.get(AccountKind.PERSONAL.value, 0)),
        old_card_balance_fen=int(balances.get(AccountKind.OLD_CARD.value, 0)),
        entries=Page.of(rows, limit, key=lambda row: row.id),
        contributions=contributions,
    )


_HOLDER = BlindLookup(select(_P.id, _P.unit_org_id), _P.id_number_hash, side=SOCIAL, kind=ID_NUMBER)


def inquire(
    s: Session, *, actor: Actor, id_number: str, after: str | None, limit: int
) -> tuple[int, Statement]:
    """Q-1 at a window, a service point or 12333: the holder is named by ID number (never
    in a URL), and the party must be authorised for inquiries (P-3)."""
    scope = require(actor, "accounts.inquire")
    require_authorised(actor, Service.INQUIRY, granted(s, actor))
    number = parse_id_number(id_number, field="id_number").number
    holder = _HOLDER.first(s, number)
    what = "person with this ID number is registered"
    if holder is None:
        raise NotFound(f"no {what}", field="id_number")
    record = (
        # Only a bank's scope asks which banks issued the holder's cards.
        record_of_person(s, get_person(s, holder.id), what=what, field="id_number", presented=True)
        if scope is Scope.OWN_BANK
        else RecordScope(
            what=what,
            field="id_number",
            person_id=holder.id,
            unit_org_id=holder.unit_org_id,
            presented=True,
        )
    )
    require(actor, "accounts.inquire", record)
    return holder.id, statement(s, person_id=holder.id, after=after, limit=limit)
