"""Use cases: activation through every channel, and what it settles (V-1 to V-3, V-5)."""

from __future__ import annotations

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
    require_scope,
)
from sscard.access.scoping import record_of_shown_card, shown_number
from sscard.audit.service import record
from sscard.cards.model import Action, CardState, serial_ok
from sscard.cards.tables import Card, CardTransition
from sscard.cards.transitions import (
    Moved,
    OnActivation,
    load_card,
    load_card_by,
    move,
)
from sscard.core.errors import (
    Forbidden,
    InvalidInput,
    PolicyRefused,
)
from sscard.core.ids import parse_id_number
from sscard.core.policy import AgentAct, Channel
from sscard.db.engine import UnitOfWork
from sscard.messages import BUS, Delivery, FinancialActivated, OldMedicalCardClosed
from sscard.register.model import OldCardState
from sscard.register.service import granted
from sscard.register.tables import Person
from sscard.runtime import Runtime


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
    card_number: str | None = None,
) -> Moved:
    """V-1: activate at an outlet, hospital, pharmacy, window, 12333, online or platform.

    ``also`` runs in the same transaction once the card is active (the accounts side
    sets the consumption password with it, V-2). A counter party (hospital, pharmacy,
    12333, platform) names the card presented to it by its ``card_number`` (S-1).
    """
    scope = require(actor, "cards.activate")
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
    shown = shown_number(card_number, scope=scope, act="activates")
    card = load_card(s, card_id)
    require_scope(actor, "cards.activate", record_of_shown_card(card, shown))
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
    card = load_card_by(s, column=Card.serial, value=serial_ok(message.serial, "serial"))
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
