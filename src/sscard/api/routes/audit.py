"""The audit trail for the card management center: its records and its verification."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from sscard.access.model import require
from sscard.api.unit import UnitRoute, Uow
from sscard.audit import records
from sscard.audit.model import AuditKind
from sscard.audit.schemas import AuditRecordPage, AuditRecordRead, VerificationRead
from sscard.audit.verification import verify

router = APIRouter(prefix="/audit", tags=["audit"], route_class=UnitRoute)
HTTP_VERIFY_LIMIT = 1_000_000  # entries per request; ``sscard audit verify`` walks them all


@router.get("/records", response_model=AuditRecordPage)
def list_records(
    uow: Uow,
    person_id: int | None = None,
    actor_org_id: int | None = None,
    action: str | None = Query(default=None, max_length=48),
    kind: AuditKind | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: str | None = None,
    limit: int = 50,
) -> AuditRecordPage:
    """Audit records, newest first, by cursor; filter by person, organization, action,
    kind and time (``since`` inclusive, ``until`` exclusive, RFC 3339 with offset)."""
    s = uow.session
    require(uow.actor, "audit.read")
    page = records.list_records(
        s,
        after=after,
        limit=limit,
        person_id=person_id,
        actor_org_id=actor_org_id,
        action=action,
        kind=kind,
        since=since,
        until=until,
    )
    return AuditRecordPage(items=[AuditRecordRead.of(r) for r in page.items], next=page.next)


@router.get("/verification", response_model=VerificationRead)
def verification(
    uow: Uow,
    from_seq: int = Query(default=1, ge=1),
    limit: int = Query(default=HTTP_VERIFY_LIMIT, ge=1, le=10 * HTTP_VERIFY_LIMIT),
) -> VerificationRead:
    """Recompute the audit chain's hashes from ``from_seq`` (at most ``limit`` entries)
    and name the first broken entry; ``complete`` false: go on from ``last_checked_seq`` + 1."""
    require(uow.actor, "audit.read")
    return VerificationRead.of(verify(uow.rt, from_seq=from_seq, limit=limit))
