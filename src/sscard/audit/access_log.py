"""The access log: who looked at a person's record, and the holder's view of it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.applications.tables import Application
from sscard.audit.model import AuditKind
from sscard.audit.service import record_many
from sscard.audit.tables import AuditRecord
from sscard.cards.tables import Card
from sscard.core.pagination import Page, check_limit, decode_cursor
from sscard.register.tables import Organization
from sscard.runtime import Runtime

Read = tuple[str, str, int]
"""One record read: (what was read, kind of id: person, card or application, id)."""


def _persons(s: Session, reads: Iterable[Read]) -> dict[int, set[str]]:
    """Each person whose record was read, with what of it (cards and forms resolved)."""
    direct: dict[int, set[str]] = {}
    by_card: dict[int, set[str]] = {}
    by_form: dict[int, set[str]] = {}
    for what, key, value in reads:
        target = {"person": direct, "card": by_card, "application": by_form}[key]
        target.setdefault(value, set()).add(what)
    for table, pending in ((Card, by_card), (Application, by_form)):
        if pending:
            rows = s.execute(
                select(table.id, table.person_id).where(table.id.in_(list(pending)))
            ).all()
            for row_id, person_id in rows:
                direct.setdefault(person_id, set()).update(pending[row_id])
    return direct


def log_inquiries(rt: Runtime, *, actor: Actor, action: str, route: str, reads: list[Read]) -> int:
    """Write one inquiry record per person read, in one short transaction; their number."""
    if not reads:
        return 0
    with rt.uow() as uow:
        persons = _persons(uow.session, reads)
        # A cardholder reading their own record is not someone looking at them.
        if actor.person_id is not None:
            persons.pop(actor.person_id, None)
        record_many(
            uow.session,
            actor=actor,
            at=rt.now(),
            action=action[:48],
            subject_type="person",
            channel="api",
            entries=[
                (pid, pid, {"route": route, "what": sorted(what)})
                for pid, what in sorted(persons.items())
            ],
            kind=AuditKind.INQUIRY,
        )
        uow.commit()
        return len(persons)


@dataclass(frozen=True)
class Look:
    """One entry of a holder's access log."""

    id: int
    at: datetime
    kind: str
    organization_name: str | None
    organization_kind: str
    action: str
    subject_type: str
    what: list[str]


def access_log(s: Session, *, person_id: int, after: str | None, limit: int) -> Page[Look]:
    """Who inquired, changed or saw in full the person's record: newest first, by cursor.

    One index range scan per kind on ``(person_id, kind, id)``, each already in id
    order and stopping after a page, merged here; then the page's organizations.
    """
    check_limit(limit)
    cursor = decode_cursor(after)
    rows: list[AuditRecord] = []
    for kind in AuditKind:
        q = select(AuditRecord).where(
            AuditRecord.person_id == person_id,
            AuditRecord.kind == kind.value,
            # The holder's own acts in self-service are not someone else looking.
            (AuditRecord.actor_person_id.is_(None)) | (AuditRecord.actor_person_id != person_id),
        )
        if cursor:
            q = q.where(AuditRecord.id < cursor)
        rows += s.scalars(q.order_by(AuditRecord.id.desc()).limit(limit + 1))
    rows = sorted(rows, key=lambda r: r.id, reverse=True)[: limit + 1]
    org_ids = {r.actor_org_id for r in rows if r.actor_org_id is not None}
    orgs = (
        {
            org_id: (name, kind)
            for org_id, name, kind in s.execute(
                select(Organization.id, Organization.name, Organization.kind).where(
                    Organization.id.in_(org_ids)
                )
            ).all()
        }
        if org_ids
        else {}
    )
    looks = [
        Look(
            id=r.id,
            at=r.occurred_at,
            kind=r.kind,
            organization_name=orgs.get(r.actor_org_id or 0, (None, None))[0],
            organization_kind=orgs.get(r.actor_org_id or 0, (None, "system"))[1],
            action=r.action,
            subject_type=r.subject_type,
            what=list((r.detail or {}).get("what", [r.subject_type])),
        )
        for r in rows
    ]
    return Page.of(looks, limit, key=lambda look: look.id)
