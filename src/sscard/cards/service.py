"""Use cases: ordering, production, pickup, hand-out, return, activation (A-2, D-1, V-*)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import (
    ACTIVATION_CHANNEL_OF,
    Actor,
    Agent,
    Service,
    check_agent,
    require,
    require_authorised,
    require_own_bank,
)
from sscard.applications.tables import Application
from sscard.audit.service import record
from sscard.cards.model import Action, CardState, FeeDecision, next_state, valid_until
from sscard.cards.tables import Card, CardTransition, Fee
from sscard.cards.transitions import load_card, load_card_by, move, record_creations
from sscard.core.errors import (
    AlreadyExists,
    DeadlineNotReached,
    Forbidden,
    InvalidInput,
    PolicyRefused,
)
from sscard.core.ids import parse_bank_card_number, parse_id_number
from sscard.core.policy import AgentAct, Channel
from sscard.db.counters import reserve
from sscard.db.engine import UnitOfWork
from sscard.messages import BUS, Delivery, FinancialActivated, OldMedicalCardClosed
from sscard.register.model import OldCardState, OrgKind
from sscard.register.service import granted, org_by_code
from sscard.register.tables import Person
from sscard.runtime import Runtime

OnActivation = Callable[[Session, Card], None]


@dataclass(frozen=True)
class Moved:
    """A card after a use case, with the transitions it made."""

    card: Card
    transitions: list[CardTransition]


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


def _serial_ok(value: str, field: str) -> str:
    value = (value or "").strip().upper()
    if not value.isalnum() or not 6 <= len(value) <= 32:
        raise InvalidInput(f"{field} must be 6-32 letters or digits", field=field)
    return value


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
    require_own_bank(actor, card.bank_code)
    bank = rt.policy.bank(card.bank_code)
    bins = tuple(bank.bin_prefixes) if bank else ()
    bank_no = parse_bank_card_number(bank_card_number, bin_prefixes=bins)
    number = _serial_ok(card_number, "card_number")
    chip = _serial_ok(serial, "serial")
    outlet = org_by_code(s, outlet_code, kind=OrgKind.OUTLET)
    if outlet.bank_code != card.bank_code:
        raise InvalidInput(
            f"outlet {outlet_code} belongs to bank {outlet.bank_code}, not {card.bank_code}",
            field="outlet_code",
        )
    for column, value in (
        (Card.card_number, number),
        (Card.serial, chip),
        (Card.bank_card_number, bank_no),
    ):
        if s.scalar(select(Card.id).where(column == value, Card.id != card.id)) is not None:
            raise AlreadyExists(f"another card already has this {column.key}", field=column.key)
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
    require_own_bank(actor, card.bank_code)
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
    if card.unit_org_id != actor.org_id:
        raise Forbidden("this card was not picked up by your unit")
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
    require_own_bank(actor, card.bank_code)
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


def activate_card(
    s: Session,
    rt: Runtime,
    card: Card,
    *,
    actor: Actor,
    channel: Channel,
    agent: Agent | None,
    old_medical_card_no: str | None = None,
) -> list[CardTransition]:
    """Activate the social security application and settle the old cards (V-1, V-3).

    Inside the caller's transaction (a pickup, an activation, a first settlement).
    """
    if channel not in rt.policy.activation.channels:
        raise PolicyRefused(
            f"{rt.policy.region.name_en} does not activate cards through '{channel}'; "
            "allowed: " + ", ".join(rt.policy.activation.channels),
            field="channel",
            reason="channel_not_allowed",
        )
    check_agent(rt.policy, AgentAct.ACTIVATION, agent)
    today = rt.today()
    if card.valid_until is not None and today > card.valid_until:
        raise PolicyRefused(
            f"the card expired on {card.valid_until}; apply for a change with reason 'expired'",
            reason="card_expired",
        )
    person = s.get(Person, card.person_id)
    assert person is not None
    if channel is Channel.PHARMACY and has_old_medical_card(person):
        # V-1: at a pharmacy the old medical insurance card goes in first.
        close_old_medical_card(
            s, rt, actor=actor, person=person, card=card, old_medical_card_no=old_medical_card_no
        )
    now = rt.now()
    moves = [
        move(s, card, Action.ACTIVATE, rt=rt, actor=actor, at=now, channel=channel, agent=agent)
    ]
    card.activated_at = now
    card.activation_channel = channel.value
    moves += _retire_older_cards(s, rt, card, actor=actor, channel=channel)
    return moves


def has_old_medical_card(person: Person) -> bool:
    return person.old_medical_card_state in (OldCardState.NORMAL, OldCardState.RESTRICTED)


def close_old_medical_card(
    s: Session,
    rt: Runtime,
    *,
    actor: Actor,
    person: Person,
    card: Card,
    old_medical_card_no: str | None,
) -> None:
    """V-1: the old medical insurance card is read at a pharmacy and closed; the
    accounts side moves its balance to the personal account (OldMedicalCardClosed)."""
    if (old_medical_card_no or "").strip() != person.old_medical_card_no:
        raise InvalidInput(
            "at a pharmacy the holder's old medical insurance card is read first: "
            "old_medical_card_no is missing or does not match",
            field="old_medical_card_no",
        )
    now = rt.now()
    person.old_medical_card_state = OldCardState.CLOSED.value
    person.updated_at = now
    record(
        s,
        actor=actor,
        at=now,
        action="person.old_medical_card_closed",
        subject_type="person",
        subject_id=person.id,
        person_id=person.id,
        channel=Channel.PHARMACY,
        detail={"card_id": card.id},
    )
    if not BUS.publish(
        Delivery(session=s, rt=rt, actor=actor),
        OldMedicalCardClosed(person_id=person.id, card_id=card.id, at=now),
    ):
        raise RuntimeError("nobody takes over old card balances: call sscard.wiring.wire()")


def _retire_older_cards(
    s: Session, rt: Runtime, card: Card, *, actor: Actor, channel: Channel
) -> list[CardTransition]:
    """V-3: an old card of the same bank is destroyed; another bank's is superseded."""
    now_moves: list[CardTransition] = []
    older = s.scalars(
        select(Card)
        .where(
            Card.person_id == card.person_id,
            Card.id != card.id,
            Card.state.in_([CardState.RECEIVED, CardState.ACTIVE, CardState.LOST_AUTO]),
        )
        .order_by(Card.id)
    ).all()
    for old in older:
        same_bank = old.bank_code == card.bank_code
        action = Action.DESTROY_OLD_SAME_BANK if same_bank else Action.SUPERSEDE
        now_moves.append(
            move(
                s,
                old,
                action,
                rt=rt,
                actor=actor,
                at=card.activated_at or card.ordered_at,
                channel=channel,
                reason_code="new_card_activated",
                detail={"new_card_id": card.id},
            )
        )
    return now_moves


def activate(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    channel: str,
    agent: Agent | None = None,
    old_medical_card_no: str | None = None,
    also: OnActivation | None = None,
) -> Moved:
    """V-1: activate at an outlet, hospital, pharmacy, window, 12333, online or platform.

    ``also`` runs in the same transaction once the card is active (the accounts side
    sets the consumption password with it, V-2).
    """
    require(actor, "cards.activate")
    try:
        chosen = Channel(channel)
    except ValueError:
        raise InvalidInput(f"'{channel}' is not a channel", field="channel") from None
    if chosen not in ACTIVATION_CHANNEL_OF.get(actor.org_kind, frozenset()):
        raise Forbidden(
            f"a {actor.org_kind.value.replace('_', ' ')} cannot activate through '{chosen}'"
            + (
                "; the financial activation is done at the bank "
                "(POST /bank/financial-activations), which tells the center"
                if chosen is Channel.BANK_FINANCIAL
                else ""
            )
        )
    s = uow.session
    if chosen is Channel.GRASSROOTS:
        require_authorised(actor, Service.ACTIVATION, granted(s, actor))
    card = load_card(s, card_id)
    if chosen is Channel.OUTLET:
        require_own_bank(actor, card.bank_code)
    moves = activate_card(
        s,
        rt,
        card,
        actor=actor,
        channel=chosen,
        agent=agent,
        old_medical_card_no=old_medical_card_no,
    )
    if also is not None:
        also(s, card)
    uow.commit()
    return Moved(card, moves)


def receive_financial_activation(delivery: Delivery, message: FinancialActivated) -> Moved:
    """The center's side of the V-1 message (serial, ID number, bank card number).

    The social security application is activated with it where policy allows; a
    repeated message changes nothing. Runs in the sender's transaction.
    """
    s, rt, actor = delivery.session, delivery.rt, delivery.actor
    card = load_card_by(s, column=Card.serial, value=_serial_ok(message.serial, "serial"))
    if card.bank_code != message.bank_code:
        raise Forbidden(
            f"this card belongs to bank {card.bank_code}; bank {message.bank_code} cannot "
            "report its financial activation"
        )
    person = s.get(Person, card.person_id)
    assert person is not None
    if parse_id_number(message.id_number).number != person.id_number:
        raise InvalidInput("the ID number does not belong to this card's holder", field="id_number")
    if "".join(message.bank_card_number.split()) != card.bank_card_number:
        raise InvalidInput(
            "the bank card number does not match this card", field="bank_card_number"
        )
    if card.financial_activated_at is not None:
        return Moved(card, [])
    now = message.at
    card.financial_activated_at = now
    moves: list[CardTransition] = []
    social_allowed = Channel.BANK_FINANCIAL in rt.policy.activation.channels
    if card.state == CardState.RECEIVED and not social_allowed:
        record(
            s,
            actor=actor,
            at=now,
            action="card.financial_activated",
            subject_type="card",
            subject_id=card.id,
            person_id=card.person_id,
            channel=Channel.BANK_FINANCIAL,
        )
        return Moved(card, moves)
    moves.append(
        move(
            s,
            card,
            Action.FINANCIAL_ACTIVATE,
            rt=rt,
            actor=actor,
            at=now,
            channel=Channel.BANK_FINANCIAL,
        )
    )
    if card.state == CardState.ACTIVE and card.activated_at is None:
        card.activated_at = now
        card.activation_channel = Channel.BANK_FINANCIAL.value
        moves += _retire_older_cards(s, rt, card, actor=actor, channel=Channel.BANK_FINANCIAL)
    return Moved(card, moves)


BUS.subscribe(FinancialActivated, receive_financial_activation)
