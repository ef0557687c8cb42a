"""S-1 full views: a masked value shown in full, on request, to whom policy allows; audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from sscard.access.disclosure import Resource, full_fields, scrub
from sscard.access.model import Actor, require_scope
from sscard.access.scoping import record_of_card, record_of_person
from sscard.audit.model import AuditKind
from sscard.audit.service import record
from sscard.cards.tables import Card
from sscard.core.errors import Forbidden, InvalidInput, NotFound
from sscard.db.engine import UnitOfWork
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


def _person_in_scope(s: Session, actor: Actor, person: Person) -> None:
    """Who may read the person at all may ask for a full value: ``persons.read`` on this
    record (a bank: its own customers; a unit: its own people; a cardholder: themself).
    Out of scope answers 404, as if there were no such person (access.policy)."""
    require_scope(actor, "persons.read", record_of_person(s, person))


def _card_in_scope(actor: Actor, card: Card) -> None:
    """``cards.read`` on this card (a bank: its own; a cardholder: their own); 404 outside."""
    require_scope(actor, "cards.read", record_of_card(card))


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
