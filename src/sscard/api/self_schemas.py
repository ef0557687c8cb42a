"""API shapes of cardholder self-service and of audited full views (S-1, Q-1)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from sscard.accounts.schemas import ContributionRead, EntryRead, statement_fields

if TYPE_CHECKING:
    from sscard.accounts.inquiry import Statement


class FullViewIn(BaseModel):
    """Ask to see one masked field in full; the reason goes into the audit record."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(min_length=1, max_length=40)
    reason: str = Field(min_length=4, max_length=300)


class FullViewRead(BaseModel):
    """One full value, shown once and audited (``kind=disclosure``)."""

    subject_type: str
    subject_id: int
    person_id: int
    field: str
    value: str
    reason: str
    disclosed_at: datetime


class AccessLogEntryRead(BaseModel):
    """Who looked at or changed my record: which organization, what, and when."""

    id: int
    at: datetime
    kind: str  # inquiry, change or disclosure
    organization_name: str | None
    organization_kind: str  # an OrgKind, or "system" for automatic deadlines
    action: str
    subject_type: str
    what: list[str]


class AccessLogPage(BaseModel):
    items: list[AccessLogEntryRead]
    next: str | None


class SelfAccountRead(BaseModel):
    """Q-1 for the holder: balance, entries (newest first) and payment records."""

    balance_fen: int
    old_card_balance_fen: int
    entries: list[EntryRead]
    next: str | None
    contributions: list[ContributionRead]

    @classmethod
    def of(cls, st: Statement) -> SelfAccountRead:
        return cls(**statement_fields(st))
