"""API shapes of the medical personal account; passwords go in and never come out."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from sscard.accounts.inquiry import Statement


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SettlementIn(_In):
    card_number: str = Field(max_length=32)
    kind: Literal["outpatient", "inpatient", "pharmacy"]
    amount_fen: int = Field(gt=0, le=10_000_000)
    password: str | None = Field(default=None, max_length=6)
    # First use of an unactivated card: the holder sets the password now (V-1, V-2).
    new_password: str | None = Field(default=None, max_length=6)
    old_medical_card_no: str | None = Field(default=None, max_length=32)


class RefundIn(_In):
    amount_fen: int = Field(gt=0, le=10_000_000)


class ReceiptRead(BaseModel):
    """The receipt the institution prints."""

    transaction_id: int
    kind: str
    amount_fen: int
    balance_fen: int
    card_id: int
    card_state: str
    activated: bool
    replayed: bool
    at: datetime


class InquiryIn(_In):
    id_number: str = Field(max_length=40)
    after: str | None = None
    limit: int = 50


class EntryRead(BaseModel):
    id: int
    transaction_id: int
    kind: str
    amount_fen: int
    at: datetime
    org_id: int | None


class ContributionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    month: str
    amount_fen: int
    unit_org_id: int


class StatementRead(BaseModel):
    """Q-1: balance, account entries (newest first) and payment records."""

    person_id: int
    balance_fen: int
    old_card_balance_fen: int
    entries: list[EntryRead]
    next: str | None
    contributions: list[ContributionRead]

    @classmethod
    def of(cls, st: Statement, *, person_id: int) -> StatementRead:
        return cls(person_id=person_id, **statement_fields(st))


def statement_fields(st: Statement) -> dict[str, Any]:
    """What every Q-1 answer shows of a statement: balances, entries (newest first, with
    the cursor to the next page) and payment records."""
    return {
        "balance_fen": st.balance_fen,
        "old_card_balance_fen": st.old_card_balance_fen,
        "entries": [
            EntryRead(
                id=e.id,
                transaction_id=e.transaction_id,
                kind=e.kind,
                amount_fen=e.amount_fen,
                at=e.at,
                org_id=e.org_id,
            )
            for e in st.entries.items
        ],
        "next": st.entries.next,
        "contributions": [
            ContributionRead(month=c.month, amount_fen=c.amount_fen, unit_org_id=c.unit_org_id)
            for c in st.contributions
        ],
    }


class PasswordResetIn(_In):
    card_number: str = Field(max_length=32)
    id_number: str = Field(max_length=40)
    new_password: str = Field(max_length=6)


class PasswordChangeIn(_In):
    card_number: str = Field(max_length=32)
    old_password: str = Field(max_length=6)
    new_password: str = Field(max_length=6)


class Done(BaseModel):
    person_id: int
    result: str
