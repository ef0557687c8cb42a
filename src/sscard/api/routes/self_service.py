"""Cardholder self-service (Q-1, S-1) and audited full views of masked fields."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select

from sscard.access.disclosure import Resource
from sscard.access.full_views import FullView, show_in_full
from sscard.access.model import Actor, require
from sscard.accounts import inquiry
from sscard.api.schemas import CardPage, CardRead, PersonRead
from sscard.api.self_schemas import (
    AccessLogEntryRead,
    AccessLogPage,
    FullViewIn,
    FullViewRead,
    SelfAccountRead,
)
from sscard.api.unit import RequestUnit, UnitRoute, Uow
from sscard.audit.access_log import access_log
from sscard.cards.tables import Card
from sscard.core.errors import Forbidden
from sscard.db.paging import page_by_id
from sscard.register.service import get_person

router = APIRouter(route_class=UnitRoute, tags=["self-service"])

NO_STORE = {"Cache-Control": "no-store"}


def _me(actor: Actor) -> int:
    require(actor, "self.read")
    if actor.person_id is None:
        raise Forbidden("this cardholder session names no person")
    return actor.person_id


@router.get("/self", response_model=PersonRead)
def my_record(uow: Uow) -> PersonRead:
    """My own record, as the cardholder's disclosure policy shows it."""
    s = uow.session
    return PersonRead.of(get_person(s, _me(uow.actor)))


@router.get("/self/cards", response_model=CardPage)
def my_cards(uow: Uow, after: str | None = None, limit: int = 50) -> CardPage:
    """My cards, oldest first, by cursor."""
    s = uow.session
    q = select(Card).where(Card.person_id == _me(uow.actor))
    page = page_by_id(s, q, Card.id, after=after, limit=limit)
    return CardPage(items=[CardRead.of(c) for c in page.items], next=page.next)


@router.get("/self/medical-account", response_model=SelfAccountRead)
def my_account(uow: Uow, after: str | None = None, limit: int = 50) -> SelfAccountRead:
    """Q-1: my medical account's balance, entries (newest first) and payment records."""
    s = uow.session
    return SelfAccountRead.of(
        inquiry.statement(s, person_id=_me(uow.actor), after=after, limit=limit)
    )


@router.get("/self/access-log", response_model=AccessLogPage)
def my_access_log(uow: Uow, after: str | None = None, limit: int = 50) -> AccessLogPage:
    """Who looked at my record: the organizations that inquired, changed or saw it in
    full, what and when, newest first. Reading it is not itself logged."""
    s = uow.session
    page = access_log(s, person_id=_me(uow.actor), after=after, limit=limit)
    return AccessLogPage(
        items=[AccessLogEntryRead(**look.__dict__) for look in page.items], next=page.next
    )


def _full(view: FullView) -> JSONResponse:
    body = FullViewRead(**view.__dict__).model_dump(mode="json")
    return JSONResponse(body, headers=NO_STORE)


def _show(uow: RequestUnit, subject: Resource, subject_id: int, body: FullViewIn) -> JSONResponse:
    return _full(
        show_in_full(
            uow,
            uow.rt,
            actor=uow.actor,
            subject=subject,
            subject_id=subject_id,
            field=body.field,
            reason=body.reason,
        )
    )


@router.post("/self/disclosures", response_model=FullViewRead)
def my_full_view(body: FullViewIn, uow: Uow) -> JSONResponse:
    """My own ID number or phone in full (audited like anyone's full view)."""
    return _show(uow, Resource.PERSON, _me(uow.actor), body)


@router.post("/persons/{person_id}/disclosures", response_model=FullViewRead)
def person_full_view(person_id: int, body: FullViewIn, uow: Uow) -> JSONResponse:
    """S-1: one masked field of a person (``id_number``, ``phone``) in full, where the
    disclosure policy allows it; the full view is audited with the reason given."""
    return _show(uow, Resource.PERSON, person_id, body)


@router.post("/cards/{card_id}/disclosures", response_model=FullViewRead)
def card_full_view(card_id: int, body: FullViewIn, uow: Uow) -> JSONResponse:
    """S-1: a card's bank card number in full, where the disclosure policy allows it;
    audited with the reason given."""
    return _show(uow, Resource.CARD, card_id, body)
