"""Cardholder self-service (Q-1, S-1) and audited full views of masked fields."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select

from sscard.access.disclosure import Resource
from sscard.access.full_views import FullView, show_in_full
from sscard.access.model import Actor, require
from sscard.accounts import inquiry
from sscard.api.deps import CurrentActor, ReadSession, RuntimeDep
from sscard.api.schemas import CardPage, CardRead, PersonRead
from sscard.api.self_schemas import (
    AccessLogEntryRead,
    AccessLogPage,
    FullViewIn,
    FullViewRead,
    SelfAccountRead,
)
from sscard.audit.access_log import access_log
from sscard.cards.tables import Card
from sscard.core.errors import Forbidden
from sscard.db.paging import page_by_id
from sscard.register.service import get_person
from sscard.runtime import Runtime

router = APIRouter(tags=["self-service"])

NO_STORE = {"Cache-Control": "no-store"}


def _me(actor: Actor) -> int:
    require(actor, "self.read")
    if actor.person_id is None:
        raise Forbidden("this cardholder session names no person")
    return actor.person_id


@router.get("/self", response_model=PersonRead)
def my_record(s: ReadSession, actor: CurrentActor) -> PersonRead:
    """My own record, as the cardholder's disclosure policy shows it."""
    return PersonRead.of(get_person(s, _me(actor)))


@router.get("/self/cards", response_model=CardPage)
def my_cards(
    s: ReadSession, actor: CurrentActor, after: str | None = None, limit: int = 50
) -> CardPage:
    """My cards, oldest first, by cursor."""
    q = select(Card).where(Card.person_id == _me(actor))
    page = page_by_id(s, q, Card.id, after=after, limit=limit)
    return CardPage(items=[CardRead.of(c) for c in page.items], next=page.next)


@router.get("/self/medical-account", response_model=SelfAccountRead)
def my_account(
    s: ReadSession, actor: CurrentActor, after: str | None = None, limit: int = 50
) -> SelfAccountRead:
    """Q-1: my medical account's balance, entries (newest first) and payment records."""
    return SelfAccountRead.of(inquiry.statement(s, person_id=_me(actor), after=after, limit=limit))


@router.get("/self/access-log", response_model=AccessLogPage)
def my_access_log(
    s: ReadSession, actor: CurrentActor, after: str | None = None, limit: int = 50
) -> AccessLogPage:
    """Who looked at my record: the organizations that inquired, changed or saw it in
    full, what and when, newest first. Reading it is not itself logged."""
    page = access_log(s, person_id=_me(actor), after=after, limit=limit)
    return AccessLogPage(
        items=[AccessLogEntryRead(**look.__dict__) for look in page.items], next=page.next
    )


def _full(view: FullView) -> JSONResponse:
    body = FullViewRead(**view.__dict__).model_dump(mode="json")
    return JSONResponse(body, headers=NO_STORE)


def _show(
    rt: Runtime, actor: Actor, subject: Resource, subject_id: int, body: FullViewIn
) -> JSONResponse:
    with rt.uow() as uow:
        return _full(
            show_in_full(
                uow,
                rt,
                actor=actor,
                subject=subject,
                subject_id=subject_id,
                field=body.field,
                reason=body.reason,
            )
        )


@router.post("/self/disclosures", response_model=FullViewRead)
def my_full_view(body: FullViewIn, rt: RuntimeDep, actor: CurrentActor) -> JSONResponse:
    """My own ID number or phone in full (audited like anyone's full view)."""
    return _show(rt, actor, Resource.PERSON, _me(actor), body)


@router.post("/persons/{person_id}/disclosures", response_model=FullViewRead)
def person_full_view(
    person_id: int, body: FullViewIn, rt: RuntimeDep, actor: CurrentActor
) -> JSONResponse:
    """S-1: one masked field of a person (``id_number``, ``phone``) in full, where the
    disclosure policy allows it; the full view is audited with the reason given."""
    return _show(rt, actor, Resource.PERSON, person_id, body)


@router.post("/cards/{card_id}/disclosures", response_model=FullViewRead)
def card_full_view(
    card_id: int, body: FullViewIn, rt: RuntimeDep, actor: CurrentActor
) -> JSONResponse:
    """S-1: a card's bank card number in full, where the disclosure policy allows it;
    audited with the reason given."""
    return _show(rt, actor, Resource.CARD, card_id, body)
