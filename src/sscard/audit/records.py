"""Reading the audit trail: the center's filtered, cursor-paginated list of records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.audit.model import AuditKind
from sscard.audit.tables import AuditRecord
from sscard.core.errors import InvalidInput
from sscard.core.pagination import Page, check_limit, decode_cursor


def list_records(
    s: Session,
    *,
    after: str | None,
    limit: int,
    person_id: int | None = None,
    actor_org_id: int | None = None,
    action: str | None = None,
    kind: AuditKind | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditRecord]:
    """Audit records, newest first by cursor, filtered.

    Indexed: ``person_id``, and the key for the order; on PostgreSQL ``since``/``until``
    choose the month partitions. The other filters are checked while walking the key
    newest first (the trail keeps only the indexes its frequent queries need).
    """
    check_limit(limit)
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(f"{name} needs a timezone offset", field=name)
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must be before until", field="since")
    q = select(AuditRecord)
    if person_id is not None:
        q = q.where(AuditRecord.person_id == person_id)
    if actor_org_id is not None:
        q = q.where(AuditRecord.actor_org_id == actor_org_id)
    if action is not None:
        q = q.where(AuditRecord.action == action)
    if kind is not None:
        q = q.where(AuditRecord.kind == kind.value)
    if since is not None:
        q = q.where(AuditRecord.occurred_at >= since)
    if until is not None:
        q = q.where(AuditRecord.occurred_at < until)
    cursor = decode_cursor(after)
    if cursor:
        q = q.where(AuditRecord.id < cursor)
    rows = list(s.scalars(q.order_by(AuditRecord.id.desc()).limit(limit + 1)))
    return Page.of(rows, limit, key=lambda row: row.id)
