"""Card endpoints: every transition is a resource under /cards/{id}."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from sscard.access.model import require, require_scope
from sscard.access.scoping import record_of_card, visible
from sscard.api.activation import activation_hooks
from sscard.api.schemas import (
    ActivationIn,
    CancelLossIn,
    CardCheckIn,
    CardCheckRead,
    CardMoved,
    CardPage,
    CardRead,
    ChangeIn,
    FeeRead,
    LossReportIn,
    PickupIn,
    ProductionIn,
    Reissue,
    ReplacementIn,
    ReturnIn,
    TransitionRead,
    agent_of,
)
from sscard.api.unit import UnitRoute, Uow
from sscard.cards import checks, loss, service
from sscard.cards.model import CardState
from sscard.cards.service import OnActivation
from sscard.cards.tables import Card, Fee
from sscard.cards.transitions import load_card
from sscard.core.errors import InvalidInput
from sscard.db.paging import page_by_id

router = APIRouter(tags=["cards"], route_class=UnitRoute)


def _moved(m: service.Moved, fee: Fee | None = None) -> CardMoved:
    return CardMoved(
        card=CardRead.of(m.card),
        transitions=[TransitionRead.model_validate(t) for t in m.transitions],
        fee=FeeRead.model_validate(fee) if fee else None,
    )


def _reissue(r: loss.Reissued) -> Reissue:
    return Reissue(
        old_card=CardRead.of(r.old.card),
        transitions=[TransitionRead.model_validate(t) for t in r.old.transitions],
        new_card=CardRead.of(r.new_card),
        fee=FeeRead.model_validate(r.fee),
    )


@router.get("/cards", response_model=CardPage)
def list_cards(
    uow: Uow,
    state: str | None = None,
    person_id: int | None = None,
    after: str | None = None,
    limit: int = 50,
) -> CardPage:
    """Cards in the actor's scope by cursor, filtered by state or person (S-1)."""
    s, actor = uow.session, uow.actor
    q = select(Card).where(visible(actor, "cards.read", "cards"))
    if state:
        try:
            q = q.where(Card.state == CardState(state).value)
        except ValueError:
            raise InvalidInput(
                "state must be one of " + ", ".join(CardState), field="state"
            ) from None
    if person_id is not None:
        q = q.where(Card.person_id == person_id)
    page = page_by_id(s, q, Card.id, after=after, limit=limit)
    return CardPage(items=[CardRead.of(c) for c in page.items], next=page.next)


@router.get("/cards/{card_id}", response_model=CardRead)
def get_card(card_id: int, uow: Uow) -> CardRead:
    """One card with its state and the next steps the transition table allows."""
    s, actor = uow.session, uow.actor
    require(actor, "cards.read")
    card = load_card(s, card_id, lock=False)
    require_scope(actor, "cards.read", record_of_card(card))
    return CardRead.of(card)


@router.get("/cards/{card_id}/transitions", response_model=list[TransitionRead])
def card_history(card_id: int, uow: Uow) -> list[TransitionRead]:
    """The card's history: every transition, oldest first."""
    s, actor = uow.session, uow.actor
    require(actor, "cards.read")
    require_scope(actor, "cards.read", record_of_card(load_card(s, card_id, lock=False)))
    return [TransitionRead.model_validate(t) for t in loss.history(s, card_id)]


def _password_hook(uow: Uow, body: ActivationIn | PickupIn) -> OnActivation | None:
    if isinstance(body, PickupIn) and not body.activate:
        return None
    return activation_hooks(
        uow.rt,
        uow.actor,
        medical_password=body.medical_password,
        financial_password=body.financial_password,
        id_number=body.id_number,
    )


@router.post("/cards/{card_id}/production", response_model=CardMoved)
def produce(card_id: int, body: ProductionIn, uow: Uow) -> CardMoved:
    """The bank reports the produced card (numbers, outlet; valid 10 years, C-2)."""
    return _moved(
        service.record_production(
            uow,
            uow.rt,
            actor=uow.actor,
            card_id=card_id,
            card_number=body.card_number,
            serial=body.serial,
            bank_card_number=body.bank_card_number,
            outlet_code=body.outlet_code,
        )
    )


@router.post("/cards/{card_id}/pickups", response_model=CardMoved)
def pickup(card_id: int, body: PickupIn, uow: Uow) -> CardMoved:
    """A-2 step 7 / A-3 step 6 / R-1: pickup at the outlet, optionally activating."""
    return _moved(
        service.pickup(
            uow,
            uow.rt,
            actor=uow.actor,
            card_id=card_id,
            by=body.by,
            agent=agent_of(body.agent),
            activate=body.activate,
            also=_password_hook(uow, body),
        )
    )


@router.post("/cards/{card_id}/hand-outs", response_model=CardMoved)
def hand_out(card_id: int, uow: Uow) -> CardMoved:
    """A-2 step 8: the unit hands the card to its holder."""
    return _moved(service.hand_out(uow, uow.rt, actor=uow.actor, card_id=card_id))


@router.post("/cards/{card_id}/returns", response_model=CardMoved)
def return_card(card_id: int, body: ReturnIn, uow: Uow) -> CardMoved:
    """D-1: an undeliverable card goes back to the outlet."""
    return _moved(
        service.return_undeliverable(
            uow, uow.rt, actor=uow.actor, card_id=card_id, reason=body.reason
        )
    )


@router.post("/cards/{card_id}/activations", response_model=CardMoved)
def activate(card_id: int, body: ActivationIn, uow: Uow) -> CardMoved:
    """V-1: activate the social security application through the actor's channel."""
    return _moved(
        service.activate(
            uow,
            uow.rt,
            actor=uow.actor,
            card_id=card_id,
            channel=body.channel,
            agent=agent_of(body.agent),
            old_medical_card_no=body.old_medical_card_no,
            also=_password_hook(uow, body),
            card_number=body.card_number,
        )
    )


def _report_loss(uow: Uow, card_id: int, body: LossReportIn) -> CardMoved:
    agent = agent_of(body.agent)
    if body.kind == "oral":
        if not body.channel:
            raise InvalidInput(
                "an oral report names its channel (e.g. bank_phone)", field="channel"
            )
        return _moved(
            loss.report_loss_oral(
                uow,
                uow.rt,
                actor=uow.actor,
                card_id=card_id,
                channel=body.channel,
                agent=agent,
                card_number=body.card_number,
            )
        )
    moved, fee = loss.report_loss_written(
        uow, uow.rt, actor=uow.actor, card_id=card_id, agent=agent
    )
    return _moved(moved, fee)


@router.post("/cards/{card_id}/loss-reports", response_model=CardMoved)
def report_loss(card_id: int, body: LossReportIn, uow: Uow) -> CardMoved:
    """L-1 oral (by phone or online banking) or L-2 written (at an outlet) loss report."""
    return _report_loss(uow, card_id, body)


@router.post("/cards/{card_id}/loss-cancellations", response_model=CardMoved)
def cancel_loss(card_id: int, body: CancelLossIn, uow: Uow) -> CardMoved:
    """L-3, V-5: cancel a loss report before replacement."""
    return _moved(
        loss.cancel_loss_report(
            uow,
            uow.rt,
            actor=uow.actor,
            card_id=card_id,
            written_report_no=body.written_report_no,
            agent=agent_of(body.agent),
        )
    )


@router.post(
    "/cards/{card_id}/replacements", response_model=Reissue, status_code=status.HTTP_201_CREATED
)
def replace(card_id: int, body: ReplacementIn, uow: Uow) -> Reissue:
    """R-1: replacement after a written loss report, with fee and payment voucher."""
    return _reissue(
        loss.replace_card(uow, uow.rt, actor=uow.actor, card_id=card_id, agent=agent_of(body.agent))
    )


@router.post(
    "/cards/{card_id}/changes", response_model=Reissue, status_code=status.HTTP_201_CREATED
)
def change(card_id: int, body: ChangeIn, uow: Uow) -> Reissue:
    """R-4, F-2: change a damaged, outdated or faulty card."""
    return _reissue(
        loss.change_card(
            uow,
            uow.rt,
            actor=uow.actor,
            card_id=card_id,
            reason=body.reason,
            photo_receipt_no=body.photo_receipt_no,
            studio_code=body.studio_code,
            agent=agent_of(body.agent),
        )
    )


@router.post("/card-checks", response_model=CardCheckRead)
def check_card(body: CardCheckIn, uow: Uow) -> CardCheckRead:
    """Is this card usable here and now? What a hospital, pharmacy or window asks first."""
    found = checks.check(uow.session, uow.rt, actor=uow.actor, card_number=body.card_number)
    uow.owners[("card", found.card_id)] = found.person_id  # the access log needs no lookup
    return CardCheckRead(
        card_id=found.card_id,
        state=found.state.value,
        usable=found.reason is None,
        reason=found.reason or "the card is active",
    )
