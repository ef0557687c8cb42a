"""API shapes of the audit trail (center only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from sscard.audit.chain import Break
from sscard.audit.tables import AuditRecord
from sscard.audit.verification import Verification


class AuditRecordRead(BaseModel):
    """One entry of the trail; ``chain_seq`` is empty until it is sealed."""

    id: int
    occurred_at: datetime
    kind: str
    actor_staff_id: int | None
    actor_org_id: int | None
    actor_person_id: int | None
    source: str
    channel: str
    action: str
    subject_type: str
    subject_id: int | None
    person_id: int | None
    detail: dict[str, Any]
    chain_seq: int | None
    entry_hash: str | None

    @classmethod
    def of(cls, row: AuditRecord) -> AuditRecordRead:
        return cls(
            id=row.id,
            occurred_at=row.occurred_at,
            kind=row.kind,
            actor_staff_id=row.actor_staff_id,
            actor_org_id=row.actor_org_id,
            actor_person_id=row.actor_person_id,
            source=row.source,
            channel=row.channel,
            action=row.action,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            person_id=row.person_id,
            detail=row.detail or {},
            chain_seq=row.chain_seq,
            entry_hash=row.entry_hash,
        )


class AuditRecordPage(BaseModel):
    items: list[AuditRecordRead]
    next: str | None


class BreakRead(BaseModel):
    """The first broken entry (``id`` empty: the entry at that seq is missing)."""

    chain_seq: int
    id: int | None
    occurred_at: datetime | None
    action: str | None
    problem: str
    detail: str

    @classmethod
    def of(cls, b: Break) -> BreakRead:
        return cls(
            chain_seq=b.chain_seq,
            id=b.id,
            occurred_at=b.occurred_at,
            action=b.action,
            problem=b.problem.value,
            detail=b.detail,
        )


class VerificationRead(BaseModel):
    """The chain's state: sealed, checked and waiting entries, and the first break."""

    intact: bool
    complete: bool
    from_seq: int
    sealed: int
    head_hash: str
    checked: int
    last_checked_seq: int | None
    unsealed: int
    broken: BreakRead | None

    @classmethod
    def of(cls, v: Verification) -> VerificationRead:
        return cls(
            intact=v.intact,
            complete=v.complete,
            from_seq=v.from_seq,
            sealed=v.sealed,
            head_hash=v.head_hash,
            checked=v.checked,
            last_checked_seq=v.last_checked_seq,
            unsealed=v.unsealed,
            broken=BreakRead.of(v.broken) if v.broken else None,
        )
