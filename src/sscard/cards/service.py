"""Use cases: ordering, fees, production, pickup, hand-out and return (A-2, D-1, F-1)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import (
    Actor,
    Agent,
    check_agent,
    require,
    require_scope,
)
from sscard.access.scoping import record_of_card
from sscard.applications.tables import Application
from sscard.cards.activation import (  # the activation use cases live beside
    activate,
    activate_card,
    close_old_medical_card,
    has_old_medical_card,
    receive_financial_activation,
)
from sscard.cards.model import Action, CardState, FeeDecision, next_state, serial_ok, valid_until
from sscard.cards.tables import Card, Fee
from sscard.cards.transitions import (
    Moved,
    OnActivation,
    load_card,
    move,
    record_creations,
)
from sscard.core.errors import (
    AlreadyExists,
    DeadlineNotReached,
    InvalidInput,
)
from sscard.core.ids import parse_bank_card_number
from sscard.core.policy import AgentAct, Channel
from sscard.core.protect import BANK_CARD_NUMBER, SOCIAL
from sscard.db.counters import reserve
from sscard.db.engine import UnitOfWork
from sscard.db.types import matches
from sscard.register.model import OrgKind
from sscard.register.service import org_by_code
from sscard.register.tables import Person
from sscard.runtime import Runtime

__all__ = [
    "Moved",
    "OnActivation",
    "activate",
    "activate_card",
    "close_old_medical_card",
    "has_old_medical_card",
    "receive_financial_activation",
]


def order_cards(
    session: Session,
    rt: Runtime,
    applications: list[Application],
    *,
    actor: Actor,
    unit_org_id: int | None,
    reason_code: str,
) -> list[Card]:
    """Order the cards of accepted applications: ready after 30 working days (A-2).

    Set-based: the ready date is computed once, and cards, transitions and audit
    records are each written in one batched INSERT, whatever the number of cards.
    """
    if not applications:
        return []
    now = rt.now()
    ready = rt.calendar(session).add_working_days(
        rt.today(), rt.policy.deadlines.production_working_days
    )
    cards = [
        Card(
            person_id=app.person_id,
            application_id=app.id,
            bank_code=app.bank_code,
            state=CardState.ORDERED.value,
            outlet_org_id=app.outlet_org_id,
            unit_org_id=unit_org_id,
            ordered_at=now,
            ready_on=ready.day,
            ready_provisional=ready.provisional,
        )
        for app in applications
    ]
    session.add_all(cards)
    session.flush()
    record_creations(
        session, cards, actor=actor, at=now, channel=actor.org_kind.value, reason_code=reason_code
    )
    return cards


def order_card(
    session: Session,
    rt: Runtime,
    application: Application,
    *,
    actor: Actor,
    unit_org_id: int | None,
    reason_code: str,
) -> Card:
    """Order one card (replacement, change, individual application)."""
    return order_cards(
        session, rt, [application], actor=actor, unit_org_id=unit_org_id, reason_code=reason_code
    )[0]


def charge_fees(
    s: Session,
    rt: Runtime,
    cards: list[tuple[Card, int | None]],
    decision: FeeDecision,
    *,
    actor: Actor,
) -> list[Fee]:
    """Record one fee per (card, application) (F-1, F-2); vouchers for non-zero amounts."""
    first = reserve(s, "payment_voucher", len(cards)) if decision.amount_fen > 0 else None
    fees = [
        Fee(
            person_id=card.person_id,
            card_id=card.id,
            application_id=application_id,
            basis=decision.basis.value,
            amount_fen=decision.amount_fen,
            voucher_no=None if first is None else f"JF{rt.policy.region.code}{first + i:010d}",
            paid_at=rt.now(),
            place_org_id=actor.org_id,
        )
        for i, (card, application_id) in enumerate(cards)
    ]
    s.add_all(fees)
    s.flush()
    return fees


def charge_fee(
    s: Session,
    rt: Runtime,
    card: Card,
    decision: FeeDecision,
    *,
    actor: Actor,
    application_id: int | None,
) -> Fee:
    """Record a fee (F-1, F-2); a payment voucher number is issued for any non-zero amount."""
    return charge_fees(s, rt, [(card, application_id)], decision, actor=actor)[0]


def record_production(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    card_number: str,
    serial: str,
    bank_card_number: str,
    outlet_code: str,
) -> Moved:
    """The bank reports a produced card: numbers, outlet, 10-year validity (C-2)."""
    require(actor, "cards.produce")
    s = uow.session
    card = load_card(s, card_id)
    require_scope(actor, "cards.produce", record_of_card(card))
    bank = rt.policy.bank(card.bank_code)
    bins = tuple(bank.bin_prefixes) if bank else ()
    bank_no = parse_bank_card_number(bank_card_number, bin_prefixes=bins)
    number = serial_ok(card_number, "card_number")
    chip = serial_ok(serial, "serial")
    outlet = org_by_code(s, outlet_code, kind=OrgKind.OUTLET)
    if outlet.bank_code != card.bank_code:
        raise InvalidInput(
            f"outlet {outlet_code} belongs to bank {outlet.bank_code}, not {card.bank_code}",
            field="outlet_code",
        )
    for field, taken in (
        ("card_number", Card.card_number == number),
        ("serial", Card.serial == chip),
        # Sealed: compared through its blind index.
        (
            "bank_card_number",
            matches(Card.bank_card_number_hash, SOCIAL, BANK_CARD_NUMBER, bank_no),
        ),
    ):
        if s.scalar(select(Card.id).where(taken, Card.id != card.id)) is not None:
            raise AlreadyExists(f"another card already has this {field}", field=field)
    now = rt.now()
    if card.state != CardState.ORDERED:
        # Refuse before the numbers are touched (the move below would refuse too).
        next_state(CardState(card.state), Action.PRODUCE, None)
    card.card_number, card.serial, card.bank_card_number = number, chip, bank_no
    holder = s.get(Person, card.person_id)
    assert holder is not None
    t = move(
        s,
        card,
        Action.PRODUCE,
        rt=rt,
        actor=actor,
        at=now,
        channel=Channel.OUTLET,
        place_org_id=outlet.id,
        holder_id_number=holder.id_number,
    )
    card.outlet_org_id = outlet.id
    card.produced_at = now
    card.at_outlet_since = now
    card.valid_until = valid_until(rt.today(), rt.policy)
    uow.commit()
    return Moved(card, [t])


def pickup(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    by: str,
    agent: Agent | None = None,
    activate: bool = False,
    also: OnActivation | None = None,
) -> Moved:
    """Pickup at the outlet by the unit administrator (A-2 step 7) or the holder (A-3)."""
    require(actor, "cards.pickup")
    s = uow.session
    card = load_card(s, card_id)
    require_scope(actor, "cards.pickup", record_of_card(card))
    today = rt.today()
    if card.state == CardState.AT_OUTLET and today < card.ready_on:
        raise DeadlineNotReached(
            f"the card is ready for pickup from {card.ready_on} (30 working days after the "
            "application was accepted)",
            ready_on=card.ready_on.isoformat(),
        )
    check_agent(rt.policy, AgentAct.PICKUP, agent)
    now = rt.now()
    if by == "unit_administrator":
        if card.unit_org_id is None:
            raise InvalidInput(
                "this card was applied for individually: the holder picks it up",
                field="by",
            )
        t = move(
            s,
            card,
            Action.PICKUP_BY_UNIT,
            rt=rt,
            actor=actor,
            at=now,
            channel=Channel.OUTLET,
            agent=agent,
        )
        due = rt.calendar(s).add_working_days(today, rt.policy.deadlines.handout_working_days)
        card.handout_due = due.day
        card.picked_up_at = now
        card.at_outlet_since = None
        if activate:
            raise InvalidInput("only the holder's own pickup can activate", field="activate")
        uow.commit()
        return Moved(card, [t])
    if by != "holder":
        raise InvalidInput("by must be 'unit_administrator' or 'holder'", field="by")
    t = move(
        s,
        card,
        Action.PICKUP_BY_HOLDER,
        rt=rt,
        actor=actor,
        at=now,
        channel=Channel.OUTLET,
        agent=agent,
    )
    card.picked_up_at = now
    card.received_at = now
    card.at_outlet_since = None
    moves = [t]
    if activate:
        moves += activate_card(s, rt, card, actor=actor, channel=Channel.OUTLET, agent=agent)
        if also is not None:
            also(s, card)
    uow.commit()
    return Moved(card, moves)


def hand_out(uow: UnitOfWork, rt: Runtime, *, actor: Actor, card_id: int) -> Moved:
    """A-2 step 8: the unit hands the card to its holder within 5 working days."""
    require(actor, "cards.hand_out")
    s = uow.session
    card = load_card(s, card_id)
    require_scope(actor, "cards.hand_out", record_of_card(card))
    today = rt.today()
    late = card.handout_due is not None and today > card.handout_due
    now = rt.now()
    t = move(
        s,
        card,
        Action.HAND_OUT,
        rt=rt,
        actor=actor,
        at=now,
        channel=Channel.UNIT,
        reason_code="late" if late else None,
        detail={"handout_due": card.handout_due.isoformat() if card.handout_due else None},
    )
    card.received_at = now
    uow.commit()
    return Moved(card, [t])


RETURN_REASONS = ("left_unit", "unreachable")


def return_undeliverable(
    uow: UnitOfWork, rt: Runtime, *, actor: Actor, card_id: int, reason: str
) -> Moved:
    """D-1: the unit returns a card it cannot deliver; the outlet contacts the holder."""
    require(actor, "cards.return")
    if reason not in RETURN_REASONS:
        raise InvalidInput("reason must be 'left_unit' or 'unreachable'", field="reason")
    s = uow.session
    card = load_card(s, card_id)
    require_scope(actor, "cards.return", record_of_card(card))
    now = rt.now()
    t = move(
        s,
        card,
        Action.RETURN_UNDELIVERABLE,
        rt=rt,
        actor=actor,
        at=now,
        channel=Channel.OUTLET,
        reason_code=reason,
    )
    card.outlet_org_id = actor.org_id
    card.at_outlet_since = now
    card.handout_due = None
    uow.commit()
    return Moved(card, [t])
