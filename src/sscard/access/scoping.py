"""Record scopes in SQL: whose a row is, and which rows a list may return (S-1).

``record_of_*`` builds the ``RecordScope`` that ``require_scope`` checks for one row;
``visible`` turns the actor's scope for an operation into a WHERE clause, so a list
never returns a row out of scope. Each clause is an equality on an indexed column (or
an EXISTS through an indexed foreign key), so lists stay keyset-paginated and indexed.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import ColumnElement, exists, false, select, true
from sqlalchemy.orm import Session

from sscard.access.model import SYSTEM, Actor, RecordScope, Scope, require
from sscard.applications.tables import Application, Batch
from sscard.cards.tables import Card
from sscard.core.errors import Forbidden, InvalidInput
from sscard.register.tables import Person, Unit

# What a list walks; each target has its own columns for each scope.
Target = Literal["persons", "cards", "applications", "batches"]


def record_of_card(
    card: Card, *, what: str = "", field: str | None = None, presented: bool = False
) -> RecordScope:
    """Whose a card is: its holder, the unit that applied for it, its bank
    (``presented``: the caller named it by the number printed on it)."""
    return RecordScope(
        what=what or f"card with id {card.id}",
        field=field,
        person_id=card.person_id,
        unit_org_id=card.unit_org_id,
        bank_codes=frozenset({card.bank_code}),
        presented=presented,
    )


def shown_number(card_number: str | None, *, scope: Scope, act: str) -> str:
    """The number printed on the card that the caller shows with an act on a card id.

    A counter party (scope PRESENTED) must show it: without it the act is refused
    before any card is looked at, so the refusal says nothing about which ids exist.
    """
    shown = (card_number or "").strip().upper()
    if scope is Scope.PRESENTED and not shown:
        raise InvalidInput(
            f"a counter party {act} only the card presented to it: give the card_number "
            "printed on it",
            field="card_number",
        )
    return shown


def record_of_shown_card(card: Card, shown: str) -> RecordScope:
    """Whose ``card`` is, presented only if ``shown`` is its printed number (a wrong
    number answers like an unknown card: a counter party cannot walk the ids)."""
    return record_of_card(card, presented=bool(shown) and shown == card.card_number)


def record_of_person(
    session: Session,
    person: Person,
    *,
    what: str = "",
    field: str | None = None,
    presented: bool = False,
) -> RecordScope:
    """Whose a person is: themself, their unit, and every bank that issued them a card."""
    banks = session.scalars(select(Card.bank_code).where(Card.person_id == person.id).distinct())
    return RecordScope(
        what=what or f"person with id {person.id}",
        field=field,
        person_id=person.id,
        unit_org_id=person.unit_org_id,
        bank_codes=frozenset(banks),
        presented=presented,
    )


def record_of_application(session: Session, app: Application) -> RecordScope:
    """Whose a form is: its person, the person's unit, the bank chosen on it."""
    unit_org_id = session.scalar(select(Person.unit_org_id).where(Person.id == app.person_id))
    return RecordScope(
        what=f"application with id {app.id}",
        person_id=app.person_id,
        unit_org_id=unit_org_id,
        bank_codes=frozenset({app.bank_code}),
    )


def record_of_batch(batch: Batch) -> RecordScope:
    """Whose a unit's batch of forms is: the unit's, and its bank's."""
    return RecordScope(
        what=f"batch with id {batch.id}",
        unit_org_id=batch.unit_org_id,
        bank_codes=frozenset({batch.bank_code}),
    )


def record_of_unit(unit: Unit) -> RecordScope:
    """Whose a unit is: its own, and the bank it signed with."""
    return RecordScope(
        what=f"unit with id {unit.org_id}",
        org_id=unit.org_id,
        unit_org_id=unit.org_id,
        bank_codes=frozenset({unit.agreement_bank_code} if unit.agreement_bank_code else ()),
    )


def visible(actor: Actor, operation: str, target: Target) -> ColumnElement[bool]:
    """The WHERE clause of the rows of ``target`` that ``actor`` may list for ``operation``.

    Refuses (403) when the operation is not the actor's, and when its scope is one
    card presented at the counter, which never lists.
    """
    scope = require(actor, operation)
    if actor is SYSTEM or scope is Scope.ANY:
        return true()
    if scope is Scope.PRESENTED:
        raise Forbidden(
            f"a {actor.org_kind.value.replace('_', ' ')} reads only the card presented at "
            "its counter, never a list (S-1)",
            operation=operation,
            reason="presented_only",
        )
    if scope is Scope.OWN_BANK:
        return _own_bank(actor.bank_code, target)
    if scope is Scope.OWN_UNIT:
        return _own_unit(actor.org_id, target)
    if scope is Scope.OWN_PERSON:
        return _own_person(actor.person_id, target)
    return false()  # own_org: no person, card, form or batch is an organization's own


def _own_bank(bank: str | None, target: Target) -> ColumnElement[bool]:
    if bank is None:
        return false()
    if target == "cards":
        return Card.bank_code == bank
    if target == "applications":
        return Application.bank_code == bank
    if target == "batches":
        return Batch.bank_code == bank
    return exists().where(Card.person_id == Person.id, Card.bank_code == bank)


def _own_unit(org_id: int | None, target: Target) -> ColumnElement[bool]:
    if org_id is None:
        return false()
    if target == "cards":
        return Card.unit_org_id == org_id
    if target == "applications":
        return exists().where(Person.id == Application.person_id, Person.unit_org_id == org_id)
    if target == "batches":
        return Batch.unit_org_id == org_id
    return Person.unit_org_id == org_id


def _own_person(person_id: int | None, target: Target) -> ColumnElement[bool]:
    if person_id is None:
        return false()
    if target == "cards":
        return Card.person_id == person_id
    if target == "applications":
        return Application.person_id == person_id
    if target == "batches":
        return false()
    return Person.id == person_id
