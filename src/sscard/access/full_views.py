"""S-1 full views: a masked value shown in full, on request, to whom policy allows; audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from sscard.access.disclosure import Resource, full_fields, scrub
from sscard.access.model import Actor, require, require_own_bank
from sscard.audit.model import AuditKind
from sscard.audit.service import record
from sscard.cards.tables import Card
from sscard.core.errors import Forbidden, InvalidInput, NotFound
from sscard.db.engine import UnitOfWork
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from sscard.runtime import Runtime


@dataclass(frozen=True)
class FullView:
    subject_type: str
    subject_id: int
    person_id: int
    field: str
    value: str
    reason: str
    disclosed_at: datetime


def _own(actor: Actor, person_id: int) -> bool:
    return actor.org_kind is OrgKind.CARDHOLDER and actor.person_id == person_id


def _person_in_scope(s: Session, actor: Actor, person: Person) -> None:
    if actor.org_kind is OrgKind.CARDHOLDER:
        if not _own(actor, person.id):
            raise Forbidden("a cardholder sees only their own record in full")
        return
    require(actor, "register.read")
    # A bank sees its own customers only: persons holding one of its cards.
    own_customer = select(
        exists().where(Card.person_id == person.id, Card.bank_code == actor.bank_code)
    )
    if actor.org_kind in (OrgKind.BANK, OrgKind.OUTLET) and not s.scalar(own_customer):
        raise Forbidden(f"this person holds no card of bank {actor.bank_code}")
    if actor.org_kind is OrgKind.UNIT and person.unit_org_id != actor.org_id:
        raise Forbidden("this person is not insured through your unit")


def _card_in_scope(actor: Actor, card: Card) -> None:
    if actor.org_kind is OrgKind.CARDHOLDER:
        if not _own(actor, card.person_id):
            raise Forbidden("a cardholder sees only their own cards in full")
        return
    require(actor, "cards.read")
    if actor.org_kind in (OrgKind.BANK, OrgKind.OUTLET):
        require_own_bank(actor, card.bank_code)
    if actor.org_kind is OrgKind.UNIT and card.unit_org_id != actor.org_id:
        raise Forbidden("this card was not applied for by your unit")


def show_in_full(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    subject: Resource,
    subject_id: int,
    field: str,
    reason: str,
) -> FullView:
    """Show one masked field of a person or card in full, and audit who, what and why."""
    if subject not in (Resource.PERSON, Resource.CARD):
        raise InvalidInput("full views exist for persons and cards", field="subject")
    allowed = full_fields(actor.org_kind, subject)
    if field not in allowed:
        shown = ", ".join(sorted(allowed)) or "none"
        raise Forbidden(
            f"a {actor.org_kind.value.replace('_', ' ')} may not see the {subject.value}'s "
            f"'{field}' in full (S-1); fields it may: {shown}",
            field="field",
            reason="not_disclosed_in_full",
        )
    why = scrub(reason.strip())
    if len(why) < 4:
        raise InvalidInput("say why the full value is needed", field="reason")
    s = uow.session
    if subject is Resource.PERSON:
        person = s.get(Person, subject_id)
        if person is None:
            raise NotFound(f"no person with id {subject_id}")
        _person_in_scope(s, actor, person)
        person_id, value = person.id, getattr(person, field)
    else:
        card = s.get(Card, subject_id)
        if card is None:
            raise NotFound(f"no card with id {subject_id}")
        _card_in_scope(actor, card)
        person_id, value = card.person_id, getattr(card, field)
    if not value:
        raise NotFound(f"the {subject.value} has no {field} on record", field="field")
    now = rt.now()
    record(
        s,
        actor=actor,
        at=now,
        action=f"disclosure.{field}",
        subject_type=subject.value,
        subject_id=subject_id,
        person_id=person_id,
        channel="api",
        detail={"field": field, "reason": why, "what": [f"{subject.value}.{field}"]},
        kind=AuditKind.DISCLOSURE,
    )
    uow.commit()
    return FullView(
        subject_type=subject.value,
        subject_id=subject_id,
        person_id=person_id,
        field=field,
        value=str(value),
        reason=why,
        disclosed_at=now,
    )
